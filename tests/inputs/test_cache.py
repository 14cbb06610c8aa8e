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


def test_an_unusable_cache_warns_once_and_the_fit_goes_on(small, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file, not a folder")
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=1,
                                        cache_dir=blocker / "cache", random_state=0)
    with pytest.warns(UserWarning, match="cannot be written") as record:
        clf.fit(X, y)
    assert sum("cannot be written" in str(w.message) for w in record) == 1
    assert clf.predict(X[:2]).shape == (2,)


def test_entries_are_checked_before_they_are_read(tmp_path):
    cache = FeatureCache(tmp_path, "text-demo", (3,), "float32")
    cache.put("aa1", np.ones(3, dtype="float32"))
    path = cache._path("aa1")
    np.save(path, np.full(3, np.nan, dtype="float32"))
    assert cache.get("aa1") is None  # NaN: a miss
    header = np.lib.format.header_data_from_array_1_0(np.ones(3, dtype="float32"))
    with open(path, "wb") as fh:  # a header that claims a huge shape, and no data
        np.lib.format.write_array_header_1_0(fh, {**header, "shape": (10**12,)})
    assert cache.get("aa1") is None
    path.write_bytes(b"\x93NUMPY" + b"\x00" * 10**5)  # larger than any entry: not read
    assert cache.get("aa1") is None


def test_prune_removes_old_layouts_then_the_oldest_entries(tmp_path):
    import os

    from mmsentiment.inputs.cache import cache_info, clear, prune

    key = "image-demo-" + "0" * 20
    cache = FeatureCache(tmp_path, key, (256,), "float32")
    for k in range(4):
        cache.put(f"k{k}", np.zeros(256, dtype="float32"))
        os.utime(cache._path(f"k{k}"), (1000 + k, 1000 + k))
    old = tmp_path / ("text-old-" + "1" * 20)
    (old / "ab").mkdir(parents=True)
    np.save(old / "ab" / "abc.npy", np.zeros(4, dtype="float32"))
    (old / "LAYOUT").write_text("0")  # written by another layout version
    mine = tmp_path / "image-assets" / "ab"  # a user's folder that looks a little like ours
    mine.mkdir(parents=True)
    np.save(mine / "photo.npy", np.zeros(4, dtype="float32"))
    info = cache_info(tmp_path)
    assert info["folders"][old.name]["layout"] == "old"
    assert info["folders"][key]["entries"] == 4 and "image-assets" not in info["folders"]
    entry = cache._path("k0").stat().st_size
    prune(tmp_path, max_bytes=2 * entry)
    assert not old.exists()
    assert [cache.get(f"k{k}") is not None for k in range(4)] == [False, False, True, True]
    assert clear(tmp_path) > 0 and cache_info(tmp_path)["entries"] == 0
    assert (mine / "photo.npy").exists()


def test_cache_command(tmp_path, capsys):
    from mmsentiment.cli import main

    key = "text-demo-" + "a" * 20
    FeatureCache(tmp_path, key, (3,), "float32").put("aa", np.ones(3, "float32"))
    assert main(["cache", "info", "--dir", str(tmp_path)]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert main(["cache", "prune", "--dir", str(tmp_path), "--max-size", "0"]) == 0
    assert "0 entries" in capsys.readouterr().out
