"""The on-disk feature cache: keys, sharing, corruption, and frozen fits that use it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.encoders import ImageEncoder, TextEncoder
from mmsentiment.hashing import image_key
from mmsentiment.inputs.cache import FeatureCache, resolve_cache_dir
from mmsentiment.paths import default_cache_dir

FAST = {"finetune": "frozen", "max_epochs": 4, "random_state": 0}


def entries(root):
    return sorted(p for p in root.rglob("*.npy"))


def test_keys_follow_content_not_path(tmp_path, image_file):
    a = image_file("a.png", color=(1, 2, 3))
    shutil.copy(a, tmp_path / "copy.png")
    b = image_file("b.png", color=(3, 2, 1))
    assert image_key(a) == image_key(tmp_path / "copy.png") != image_key(b)
    assert image_key(tmp_path / "missing.png") is None


def test_encoder_keys_follow_weights_and_preprocessing():
    import torch

    t1, t2 = TextEncoder("all-MiniLM-L6-v2"), TextEncoder("all-MiniLM-L6-v2")
    assert t1.cache_key() == t2.cache_key()
    with torch.no_grad():
        next(t2.parameters()).add_(1e-3)
    assert t1.cache_key() != t2.cache_key()
    assert ImageEncoder("tf_efficientnet_lite0").cache_key() != \
        ImageEncoder("tf_efficientnet_lite2").cache_key()


def test_corrupt_and_wrong_shape_entries_are_misses(tmp_path):
    cache = FeatureCache(tmp_path, "enc", (4,), "float32")
    cache.put("k", np.arange(4, dtype="float32"))
    path = next(iter(entries(tmp_path)))
    path.write_bytes(path.read_bytes()[:20])
    assert cache.get("k") is None
    FeatureCache(tmp_path, "enc", (5,), "float32").put("k", np.zeros(5, dtype="float32"))
    assert cache.get("k") is None
    cache.put("k", np.ones(4, dtype="float32"))
    assert cache.get("k").tolist() == [1.0] * 4
    assert not list(tmp_path.rglob("*.tmp"))


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("MMSENTIMENT_CACHE", str(tmp_path / "c"))
    assert resolve_cache_dir("auto") == default_cache_dir() == tmp_path / "c"
    assert resolve_cache_dir(None) is None
    assert resolve_cache_dir(tmp_path / "x") == tmp_path / "x"


def test_frozen_fits_share_the_cache(small, tmp_path):
    X, y = small
    root = tmp_path / "cache"
    a = MultimodalSentimentClassifier(**FAST, cache_dir=root).fit(X, y)
    n_text = len(set(X["text"]))
    files = entries(root)
    assert len(files) == n_text + len(set(X["image_path"]))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    # A second fit, and predictions, read the cache: nothing is written again.
    b = MultimodalSentimentClassifier(**FAST, cache_dir=root).fit(X, y)
    b.predict_proba(X)
    assert {p: p.stat().st_mtime_ns for p in entries(root)} == stamps
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # Same results as without a cache.
    c = MultimodalSentimentClassifier(**FAST, cache_dir=None).fit(X, y)
    np.testing.assert_allclose(c.predict_proba(X), a.predict_proba(X), atol=1e-6)


def test_stale_entry_is_rebuilt(small, tmp_path):
    X, y = small
    root = tmp_path / "cache"
    ref = MultimodalSentimentClassifier(**FAST, cache_dir=None).fit(X, y).predict_proba(X)
    MultimodalSentimentClassifier(**FAST, cache_dir=root).fit(X, y)
    for path in entries(root)[:10]:
        path.write_bytes(b"garbage")
    again = MultimodalSentimentClassifier(**FAST, cache_dir=root).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X), ref, atol=1e-6)
    assert all(np.load(p).shape in {(384,), (1280,)} for p in entries(root))


def test_parallel_grid_search_shares_one_cache(small, tmp_path):
    X, y = small
    root = tmp_path / "cache"
    search = GridSearchCV(MultimodalSentimentClassifier(**FAST, cache_dir=root),
                          {"fusion": ["concat", "paper"]}, cv=2, n_jobs=2).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert len(entries(root)) == len(set(X["text"])) + len(set(X["image_path"]))


@pytest.mark.parametrize("finetune", ["full"])
def test_finetuned_fits_do_not_touch_the_cache(small, tmp_path, finetune):
    X, y = small
    root = tmp_path / "cache"
    MultimodalSentimentClassifier(finetune=finetune, max_epochs=1, batch_size=18,
                                  validation_fraction=None, cache_dir=root).fit(X[:18], y[:18])
    assert not root.exists() or not entries(root)


def test_fingerprint_reads_the_bytes_of_any_dtype():
    import torch

    from mmsentiment.hashing import fingerprint

    ones = torch.ones(3)
    assert fingerprint(ones) == fingerprint(ones.clone())
    assert fingerprint(ones) != fingerprint(ones * 2)
    # numpy has no bfloat16: the fingerprint hashes raw bytes instead.
    assert fingerprint(ones.bfloat16()) != fingerprint(ones.half())
