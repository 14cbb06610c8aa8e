"""Precision settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmsentiment.precision import Precision, cpu_has_bf16, resolve_precision


@pytest.mark.parametrize("name, dtype, scales", [("32", None, False),
                                                 ("bf16", torch.bfloat16, False),
                                                 ("fp16", torch.float16, True)])
def test_settings(name, dtype, scales):
    precision = Precision(name)
    assert precision.dtype == dtype and precision.scales_loss == scales
    with precision.autocast("cpu"):
        out = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert out.dtype == (dtype or torch.float32)


def test_unknown_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        Precision("int8")


@pytest.mark.parametrize("amx, avx512_bf16, expected", [(False, False, "32"),
                                                        (True, False, "bf16"),
                                                        (False, True, "bf16")])
def test_auto_follows_the_cpus_bfloat16_support(monkeypatch, amx, avx512_bf16, expected):
    # Simulated CPUs: the checks PyTorch's own kernels dispatch on.
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert cpu_has_bf16() == (amx or avx512_bf16)
    assert resolve_precision("auto", "cpu").name == expected


def test_auto_on_gpus_and_other_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda:0").name == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "cuda").name == "32"
    assert resolve_precision("auto", "mps").name == "32"


def test_explicit_settings_are_kept_on_any_device():
    assert resolve_precision("32", "cpu").dtype is None
    assert resolve_precision("fp16", "cpu").scales_loss
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("int8", "cpu")


@pytest.fixture(scope="module")
def float32_model(small):
    from mmsentiment import MultimodalSentimentClassifier

    X, y = small
    clf = MultimodalSentimentClassifier(finetune="top-image", max_epochs=1, batch_size=12,
                                        precision="32", validation_fraction=None,
                                        random_state=0)
    return clf.fit(X, y)


def test_bfloat16_predictions_are_close_to_float32(float32_model, small):
    # The same fitted weights, predicted with bfloat16 autocast: bfloat16 keeps 8 bits of
    # mantissa, so probabilities move by a few thousandths. Tolerance: 0.03 per
    # probability, and the same label for at least 90 % of the posts.
    X, _ = small
    net = float32_model.net_
    exact = float32_model.predict_proba(X)
    net.precision = Precision("bf16")
    try:
        approx = float32_model.predict_proba(X)
    finally:
        net.precision = Precision("32")
    assert not np.array_equal(exact, approx)  # bfloat16 really ran
    assert np.abs(exact - approx).max() < 0.03
    assert np.mean(exact.argmax(1) == approx.argmax(1)) >= 0.9


def test_auto_keeps_float32_for_cpu_steps_that_train_a_whole_convnet(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_precision("auto", "cpu", trains_convnet=True).name == "32"
    assert resolve_precision("auto", "cpu", trains_convnet=False).name == "bf16"
    assert resolve_precision("bf16", "cpu", trains_convnet=True).name == "bf16"  # as asked
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda", trains_convnet=True).name == "bf16"


def test_training_steps_and_inference_may_differ(small, monkeypatch):
    from mmsentiment import MultimodalSentimentClassifier

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    X, y = small
    seen = []
    clf = MultimodalSentimentClassifier(finetune="full", max_epochs=1, batch_size=12,
                                        validation_fraction=None, random_state=0,
                                        device="cpu")
    build = clf.build_module

    def spy(n_classes, **kwargs):
        module = build(n_classes, **kwargs)
        module.head.register_forward_hook(
            lambda m, i, out: seen.append((m.training, out.dtype)))
        return module

    clf.build_module = spy
    clf.fit(X[:12], y[:12])
    clf.predict_proba(X[:3])
    assert {dtype for training, dtype in seen if training} == {torch.float32}
    assert {dtype for training, dtype in seen if not training} == {torch.bfloat16}
