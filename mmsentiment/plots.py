"""Plots for reports: training curves, confusion matrices and learning curves.

Every function returns a new `matplotlib.figure.Figure` built without ``pyplot``, so
no GUI backend or global figure state is involved. Save one with ``fig.savefig("out.png")``,
or show it in a notebook by leaving it as the last expression of a cell.

Examples
--------
>>> from mmsentiment.plots import plot_confusion_matrix
>>> fig = plot_confusion_matrix(["pos", "neg", "pos"], ["pos", "pos", "pos"])
>>> fig.axes[0].get_title()
'Confusion matrix (accuracy 66.7 %)'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from skorch.history import History

    from .classifier import MultimodalSentimentClassifier

__all__ = ["plot_training_curves", "plot_confusion_matrix", "plot_learning_curve"]

NORMALIZE_OPTIONS = (None, "true", "pred", "all")


def _new_figure(width: float, height: float) -> Figure:
    """A fresh figure with constrained layout, detached from ``pyplot``."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _finite(value: Any) -> bool:
    """Whether ``value`` is a real, finite number (not None, NaN or text)."""
    if value is None or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _epoch_records(history: Any) -> list[Mapping[str, Any]]:
    """The per-epoch dicts of a fitted classifier, a skorch History or a list of dicts."""
    if not isinstance(history, (list, tuple)) and hasattr(type(history), "history_"):
        # A MultimodalSentimentClassifier; an unfitted one raises NotFittedError (a ValueError).
        history = history.history_
    if isinstance(history, (Mapping, str, bytes)) or not isinstance(history, Iterable):
        raise ValueError(
            "history must be a fitted MultimodalSentimentClassifier, a skorch History or a "
            f"list of per-epoch dicts; got {type(history).__name__}."
        )
    records = list(history)
    if not records:
        raise ValueError("history is empty: there are no epochs to plot.")
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(
                f"history entry {i} is a {type(record).__name__}, not a dict of epoch values."
            )
    # An epoch interrupted before its end (e.g. Ctrl-C) has no train_loss yet: leave it out.
    usable = [r for r in records if _finite(r.get("train_loss"))]
    if not usable:
        raise ValueError("no epoch in history records a finite 'train_loss'.")
    return usable


def _series(records: Sequence[Mapping[str, Any]], epochs: list[float], key: str
            ) -> tuple[list[float], list[float]]:
    """The epochs and values of ``key`` for the epochs that record a finite value of it."""
    pairs = [(e, float(r[key])) for e, r in zip(epochs, records) if _finite(r.get(key))]
    return [e for e, _ in pairs], [v for _, v in pairs]


