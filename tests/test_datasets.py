"""The bundled demo set and the MVSA-Single loader."""

from __future__ import annotations

import pytest
from PIL import Image

from mmsentiment import load_demo, load_mvsa
from mmsentiment.datasets import merge_labels


def test_demo_set_is_small_and_complete():
    df = load_demo()
    assert len(df) == 162
    assert set(df["label"]) == {"positive", "neutral", "negative"}
    assert all(Image.open(p).size == (128, 128) for p in df["image_path"][:5])
    X, y = load_demo(return_X_y=True)
    assert list(X.columns) == ["text", "image_path"] and len(y) == 162


def test_merge_rule():
    assert merge_labels("positive", "positive") == "positive"
    assert merge_labels("neutral", "negative") == "negative"
    assert merge_labels("negative", "neutral") == "negative"
    assert merge_labels("negative", "positive") is None


def test_load_mvsa_counts(mvsa_root):
    train = load_mvsa(mvsa_root, "train")
    dev = load_mvsa(mvsa_root, "dev")
    assert len(train) == 3611 and len(dev) == 450
    assert train["label"].value_counts().to_dict() == {
        "positive": 2147, "negative": 1088, "neutral": 376}
    assert not set(train["id"]) & set(dev["id"])
    assert train["text"].map(len).gt(0).mean() > 0.99
    # GB18030-encoded files decode to real characters, not replacement marks.
    assert train["text"].str.contains("\ufffd").mean() < 0.01


def test_load_mvsa_rejects_other_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an MVSA-Single folder"):
        load_mvsa(tmp_path)
