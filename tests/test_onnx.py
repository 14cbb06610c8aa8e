"""The image encoder through ONNX Runtime in prediction (inference_backend)."""

from __future__ import annotations

import io
import warnings

import joblib
import numpy as np
import pytest
import torch
from torch import nn

import mmsentiment.encoders.onnx as onnx
from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.encoders import ImageEncoder
from mmsentiment.encoders.onnx import OnnxCache, onnx_inference, use_onnxruntime

pytestmark = pytest.mark.skipif(not onnx.onnxruntime_available(),
                                reason="onnxruntime and onnx are not installed")


@pytest.fixture(scope="module")
def lite0():
    return ImageEncoder("tf_efficientnet_lite0").eval()


@pytest.fixture(scope="module")
def pixels():
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (3, 3, 224, 224), dtype=torch.uint8, generator=generator)


def _close(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape
    scale = float(expected.abs().max())
    assert float((got - expected).abs().max()) <= 1e-4 * scale


def test_image_encoder_through_onnxruntime_matches_torch(lite0, pixels):
    with torch.inference_mode():
        pooled, patches = lite0(pixels), lite0.patches(pixels)
        with onnx_inference():
            onnx_pooled, onnx_patches = lite0(pixels), lite0.patches(pixels)
    # The sessions were built and used, not skipped.
    assert {"pooled", "features"} <= set(lite0._onnx._sessions)
    assert all(session is not None for _, session in lite0._onnx._sessions.values())
    _close(onnx_pooled, pooled)
    _close(onnx_patches, patches)
    with torch.inference_mode():  # off again outside the block
        assert onnx.onnx_inference_enabled() is False
        _close(lite0(pixels), pooled)


def test_session_built_under_bfloat16_autocast_is_float32(pixels):
    # inference_backend="onnxruntime" with bfloat16 prediction: the session is exported and
    # checked in float32, not traced through autocast's casts.
    enc = ImageEncoder("tf_efficientnet_lite0").eval()
    with torch.inference_mode():
        expected = enc(pixels)
        with torch.autocast("cpu", dtype=torch.bfloat16), onnx_inference():
            got = enc(pixels)
    assert enc._onnx._sessions["pooled"][1] is not None
    assert got.dtype == torch.float32
    _close(got, expected)


def test_session_follows_changed_weights(pixels):
    enc = ImageEncoder("tf_efficientnet_lite0").eval()
    with torch.inference_mode(), onnx_inference():
        before = enc(pixels)
    first = enc._onnx._sessions["pooled"][1]
    assert first is not None
    with torch.no_grad():
        enc.model.conv_head.weight.mul_(1.5)
    with torch.inference_mode():
        expected = enc(pixels)
        with onnx_inference():
            after = enc(pixels)
    assert not torch.allclose(expected, before, atol=1e-3)  # the change shows
    second = enc._onnx._sessions["pooled"][1]
    assert second is not None and second is not first  # exported again, and used
    _close(after, expected)


def test_a_model_that_cannot_export_runs_in_torch_with_a_warning():
    class NoFeatures(nn.Module):
        def forward(self, x):
            return x

    cache = OnnxCache()
    model = NoFeatures().eval()
    with pytest.warns(RuntimeWarning, match="ONNX Runtime failed"):
        assert cache.run(model, "features", torch.ones(1, 3), lambda: torch.ones(2, 3)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per model, not one per batch
        assert cache.run(model, "features", torch.ones(1, 3), lambda: torch.ones(2, 3)) is None


def test_backend_choice(monkeypatch):
    assert use_onnxruntime("auto", "cpu", None)
    assert not use_onnxruntime("auto", "cpu", torch.bfloat16)  # bfloat16 CPUs keep torch
    assert not use_onnxruntime("auto", "cuda:0", None)
    assert use_onnxruntime("onnxruntime", "cpu", torch.bfloat16)
    assert not use_onnxruntime("torch", "cpu", None)
    with pytest.warns(RuntimeWarning, match="runs on the CPU"):
        assert not use_onnxruntime("onnxruntime", "cuda:0", None)  # torch predicts there
    monkeypatch.setattr(onnx, "onnxruntime_available", lambda: False)
    assert not use_onnxruntime("auto", "cpu", None)
    with pytest.raises(ImportError, match="pip install onnxruntime onnx"):
        use_onnxruntime("onnxruntime", "cpu", None)


def test_classifier_backends_agree_and_pickle(small):
    X, y = small
    clf = MultimodalSentimentClassifier(max_epochs=1, batch_size=12, validation_fraction=None,
                                        precision="32", inference_backend="torch",
                                        random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    encoder = clf.net_.module_.image_encoder
    assert not encoder._onnx._sessions  # "torch": never exported
    clf.set_params(inference_backend="auto")  # float32 prediction on the CPU: ONNX Runtime
    np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-4)
    assert encoder._onnx._sessions["pooled"][1] is not None
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert not loaded.net_.module_.image_encoder._onnx._sessions  # sessions are not pickled
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=1e-4)


def test_unknown_backend_is_rejected(small):
    X, y = small
    with pytest.raises(ValueError, match="inference_backend must be one of"):
        MultimodalSentimentClassifier(inference_backend="tensorrt").fit(X, y)


def test_onnxruntime_follows_a_smaller_image_size():
    # image_size=96: the session is exported and checked at the encoder's own size.
    enc = ImageEncoder("tf_efficientnet_lite0", size=96).eval()
    generator = torch.Generator().manual_seed(1)
    small_pixels = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8, generator=generator)
    with torch.inference_mode():
        expected = enc(small_pixels)
        with onnx_inference():
            got = enc(small_pixels)
    assert enc._onnx._sessions["pooled"][1] is not None
    _close(got, expected)
