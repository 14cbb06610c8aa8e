"""Device handling on a CUDA GPU: placement, mixed precision, caches, and moving to the CPU.

Every test here skips on a machine without a GPU (CI has none); run them where one is
visible: ``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from mmsentiment import ImageEmbedder, MultimodalSentimentClassifier, TextEmbedder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (none is visible)")

ONE_EPOCH = {"max_epochs": 1, "batch_size": 12, "validation_fraction": None, "random_state": 0}


def devices(clf: MultimodalSentimentClassifier) -> set[str]:
    """The device types holding the fitted network's parameters and buffers."""
    module = clf.net_.module_
    return {t.device.type for t in [*module.parameters(), *module.buffers()]}


def check_proba(proba: np.ndarray, n: int) -> None:
    assert isinstance(proba, np.ndarray) and proba.shape == (n, 3)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def gpu_full(small):
    """The default (full fine-tuning) model, fitted with ``device="auto"`` on the GPU."""
    X, y = small
    return MultimodalSentimentClassifier(**ONE_EPOCH).fit(X, y)


def test_auto_device_trains_and_predicts_on_the_gpu(gpu_full, small):
    X, y = small
    assert str(gpu_full.net_.device).startswith("cuda")
    assert devices(gpu_full) == {"cuda"}
    check_proba(gpu_full.predict_proba(X), len(X))
    assert set(gpu_full.predict(X)) <= set(np.unique(y))
    assert np.isfinite(gpu_full.history_[:, "train_loss"]).all()


@pytest.mark.parametrize("finetune", ["top", "frozen"])
def test_top_and_frozen_fits_on_the_gpu(small, finetune, tmp_path):
    # "top" caches the frozen image stages' activations, "frozen" the encoders' outputs:
    # both are computed on the GPU and must come back to the CPU before they are stored.
    X, y = small
    params = {**ONE_EPOCH, "finetune": finetune, "cache_dir": tmp_path, "device": "cuda"}
    first = MultimodalSentimentClassifier(**params).fit(X, y)
    assert devices(first) == {"cuda"}
    check_proba(first.predict_proba(X), len(X))
    if finetune == "frozen":  # a second fit reads the cached features, writing nothing
        files = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
        assert files, "the frozen fit wrote no feature cache"
        second = MultimodalSentimentClassifier(**params).fit(X, y)
        assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == files
        # Not bit for bit the first model: GPU training is not repeatable (see random_state).
        check_proba(second.predict_proba(X), len(X))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_the_gpu(small, precision):
    X, y = small
    clf = MultimodalSentimentClassifier(**ONE_EPOCH, precision=precision).fit(X, y)
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    # The weights stay float32; only the forward pass runs in the lower precision.
    assert {p.dtype for p in clf.net_.module_.parameters()} == {torch.float32}
    # ... and does run in it: the head's first layer computes in the lower precision.
    seen = []
    first = next(m for m in clf.net_.module_.head.modules() if isinstance(m, torch.nn.Linear))
    hook = first.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    try:
        check_proba(clf.predict_proba(X), len(X))
    finally:
        hook.remove()
    assert seen and set(seen) == {torch.bfloat16 if precision == "bf16" else torch.float16}


def hide_gpu(monkeypatch) -> None:
    """Make this process look like a machine without a GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_gpu_pickle_loads_on_a_machine_without_gpu(gpu_full, small, tmp_path, monkeypatch):
    X, _ = small
    expected = gpu_full.predict_proba(X)
    joblib.dump(gpu_full, tmp_path / "m.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "m.joblib").predict_proba(X), expected)
    hide_gpu(monkeypatch)
    with pytest.warns(UserWarning, match="trained on a GPU"):
        loaded = joblib.load(tmp_path / "m.joblib")
    assert str(loaded.net_.device) == "cpu" and devices(loaded) == {"cpu"}
    # The same weights on another device: equal up to the GPU's float arithmetic (TF32
    # convolutions by default).
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=2e-2)


def test_gpu_safetensors_file_loads_on_either_device(gpu_full, small, tmp_path, monkeypatch):
    X, _ = small
    expected = gpu_full.predict_proba(X)
    path = gpu_full.save(tmp_path / "m.safetensors")
    on_gpu = MultimodalSentimentClassifier.load(path)
    assert devices(on_gpu) == {"cuda"}
    np.testing.assert_allclose(on_gpu.predict_proba(X), expected, atol=1e-5)
    hide_gpu(monkeypatch)
    on_cpu = MultimodalSentimentClassifier.load(path)
    assert devices(on_cpu) == {"cpu"}
    np.testing.assert_allclose(on_cpu.predict_proba(X), expected, atol=2e-2)


class StopAtEpoch(Callback):
    """Raises KeyboardInterrupt as epoch ``epoch`` begins."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_checkpoint_written_on_the_gpu_resumes(small, tmp_path):
    X, y = small
    params = {**ONE_EPOCH, "finetune": "top", "max_epochs": 2, "device": "cuda",
              "checkpoint_dir": tmp_path / "ckpt"}
    # A fit cut short as its second epoch begins (as Ctrl-C would).
    stop = MultimodalSentimentClassifier(**params, callbacks=[StopAtEpoch(2)])
    with pytest.warns(UserWarning, match="interrupted"):
        stop.fit(X, y)
    assert "finished" not in json.loads((tmp_path / "ckpt" / "fit.json").read_text())
    resumed = MultimodalSentimentClassifier(**params).fit(X, y)
    assert resumed.history_[:, "epoch"] == [1, 2]
    assert devices(resumed) == {"cuda"}
    check_proba(resumed.predict_proba(X), len(X))


def test_embedders_on_the_gpu_match_the_cpu(small, tmp_path):
    X, _ = small
    for make, column in ((TextEmbedder, "text"), (ImageEmbedder, "image_path")):
        gpu = make(device="cuda", cache_dir=None).fit_transform(X[column])
        cpu = make(device="cpu", cache_dir=None).fit_transform(X[column])
        assert gpu.shape == cpu.shape and np.isfinite(gpu).all()
        np.testing.assert_allclose(gpu, cpu, atol=5e-2)
