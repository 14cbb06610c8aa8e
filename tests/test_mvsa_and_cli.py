"""A fit on a few dozen real MVSA-Single posts, and the demo command."""

from __future__ import annotations

import numpy as np

from mmsentiment import MultimodalSentimentClassifier, load_mvsa
from mmsentiment.cli import main


def test_fit_on_real_posts(mvsa_root):
    train = load_mvsa(mvsa_root, "train").groupby("label").head(16)
    dev = load_mvsa(mvsa_root, "dev").head(24)
    clf = MultimodalSentimentClassifier(max_epochs=1, batch_size=16, random_state=0,
                                        validation_fraction=None)
    clf.fit(train[["text", "image_path"]], train["label"])
    proba = clf.predict_proba(dev[["text", "image_path"]])
    assert proba.shape == (24, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert set(clf.classes_) == {"positive", "neutral", "negative"}
    assert 0.0 <= clf.score(dev[["text", "image_path"]], dev["label"]) <= 1.0


def test_demo_command(tmp_path, capsys):
    out = tmp_path / "demo.joblib"
    assert main(["demo", "--epochs", "1", "--verbose", "0", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Held-out accuracy" in printed and "synthetic" in printed
    assert out.is_file() and out.stat().st_size > 1_000_000
