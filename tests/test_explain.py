"""Tests of mmsentiment.explain: predictions with both modalities, the text alone and the
image alone, checked against predict_proba on posts that really lack a modality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.exceptions import NotFittedError

from mmsentiment import MultimodalSentimentClassifier, plot_modality_contributions

TOL = 1e-6


@pytest.fixture(scope="module", params=[
    {"finetune": "frozen", "max_epochs": 2},  # cached pooled features, concat head
    # raw pixels at prediction, and a head that masks token and patch sequences
    {"finetune": "top", "fusion": "attention", "max_epochs": 1},
], ids=["frozen", "top-attention"])
def fitted(request, small):
    X, y = small
    clf = MultimodalSentimentClassifier(random_state=0, validation_fraction=None,
                                        **request.param)
    return clf.fit(X, y)


@pytest.fixture(scope="module")
def posts(small):
    """Twelve posts of the small set under their own index, two without an image, one
    without a text and one with neither."""
    X = small[0].iloc[::3].copy()
    X.index = [f"post{i}" for i in range(len(X))]
    X.iloc[[1, 5], 1] = None
    X.iloc[2, 0] = "   "  # blank: a missing text
    X.iloc[7] = [None, None]
    return X


def _proba(table: pd.DataFrame, clf, prefix: str = "") -> np.ndarray:
    return table[[f"{prefix}proba_{c}" for c in clf.classes_]].to_numpy()


@pytest.fixture(scope="module")
def explained(fitted, posts):
    return fitted.explain(posts)


def test_joint_columns_are_predict_proba(fitted, posts, explained):
    assert list(explained.index) == list(posts.index)
    np.testing.assert_allclose(_proba(explained, fitted), fitted.predict_proba(posts),
                               atol=TOL, rtol=0)
    np.testing.assert_array_equal(explained["label"], fitted.predict(posts))
    for prefix in ("", "text_only_", "image_only_"):
        proba = _proba(explained, fitted, prefix)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=TOL)
        np.testing.assert_array_equal(explained[f"{prefix}label"],
                                      fitted.classes_[proba.argmax(axis=1)])


def test_hidden_modality_is_a_missing_one(fitted, posts, explained):
    no_images = posts.assign(image_path=None)
    np.testing.assert_allclose(_proba(explained, fitted, "text_only_"),
                               fitted.predict_proba(no_images), atol=TOL, rtol=0)
    no_texts = posts.assign(text=None)  # the classifier accepts missing texts
    np.testing.assert_allclose(_proba(explained, fitted, "image_only_"),
                               fitted.predict_proba(no_texts), atol=TOL, rtol=0)


def test_hiding_what_a_post_lacks_changes_nothing(fitted, explained):
    joint = _proba(explained, fitted)
    text_only = _proba(explained, fitted, "text_only_")
    image_only = _proba(explained, fitted, "image_only_")
    assert explained["has_image"].tolist() == [i not in (1, 5, 7) for i in range(12)]
    assert explained["has_text"].tolist() == [i not in (2, 7) for i in range(12)]
    no_image = ~explained["has_image"].to_numpy()
    no_text = ~explained["has_text"].to_numpy()
    np.testing.assert_allclose(text_only[no_image], joint[no_image], atol=TOL, rtol=0)
    np.testing.assert_allclose(image_only[no_text], joint[no_text], atol=TOL, rtol=0)
    np.testing.assert_allclose(explained.loc[no_image, "drop_without_image"], 0, atol=TOL)
    np.testing.assert_allclose(explained.loc[no_text, "drop_without_text"], 0, atol=TOL)
    # A post with neither modality: every view is the prior, and nothing drove it.
    assert explained["driven_by"].iloc[7] == "neither"
    # The post without a text is decided by its image, those without an image by the text.
    assert explained["driven_by"].iloc[2] == "image"
    assert explained["driven_by"].iloc[[1, 5]].tolist() == ["text", "text"]


def test_images_are_decoded_once_for_all_three_views(fitted, posts, monkeypatch):
    from mmsentiment.inputs import features, pipelines

    calls = []

    def counting(load):
        def load_images(images, *args, **kwargs):
            calls.append(len(images))
            return load(images, *args, **kwargs)
        return load_images

    monkeypatch.setattr(pipelines, "load_images", counting(pipelines.load_images))
    monkeypatch.setattr(features, "load_images", counting(features.load_images))
    fitted.explain(posts)
    # Raw pixels are decoded in one pass; cached features (frozen) need no decoding at all.
    assert calls == ([] if fitted.finetune == "frozen" else [len(posts)])


def test_summary_columns_follow_the_probabilities(fitted, explained):
    joint = _proba(explained, fitted)
    k = joint.argmax(axis=1)
    rows = np.arange(len(k))
    np.testing.assert_allclose(explained["drop_without_text"],
                               joint[rows, k] - _proba(explained, fitted, "image_only_")[rows, k])
    np.testing.assert_allclose(explained["drop_without_image"],
                               joint[rows, k] - _proba(explained, fitted, "text_only_")[rows, k])
    complete = explained["has_text"] & explained["has_image"]
    for _, row in explained[complete].iterrows():
        agree = {m for m in ("text", "image") if row[f"{m}_only_label"] == row["label"]}
        expected = {frozenset(): "neither", frozenset({"text"}): "text",
                    frozenset({"image"}): "image"}.get(frozenset(agree), "both")
        assert row["driven_by"] == expected


def test_an_array_gets_a_range_index_and_the_same_rows(fitted, posts, explained):
    with pytest.warns(UserWarning, match="feature names"):  # as predict_proba: fitted on a frame
        table = fitted.explain(posts.to_numpy())
    assert isinstance(table.index, pd.RangeIndex) and len(table) == len(posts)
    np.testing.assert_allclose(_proba(table, fitted), _proba(explained, fitted), atol=TOL)


def test_explain_needs_a_fitted_model_and_valid_posts(small, fitted):
    with pytest.raises(NotFittedError):
        MultimodalSentimentClassifier().explain(small[0])
    with pytest.raises(ValueError, match="feature names"):
        fitted.explain(small[0].rename(columns={"text": "caption"}))


# --- plot ------------------------------------------------------------------------------------


def test_plot_shows_the_predicted_class_in_each_view(fitted, explained, tmp_path):
    fig = plot_modality_contributions(explained, n=10)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [c.get_label() for c in ax.containers] == ["joint", "text only", "image only"]
    assert all(len(c) == 10 for c in ax.containers)
    k = _proba(explained, fitted).argmax(axis=1)[:10]
    for prefix, bars in zip(("", "text_only_", "image_only_"), ax.containers):
        expected = _proba(explained, fitted, prefix)[np.arange(10), k]
        heights = np.array([b.get_height() for b in bars])
        shown = ~np.isnan(heights)
        np.testing.assert_allclose(heights[shown], expected[shown])
    # Left out: text alone for the post without a text, image alone for those without one.
    text_heights = [b.get_height() for b in ax.containers[1]]
    image_heights = [b.get_height() for b in ax.containers[2]]
    assert [i for i, h in enumerate(text_heights) if np.isnan(h)] == [2, 7]
    assert [i for i, h in enumerate(image_heights) if np.isnan(h)] == [1, 5, 7]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [f"{i}\n{label}" for i, label in
                     zip(explained.index[:10], explained["label"][:10])]
    fig.savefig(tmp_path / "modalities.png")
    assert (tmp_path / "modalities.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_draws_into_given_axes_and_shows_at_most_the_rows():
    from matplotlib.figure import Figure as NewFigure

    table = pd.DataFrame({"label": [1, 0], "proba_0": [0.3, 0.9], "proba_1": [0.7, 0.1],
                          "text_only_proba_0": [0.5, 0.8], "text_only_proba_1": [0.5, 0.2],
                          "image_only_proba_0": [0.2, 0.4], "image_only_proba_1": [0.8, 0.6]},
                         index=["a", "b"])
    fig = NewFigure()
    ax = fig.add_subplot(1, 2, 2)
    assert plot_modality_contributions(table, n=50, ax=ax) is fig
    assert [[b.get_height() for b in c] for c in ax.containers] == \
        [[0.7, 0.9], [0.5, 0.8], [0.8, 0.4]]
    first = plot_modality_contributions(table, n=1)
    assert [len(c) for c in first.axes[0].containers] == [1, 1, 1]


@pytest.mark.parametrize("explanation, n, match", [
    ([{"label": "a"}], 5, "DataFrame"),
    (pd.DataFrame({"label": []}), 5, "empty"),
    (pd.DataFrame({"proba_a": [1.0]}), 5, "'label'"),
    (pd.DataFrame({"label": ["a"], "proba_a": [1.0]}), 5, "text_only_proba_a"),
    (pd.DataFrame({"label": ["a"]}), 0, "positive integer"),
])
def test_plot_rejects_what_is_not_an_explanation(explanation, n, match):
    with pytest.raises(ValueError, match=match):
        plot_modality_contributions(explanation, n=n)


def test_explain_runs_chunk_by_chunk_with_the_same_rows(fitted, posts, explained,
                                                       monkeypatch):
    import mmsentiment.inputs.pipelines as pipelines

    monkeypatch.setattr(pipelines, "PREDICT_CHUNK", 3)
    chunked = fitted.explain(posts)
    assert chunked.index.equals(explained.index)
    assert chunked["has_image"].tolist() == explained["has_image"].tolist()
    numbers = [c for c in explained.columns if "proba_" in c]
    # bfloat16 (precision="auto") varies with batch composition: other batches pad texts to
    # other lengths (up to 1.1e-3 measured with the attention head).
    np.testing.assert_allclose(chunked[numbers], explained[numbers], atol=5e-3)