def plot_training_curves(
    history: MultimodalSentimentClassifier | History | Sequence[Mapping[str, Any]],
    ax: Sequence[Axes] | None = None,
) -> Figure:
    """Plot loss and validation accuracy per epoch.

    The left axes show the training loss and, where recorded, the validation loss; the right
    axes show the validation accuracy in percent, or a note when the model was trained without
    a validation split. The epoch with the lowest validation loss is marked on both axes.
    Epochs without a finite ``train_loss`` (an epoch interrupted before its end) are skipped.

    Parameters
    ----------
    history : MultimodalSentimentClassifier, skorch History or list of dict
        A fitted classifier (its ``history_`` is used), a skorch ``History``, or a list of
        per-epoch dicts with the key ``"train_loss"`` and optionally ``"epoch"``,
        ``"valid_loss"`` and ``"valid_acc"`` (0-1).
    ax : pair of matplotlib.axes.Axes, optional
        Where to draw the losses and the accuracy (e.g. two cells of your own figure);
        by default a new figure with two axes.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure drawn on: losses (left) and validation accuracy (right).

    Raises
    ------
    ValueError
        If ``history`` is empty or not a list of dicts, or no epoch records a finite
        ``train_loss``.
    sklearn.exceptions.NotFittedError
        If ``history`` is a classifier that is not fitted (a ``ValueError`` too).

    Examples
    --------
    >>> fig = plot_training_curves([
    ...     {"epoch": 1, "train_loss": 0.9, "valid_loss": 0.8, "valid_acc": 0.6},
    ...     {"epoch": 2, "train_loss": 0.6, "valid_loss": 0.7, "valid_acc": 0.7},
    ... ])
    >>> [ax.get_title() for ax in fig.axes]
    ['Loss', 'Validation accuracy']
    """
    records = _epoch_records(history)
    epochs = [
        float(r["epoch"]) if _finite(r.get("epoch")) else float(i + 1)
        for i, r in enumerate(records)
    ]
    train_x, train_y = _series(records, epochs, "train_loss")
    valid_x, valid_y = _series(records, epochs, "valid_loss")
    acc_x, acc_y = _series(records, epochs, "valid_acc")

    if ax is None:
        ax_loss, ax_acc = _new_figure(10.0, 4.0).subplots(1, 2)
    else:
        ax_loss, ax_acc = ax
    fig = ax_loss.figure

    ax_loss.plot(train_x, train_y, marker="o", label="train loss")
    best = None
    if valid_x:
        ax_loss.plot(valid_x, valid_y, marker="s", label="valid loss")
        i_best = int(np.argmin(valid_y))
        best = (valid_x[i_best], valid_y[i_best])
        ax_loss.plot([best[0]], [best[1]], linestyle="none", marker="*", markersize=14,
                     color="tab:red", label=f"lowest valid loss (epoch {best[0]:g})")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Loss")
    ax_loss.legend()

    ax_acc.set_title("Validation accuracy")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    if acc_x:
        ax_acc.plot(acc_x, [100.0 * a for a in acc_y], marker="o", color="tab:green",
                    label="valid accuracy")
        if best is not None:
            ax_acc.axvline(best[0], color="tab:red", linestyle="--",
                           label=f"lowest valid loss (epoch {best[0]:g})")
        ax_acc.legend()
    else:
        ax_acc.text(0.5, 0.5, "no validation split", transform=ax_acc.transAxes,
                    ha="center", va="center", color="0.4")
        ax_acc.set_xlim(ax_loss.get_xlim())
        ax_acc.set_ylim(0, 100)

    # Whole epochs only on both x axes.
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def plot_confusion_matrix(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | None = None,
    normalize: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Plot a confusion matrix with counts annotated in each cell.

    Rows are true classes and columns predicted classes. With ``normalize=None`` the colours
    show counts; otherwise they show the normalised share (as in
    `sklearn.metrics.confusion_matrix`) and each cell reads ``count`` over ``share %``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels, one per true label.
    labels : array-like of shape (n_classes,), default=None
        Classes to show, in order; by default the sorted union of both label lists.
    normalize : {"true", "pred", "all"} or None, default=None
        ``None`` shows counts; ``"true"`` the share of each true class (per row), ``"pred"``
        the share of each predicted class (per column), ``"all"`` the share of all samples.
    ax : matplotlib.axes.Axes, optional
        Where to draw the matrix (its colorbar goes beside it); by default a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure drawn on: the matrix and its colorbar.

    Raises
    ------
    ValueError
        If the label lists are empty, not one-dimensional or differ in length, ``labels``
        is empty, or ``normalize`` is not one of the options above.

    Examples
    --------
    >>> fig = plot_confusion_matrix(["a", "b", "b"], ["a", "b", "a"], normalize="true")
    >>> fig.axes[0].images[0].get_array().tolist()
    [[1.0, 0.0], [0.5, 0.5]]
    """
    from sklearn.metrics import confusion_matrix
    from sklearn.utils.multiclass import unique_labels

    if normalize not in NORMALIZE_OPTIONS:
        raise ValueError(f"normalize must be one of {NORMALIZE_OPTIONS}; got {normalize!r}.")
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError("y_true and y_pred must be one-dimensional lists of labels.")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred differ in length: {len(y_true)} and {len(y_pred)}."
        )
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty.")
    labels = unique_labels(y_true, y_pred) if labels is None else np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("labels is empty.")

    counts = confusion_matrix(y_true, y_pred, labels=labels)
    shown = counts if normalize is None else confusion_matrix(
        y_true, y_pred, labels=labels, normalize=normalize)
    accuracy = float(np.mean(y_true == y_pred))

    n = len(labels)
    size = max(4.0, 1.0 + 0.9 * n)
    if ax is None:
        ax = _new_figure(size + 1.2, size).add_subplot()
    fig = ax.figure
    vmax = 1.0 if normalize is not None else max(int(counts.max()), 1)
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=vmax)
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label("count" if normalize is None else f"share (normalize={normalize!r})")

    for i in range(n):
        for j in range(n):
            text = str(counts[i, j])
            if normalize is not None:
                text += f"\n{100.0 * shown[i, j]:.1f} %"
            dark = shown[i, j] > vmax / 2
            ax.text(j, i, text, ha="center", va="center",
                    color="white" if dark else "black")

    names = [str(label) for label in labels]
    ax.set_xticks(range(n), names)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(f"Confusion matrix (accuracy {100.0 * accuracy:.1f} %)")
    return fig


def _percent_label(value: float, _pos: Any = None) -> str:
    """A tick label for a share: 0.05 -> '5 %', 0.025 -> '2.5 %'."""
    return f"{100.0 * value:g} %"


def plot_learning_curve(results: pd.DataFrame | Sequence[Mapping[str, Any]],
                        ax: Axes | None = None) -> Figure:
    """Plot accuracy against the amount of training data, one line per method.

    Rows with the same ``method`` and training size (e.g. several seeds) are averaged; where
    a point has more than one row, an error bar shows their standard deviation. The x axis is
    logarithmic: with a ``fraction`` column its ticks read as percentages of the training set,
    otherwise they are numbers of training posts (``n_train``). Accuracy is shown in percent.

    Parameters
    ----------
    results : DataFrame or list of dict
        The columns ``method``, ``accuracy`` (0-1) and either ``fraction`` (share of the
        training data, in (0, 1]) or ``n_train`` (number of training posts); ``fraction``
        is used when both exist.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    ValueError
        If ``results`` is empty, lacks a column, or holds missing, non-numeric or
        out-of-range values.

    Examples
    --------
    >>> fig = plot_learning_curve([
    ...     {"method": "joint fine-tuning", "fraction": 0.1, "accuracy": 0.60},
    ...     {"method": "joint fine-tuning", "fraction": 1.0, "accuracy": 0.70},
    ...     {"method": "frozen encoders", "fraction": 0.1, "accuracy": 0.55},
    ...     {"method": "frozen encoders", "fraction": 1.0, "accuracy": 0.65},
    ... ])
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['10 %', '100 %']
    """
    import pandas as pd

    try:
        frame = results.copy() if isinstance(results, pd.DataFrame) else pd.DataFrame(results)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"results must be a DataFrame or a list of dicts; could not read it: {exc}"
        ) from exc
    if frame.empty:
        raise ValueError("results is empty: there is nothing to plot.")
    missing = [c for c in ("method", "accuracy") if c not in frame.columns]
    if "fraction" not in frame.columns and "n_train" not in frame.columns:
        missing.append("'fraction' or 'n_train'")
    if missing:
        raise ValueError(
            f"results lacks the column(s) {', '.join(missing)}; it has {list(frame.columns)}."
        )
    size_column = "fraction" if "fraction" in frame.columns else "n_train"

    for column in ("accuracy", size_column):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            bad = frame.loc[values.isna(), column].tolist()[:3]
            raise ValueError(f"column {column!r} holds missing or non-numeric values: {bad}.")
        frame[column] = values.astype(float)
    if frame["method"].isna().any():
        raise ValueError("column 'method' holds missing values.")
    if ((frame["accuracy"] < 0) | (frame["accuracy"] > 1)).any():
        raise ValueError("accuracy must lie between 0 and 1 (a share, not a percentage).")
    if size_column == "fraction":
        if ((frame["fraction"] <= 0) | (frame["fraction"] > 1)).any():
            raise ValueError("fraction must lie in (0, 1]: it is a share of the training data.")
    elif (frame["n_train"] <= 0).any():
        raise ValueError("n_train must be positive.")

    if ax is None:
        ax = _new_figure(7.0, 4.5).add_subplot()
    fig = ax.figure
    for method, group in frame.groupby("method", sort=False):
        stats = group.groupby(size_column)["accuracy"].agg(["mean", "std", "count"])
        stats = stats.sort_index()
        x = stats.index.to_numpy(dtype=float)
        y = 100.0 * stats["mean"].to_numpy()
        (line,) = ax.plot(x, y, marker="o", label=str(method))
        if (stats["count"] > 1).any():
            err = 100.0 * np.where(stats["count"] > 1, stats["std"].fillna(0.0), 0.0)
            ax.errorbar(x, y, yerr=err, fmt="none", ecolor=line.get_color(), capsize=4)

    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("log")
    ticks = np.sort(frame[size_column].unique())
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    if size_column == "fraction":
        ax.xaxis.set_major_formatter(FuncFormatter(_percent_label))
        ax.set_xlabel("share of the training data")
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.set_xlabel("training posts")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Learning curve")
    ax.grid(True, alpha=0.3)
    ax.legend(title="method")
    return fig
