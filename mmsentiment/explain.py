"""Which modality drove a prediction: each post predicted jointly, from its text alone and
from its image alone, and a plot of the three.

The network handles a missing text or image (a learned "missing" vector or a mask, trained
with modality dropout), so hiding one modality of a post asks the model what it predicts
from the other alone. `ExplainMixin.explain` decodes and encodes the posts once and runs the
fitted network three times over the same dataset: as given, with every image hidden, and
with every text hidden (`mmsentiment.inputs.PostDataset.hide`). A hidden modality is treated
exactly as a missing one, so the text-only probabilities equal `predict_proba` on the same
posts with no images, and the image-only ones `predict_proba` with no texts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from .inputs import predict_chunks
from .plots import _new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ExplainMixin", "plot_modality_contributions"]

VIEWS = (("", None), ("text_only_", "image"), ("image_only_", "text"))
"""Column prefix of each run and the modality it hides."""


class ExplainMixin:
    """`explain`: the classifier's predictions with both modalities, the text alone and the
    image alone."""

    def explain(self, X) -> pd.DataFrame:
        """Predict each post with both modalities, with its text alone and with its image alone.

        The posts are decoded and encoded once; the fitted network then runs over them as
        given, with their images hidden and with their texts hidden. A hidden modality is
        treated as a missing one (docs/guide/bad-input.md), so ``text_only_proba_*``
        equals `predict_proba` on the same posts with every image set to None, and
        ``image_only_proba_*`` equals it with every text set to None.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, 2)
            Posts, as for `predict_proba`.

        Returns
        -------
        explanation : pandas.DataFrame
            One row per post, indexed as X where X is a DataFrame (else 0 to n - 1), with
            the columns, where ``<c>`` runs over ``classes_``:

            - ``label``: the predicted class (`predict`).
            - ``proba_<c>``: the class probabilities (`predict_proba`).
            - ``text_only_label``, ``text_only_proba_<c>``: the prediction with the image
              hidden.
            - ``image_only_label``, ``image_only_proba_<c>``: the prediction with the text
              hidden.
            - ``has_text``, ``has_image``: whether the post has each modality. Hiding a
              modality a post lacks changes nothing: for a post without an image the
              text-only prediction is the joint one, and its image-only prediction is the
              model's prior for posts with neither.
            - ``drop_without_text``, ``drop_without_image``: how much the predicted
              class's probability falls when the text (or the image) is hidden; negative
              where hiding it makes the predicted class more likely.
            - ``driven_by``: which modalities the post has that predict ``label`` on their
              own: ``"both"``, ``"text"``, ``"image"``, or ``"neither"`` (only the
              combination, or a post with neither modality, gives that class).

        Examples
        --------
        >>> from mmsentiment import MultimodalSentimentClassifier, load_demo
        >>> X, y = load_demo(return_X_y=True)
        >>> clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2,
        ...                                     random_state=0).fit(X, y)
        >>> table = clf.explain(X[:4])
        >>> table[["proba_negative", "proba_neutral", "proba_positive"]].sum(axis=1).round(6)
        0    1.0
        1    1.0
        2    1.0
        3    1.0
        dtype: float64
        >>> bool(table["driven_by"].isin(["both", "text", "image", "neither"]).all())
        True
        """
        check_is_fitted(self, "net_")
        texts, images = self._validate_X(X, reset=False)
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(texts))
        names = [str(c) for c in self.classes_]
        chunks: dict[str, list[np.ndarray]] = {prefix: [] for prefix, _ in VIEWS}
        present: dict[str, list[np.ndarray]] = {"text_present": [], "image_present": []}
        # Chunk by chunk, as predict_proba: memory holds one chunk's decoded images.
        for dataset in predict_chunks(self.pipeline_, texts, images, self.net_.module_,
                                      str(self.net_.device)):
            for prefix, hidden in VIEWS:
                # The classifier's own scoring, as predict_proba (logit adjustment included).
                chunks[prefix].append(self._scores(
                    dataset if hidden is None else dataset.hide(hidden), logits=False))
            for name, values in present.items():
                values.append(dataset.column(name).numpy().astype(bool))
        parts, probas = [], {}
        for prefix, _ in VIEWS:
            proba = probas[prefix] = np.concatenate(chunks[prefix])
            label = pd.DataFrame({f"{prefix}label": self.classes_[proba.argmax(axis=1)]},
                                 index=index)
            parts += [label, pd.DataFrame(proba, index=index,
                                          columns=[f"{prefix}proba_{c}" for c in names])]
        table = pd.concat(parts, axis=1)
        # As the network sees them: an unreadable image skipped under on_bad_image="blank"
        # is absent.
        has_text = np.concatenate(present["text_present"])
        has_image = np.concatenate(present["image_present"])
        predicted = probas[""].argmax(axis=1)
        rows = np.arange(len(predicted))
        joint = probas[""][rows, predicted]
        text_agrees = has_text & (probas["text_only_"].argmax(axis=1) == predicted)
        image_agrees = has_image & (probas["image_only_"].argmax(axis=1) == predicted)
        table["has_text"], table["has_image"] = has_text, has_image
        table["drop_without_text"] = joint - probas["image_only_"][rows, predicted]
        table["drop_without_image"] = joint - probas["text_only_"][rows, predicted]
        table["driven_by"] = np.select([text_agrees & image_agrees, text_agrees, image_agrees],
                                       ["both", "text", "image"], "neither")
        return table


def _predicted_class_probas(explanation: pd.DataFrame) -> np.ndarray:
    """The predicted class's probability in each row: joint, text only, image only
    (``(n, 3)``), NaN where the post lacks the modality that remains."""
    if not isinstance(explanation, pd.DataFrame):
        raise ValueError("explanation must be the DataFrame returned by MultimodalSentiment"
                         f"Classifier.explain; got {type(explanation).__name__}.")
    if explanation.empty:
        raise ValueError("explanation is empty: there are no posts to plot.")
    if "label" not in explanation.columns:
        raise ValueError("explanation lacks the column 'label'; it should come from "
                         "MultimodalSentimentClassifier.explain.")
    wanted = [[f"{prefix}proba_{label}" for prefix, _ in VIEWS]
              for label in explanation["label"]]
    missing = sorted({c for row in wanted for c in row} - set(explanation.columns))
    if missing:
        raise ValueError(f"explanation lacks the column(s) {missing}; it should come from "
                         "MultimodalSentimentClassifier.explain.")
    values = np.array([explanation.iloc[i][row].to_numpy(dtype=float)
                       for i, row in enumerate(wanted)])
    for j, presence in ((1, "has_text"), (2, "has_image")):
        if presence in explanation.columns:  # that modality alone is not there to show
            values[~explanation[presence].to_numpy(dtype=bool), j] = np.nan
    return values


def plot_modality_contributions(explanation: pd.DataFrame, n: int = 20,
                                ax: Axes | None = None) -> Figure:
    """Plot, for each post, the predicted class's probability with both modalities, the text
    alone and the image alone.

    One group of three bars per post (the first ``n`` rows of ``explanation``): a post
    whose text-only bar stays near the joint one while its image-only bar falls was
    decided by its text, and the other way round. For a post without an image (or
    without a text) the bar of that modality alone is left out: hiding what is not there
    says nothing.

    Parameters
    ----------
    explanation : pandas.DataFrame
        The output of `MultimodalSentimentClassifier.explain` (the columns ``label`` and
        ``proba_*``, ``text_only_proba_*``, ``image_only_proba_*`` of each predicted class;
        ``has_text`` / ``has_image`` where known).
    n : int, default=20
        How many posts to show, from the top.
    ax : matplotlib.axes.Axes, optional
        Where to draw; by default a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure drawn on; its axes hold three bar containers (joint, text only, image
        only) of one bar per post, with the posts' index and label as tick labels.

    Raises
    ------
    ValueError
        If ``explanation`` is not a DataFrame, is empty or lacks a column, or ``n`` is not
        a positive integer.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"label": ["pos", "neg"],
    ...                       "proba_neg": [0.2, 0.7], "proba_pos": [0.8, 0.3],
    ...                       "text_only_proba_neg": [0.4, 0.6],
    ...                       "text_only_proba_pos": [0.6, 0.4],
    ...                       "image_only_proba_neg": [0.1, 0.5],
    ...                       "image_only_proba_pos": [0.9, 0.5]})
    >>> fig = plot_modality_contributions(table)
    >>> [[float(b.get_height()) for b in bars] for bars in fig.axes[0].containers]
    [[0.8, 0.7], [0.6, 0.6], [0.9, 0.5]]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}.")
    shown = explanation.iloc[:n] if isinstance(explanation, pd.DataFrame) else explanation
    values = _predicted_class_probas(shown)
    x = np.arange(len(values))
    if ax is None:
        ax = _new_figure(max(6.0, 2.5 + 0.8 * len(values)), 4.5).add_subplot()
    fig = ax.figure
    width = 0.27
    for j, (name, color) in enumerate((("joint", "tab:gray"), ("text only", "tab:blue"),
                                       ("image only", "tab:orange"))):
        ax.bar(x + (j - 1) * width, values[:, j], width, label=name, color=color)
    ax.set_xticks(x, [f"{i}\n{label}" for i, label in zip(shown.index, shown["label"])])
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.6, len(values) - 0.4)
    ax.set_xlabel("post (index and predicted class)")
    ax.set_ylabel("probability of the predicted class")
    ax.set_title("Predicted class's probability with each modality")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
