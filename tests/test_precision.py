"""Precision settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmsentiment.precision import Precision, cpu_has_bf16, resolve_precision, text_autocast


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


def test_auto_trains_the_text_encoder_alone_in_bfloat16_beside_a_whole_convnet(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_precision("auto", "cpu", trains_convnet=True) == \
        Precision("bf16", text_only=True)
    assert resolve_precision("auto", "cpu", trains_convnet=False) == Precision("bf16")
    assert resolve_precision("bf16", "cpu", trains_convnet=True) == Precision("bf16")  # as asked
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda", trains_convnet=True) == Precision("bf16")
    # A CPU without bfloat16 arithmetic (simulated): float32 throughout.
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert resolve_precision("auto", "cpu", trains_convnet=True) == Precision("32")


def test_a_text_only_precision_is_bfloat16():
    with pytest.raises(ValueError, match="text-only precision is bfloat16"):
        Precision("fp16", text_only=True)


def test_text_autocast_acts_only_inside_a_text_only_context():
    product = lambda: (torch.ones(2, 2) @ torch.ones(2, 2)).dtype  # noqa: E731
    with text_autocast("cpu") as dtype:
        assert dtype is None and product() == torch.float32
    with Precision("bf16", text_only=True).autocast("cpu"):
        assert product() == torch.float32  # outside the text encoder: float32
        with text_autocast("cpu") as dtype:
            assert dtype == torch.bfloat16 and product() == torch.bfloat16
    with text_autocast("cpu") as dtype:  # the scope ended with its context
        assert dtype is None


def test_text_only_bfloat16_training_stays_close_to_float32(small, monkeypatch):
    # Two fits of the same seed, one with float32 steps and one with the text encoder's
    # forward in bfloat16 (what "auto" trains with beside a whole convnet), both predicted
    # in float32: the weights differ by bfloat16's rounding of one epoch's gradients.
    # Tolerance: 0.05 per probability.
    from mmsentiment import MultimodalSentimentClassifier

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    X, y = small
    params = {"finetune": "full", "max_epochs": 1, "batch_size": 12, "device": "cpu",
              "validation_fraction": None, "random_state": 0}
    exact = MultimodalSentimentClassifier(precision="32", **params).fit(X, y)
    mixed = MultimodalSentimentClassifier(precision="auto", **params).fit(X, y)
    assert mixed.net_.train_precision == Precision("bf16", text_only=True)
    mixed.net_.precision = Precision("32")
    a, b = exact.predict_proba(X), mixed.predict_proba(X)
    assert not np.array_equal(a, b)  # bfloat16 really ran in training
    assert np.abs(a - b).max() < 0.05


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
        # The head, and the first matrix product of each encoder (their outputs are
        # pooled and normalised in float32 even under autocast).
        watched = {"head": module.head,
                   "text_encoder": next(m for m in module.text_encoder.modules()
                                        if isinstance(m, torch.nn.Linear)),
                   "image_encoder": next(m for m in module.image_encoder.modules()
                                         if isinstance(m, torch.nn.Conv2d))}
        for name, part in watched.items():
            part.register_forward_hook(
                lambda m, i, out, name=name: seen.append((name, m.training, out.dtype)))
        return module

    clf.build_module = spy
    clf.fit(X[:12], y[:12])
    clf.predict_proba(X[:3])
    trained = {(name, dtype) for name, training, dtype in seen if training}
    # Training steps: the text encoder in bfloat16, the image CNN and the head in float32.
    assert trained == {("text_encoder", torch.bfloat16), ("image_encoder", torch.float32),
                       ("head", torch.float32)}
    assert {dtype for name, training, dtype in seen
            if not training and name == "head"} == {torch.bfloat16}
