"""Tests of mmsentiment.plots: the figures hold the numbers they were given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix

from mmsentiment.plots import plot_confusion_matrix, plot_learning_curve, plot_training_curves

EPOCHS = [
    {"epoch": 1, "train_loss": 1.0, "valid_loss": 0.9, "valid_acc": 0.50, "dur": 1.2},
    {"epoch": 2, "train_loss": 0.7, "valid_loss": 0.6, "valid_acc": 0.65, "dur": 1.1},
    {"epoch": 3, "train_loss": 0.5, "valid_loss": 0.4, "valid_acc": 0.70, "dur": 1.1},
    {"epoch": 4, "train_loss": 0.3, "valid_loss": 0.5, "valid_acc": 0.68, "dur": 1.0},
]


def _line(ax, label):
    """The one line of ``ax`` whose legend label is ``label``."""
    found = [line for line in ax.get_lines() if line.get_label() == label]
    assert len(found) == 1, [line.get_label() for line in ax.get_lines()]
    return found[0]


def _assert_png(fig: Figure, path) -> None:
    fig.savefig(path)
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


# --- training curves ------------------------------------------------------------------------


def test_training_curves_plot_the_given_losses(tmp_path):
    fig = plot_training_curves(EPOCHS)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    ax_loss, ax_acc = fig.axes
    train = _line(ax_loss, "train loss")
    valid = _line(ax_loss, "valid loss")
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(train.get_ydata(), [1.0, 0.7, 0.5, 0.3])
    np.testing.assert_allclose(valid.get_ydata(), [0.9, 0.6, 0.4, 0.5])
    assert train.get_marker() not in (None, "None", "")
    # The lowest validation loss is at epoch 3, not at the last epoch.
    best = _line(ax_loss, "lowest valid loss (epoch 3)")
    np.testing.assert_allclose(best.get_xdata(), [3])
    np.testing.assert_allclose(best.get_ydata(), [0.4])
    acc = _line(ax_acc, "valid accuracy")
    np.testing.assert_allclose(acc.get_ydata(), [50, 65, 70, 68])
    assert ax_loss.get_xlabel() == "epoch" and ax_loss.get_ylabel() == "loss"
    assert ax_acc.get_ylabel() == "accuracy (%)"
    assert ax_loss.get_legend() is not None
    _assert_png(fig, tmp_path / "x.png")


def test_training_curves_from_skorch_history():
    from skorch.history import History

    h = History()
    for epoch, (train, valid, acc) in enumerate([(0.9, 0.8, 0.55), (0.6, 0.7, 0.6)], 1):
        h.new_epoch()
        h.record("epoch", epoch)
        h.record("train_loss", train)
        h.record("valid_loss", valid)
        h.record("valid_acc", acc)
        h.record("dur", 0.5)
    fig = plot_training_curves(h)
    ax_loss, ax_acc = fig.axes
    np.testing.assert_allclose(_line(ax_loss, "train loss").get_ydata(), [0.9, 0.6])
    np.testing.assert_allclose(_line(ax_loss, "valid loss").get_ydata(), [0.8, 0.7])
    np.testing.assert_allclose(_line(ax_acc, "valid accuracy").get_ydata(), [55, 60])
    _line(ax_loss, "lowest valid loss (epoch 2)")


def test_training_curves_without_validation_split():
    history = [{"epoch": i, "train_loss": 1.0 / i} for i in (1, 2, 3)]
    fig = plot_training_curves(history)
    ax_loss, ax_acc = fig.axes
    assert [line.get_label() for line in ax_loss.get_lines()] == ["train loss"]
    assert ax_acc.get_lines() == []
    assert [t.get_text() for t in ax_acc.texts] == ["no validation split"]
    assert ax_acc.get_ylim() == (0, 100)


def test_training_curves_skip_an_interrupted_last_epoch():
    history = EPOCHS[:2] + [{"epoch": 3}]  # Ctrl-C during epoch 3: no losses yet
    fig = plot_training_curves(history)
    np.testing.assert_array_equal(_line(fig.axes[0], "train loss").get_xdata(), [1, 2])


def test_training_curves_use_the_fitted_classifier_history(monkeypatch):
    from mmsentiment.classifier import MultimodalSentimentClassifier

    monkeypatch.setattr(MultimodalSentimentClassifier, "history_", property(lambda self: EPOCHS))
    fig = plot_training_curves(MultimodalSentimentClassifier())
    np.testing.assert_allclose(_line(fig.axes[0], "valid loss").get_ydata(), [0.9, 0.6, 0.4, 0.5])


def test_training_curves_reject_an_unfitted_classifier():
    from sklearn.exceptions import NotFittedError

    from mmsentiment.classifier import MultimodalSentimentClassifier

    with pytest.raises(NotFittedError):
        plot_training_curves(MultimodalSentimentClassifier())


@pytest.mark.parametrize("bad, message", [
    ([], "empty"),
    ([{"epoch": 1}], "train_loss"),
    ([{"epoch": 1, "train_loss": float("nan")}], "train_loss"),
    ([0.5, 0.4], "not a dict"),
    ({"train_loss": 0.5}, "list of per-epoch dicts"),
    (3, "list of per-epoch dicts"),
])
def test_training_curves_reject_bad_history(bad, message):
    with pytest.raises(ValueError, match=message):
        plot_training_curves(bad)


# --- confusion matrix -----------------------------------------------------------------------

Y_TRUE = ["neg", "neu", "pos", "pos", "neg", "pos", "neu", "pos"]
Y_PRED = ["neg", "pos", "pos", "neu", "neg", "pos", "neu", "pos"]


def test_confusion_matrix_shows_counts(tmp_path):
    fig = plot_confusion_matrix(Y_TRUE, Y_PRED)
    assert len(fig.axes) == 2  # the matrix and its colorbar
    ax = fig.axes[0]
    expected = confusion_matrix(Y_TRUE, Y_PRED, labels=["neg", "neu", "pos"])
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), expected)
    # One annotation per cell, at (column, row), reading the count.
    cells = {tuple(np.round(t.get_position()).astype(int)): t.get_text() for t in ax.texts}
    assert len(cells) == 9
    for i in range(3):
        for j in range(3):
            assert cells[(j, i)] == str(expected[i, j])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["neg", "neu", "pos"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["neg", "neu", "pos"]
    assert ax.get_xlabel() == "predicted label" and ax.get_ylabel() == "true label"
    assert ax.get_title() == "Confusion matrix (accuracy 75.0 %)"
    _assert_png(fig, tmp_path / "x.png")


def test_confusion_matrix_normalized_by_row():
    fig = plot_confusion_matrix(Y_TRUE, Y_PRED, normalize="true")
    ax = fig.axes[0]
    image = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(image.sum(axis=1), 1.0)
    np.testing.assert_allclose(image, confusion_matrix(Y_TRUE, Y_PRED, normalize="true"))
    texts = {tuple(np.round(t.get_position()).astype(int)): t.get_text() for t in ax.texts}
    assert texts[(2, 2)] == "3\n75.0 %"  # 3 of the 4 true "pos" predicted "pos"
    assert texts[(1, 1)] == "1\n50.0 %"


def test_confusion_matrix_follows_the_given_labels():
    y_true = [0, 1, 1, 2]
    y_pred = [0, 1, 2, 2]
    fig = plot_confusion_matrix(y_true, y_pred, labels=[2, 1, 0])
    ax = fig.axes[0]
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()),
                                  confusion_matrix(y_true, y_pred, labels=[2, 1, 0]))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "1", "0"]


@pytest.mark.parametrize("y_true, y_pred, kwargs, message", [
    (["a", "b"], ["a"], {}, "differ in length"),
    ([], [], {}, "empty"),
    (["a", "b"], ["a", "b"], {"normalize": "rows"}, "normalize"),
    (["a", "b"], ["a", "b"], {"labels": []}, "labels"),
])
def test_confusion_matrix_rejects_bad_input(y_true, y_pred, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrix(y_true, y_pred, **kwargs)


# --- learning curve -------------------------------------------------------------------------


def _results() -> pd.DataFrame:
    rows = []
    for method, base in [("joint fine-tuning", 0.60), ("frozen encoders", 0.55)]:
        for k, fraction in enumerate([0.05, 0.1, 0.25, 0.5, 1.0]):
            for seed in range(3):
                rows.append({"method": method, "fraction": fraction, "seed": seed,
                             "accuracy": base + 0.03 * k + 0.01 * seed})
    return pd.DataFrame(rows)


def test_learning_curve_plots_mean_accuracy_per_method(tmp_path):
    results = _results()
    fig = plot_learning_curve(results)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    means = results.groupby(["method", "fraction"])["accuracy"].mean()
    stds = results.groupby(["method", "fraction"])["accuracy"].std()
    for method in ("joint fine-tuning", "frozen encoders"):
        line = _line(ax, method)
        np.testing.assert_allclose(line.get_xdata(), [0.05, 0.1, 0.25, 0.5, 1.0])
        np.testing.assert_allclose(line.get_ydata(), 100 * means[method].to_numpy())
    # Three seeds per point: one error-bar set per method, as long as the std.
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    segments = bars[0].lines[2][0].get_segments()
    heights = [abs(s[1][1] - s[0][1]) / 2 for s in segments]
    np.testing.assert_allclose(heights, 100 * stds["joint fine-tuning"].to_numpy())
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["5 %", "10 %", "25 %", "50 %", "100 %"]
    assert ax.get_ylabel() == "accuracy (%)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "joint fine-tuning", "frozen encoders"]
    _assert_png(fig, tmp_path / "x.png")


def test_learning_curve_without_seeds_has_no_error_bars():
    rows = [{"method": "frozen encoders", "fraction": f, "accuracy": a}
            for f, a in [(1.0, 0.7), (0.1, 0.5), (0.5, 0.6)]]
    fig = plot_learning_curve(rows)
    ax = fig.axes[0]
    line = _line(ax, "frozen encoders")
    np.testing.assert_allclose(line.get_xdata(), [0.1, 0.5, 1.0])  # sorted by fraction
    np.testing.assert_allclose(line.get_ydata(), [50, 60, 70])
    assert not any(isinstance(c, ErrorbarContainer) for c in ax.containers)


def test_learning_curve_from_n_train():
    rows = [{"method": "m", "n_train": n, "accuracy": a} for n, a in [(100, 0.5), (1000, 0.8)]]
    ax = plot_learning_curve(rows).axes[0]
    np.testing.assert_allclose(_line(ax, "m").get_xdata(), [100, 1000])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "1000"]
    assert ax.get_xlabel() == "training posts"


@pytest.mark.parametrize("bad, message", [
    ([], "empty"),
    (pd.DataFrame(columns=["method", "fraction", "accuracy"]), "empty"),
    ([{"method": "m", "accuracy": 0.5}], "'fraction' or 'n_train'"),
    ([{"fraction": 0.5, "accuracy": 0.5}], "method"),
    ([{"method": "m", "fraction": 0.5}], "accuracy"),
    ([{"method": "m", "fraction": 0.5, "accuracy": 75.0}], "between 0 and 1"),
    ([{"method": "m", "fraction": 5, "accuracy": 0.5}], "fraction must lie"),
    ([{"method": "m", "fraction": "half", "accuracy": 0.5}], "non-numeric"),
    ([{"method": "m", "n_train": 0, "accuracy": 0.5}], "n_train must be positive"),
])
def test_learning_curve_rejects_bad_results(bad, message):
    with pytest.raises(ValueError, match=message):
        plot_learning_curve(bad)


def test_plots_draw_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    left, middle, right, far = fig.subplots(1, 4)
    history = [{"epoch": 1, "train_loss": 1.0, "valid_loss": 0.9, "valid_acc": 0.5},
               {"epoch": 2, "train_loss": 0.8, "valid_loss": 0.85, "valid_acc": 0.6}]
    assert plot_training_curves(history, ax=(left, middle)) is fig
    assert plot_confusion_matrix(["a", "b"], ["a", "a"], ax=right) is fig
    assert right.images and middle.lines and left.lines
    curve = [{"method": "m", "fraction": f, "accuracy": a} for f, a in ((0.1, 0.5), (1.0, 0.7))]
    assert plot_learning_curve(curve, ax=far) is fig and far.lines
