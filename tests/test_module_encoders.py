"""Encoders passed as objects: any image nn.Module, a timm model, a SentenceTransformer."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import timm
import torch
from sklearn.model_selection import GridSearchCV
from torch import nn

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.encoders import ImageEncoder, TextEncoder
from mmsentiment.encoders.image import _pristine_state


def tiny_cnn(width: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, width, 5, stride=4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


@pytest.fixture(scope="module")
def tuned_with_module(small):
    X, y = small
    module = tiny_cnn()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    clf = MultimodalSentimentClassifier(image_encoder=module, max_epochs=1, batch_size=12,
                                        validation_fraction=None, image_encoder_lr=1e-2,
                                        random_state=0).fit(X, y)
    return clf, module, before


def test_image_module_is_fine_tuned_as_a_copy(tuned_with_module, small):
    clf, module, before = tuned_with_module
    X, _ = small
    # The caller's module is untouched; the fitted copy moved away from it.
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())
    fitted = clf.net_.module_.image_encoder.model.state_dict()
    assert any(not torch.equal(fitted[k].cpu(), v) for k, v in before.items())
    assert clf.net_.module_.image_encoder.dim == 8
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(clf.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_module_encoders_go_through_joblib_not_safetensors(tuned_with_module, small,
                                                           tmp_path):
    clf, _, _ = tuned_with_module
    X, _ = small
    with pytest.raises(TypeError, match="joblib"):
        clf.save(tmp_path / "model.safetensors")
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_allclose(loaded.predict_proba(X[:6]), clf.predict_proba(X[:6]),
                               atol=1e-6)


def test_timm_model_object_equals_its_name():
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(_pristine_state("tf_efficientnet_lite0"))
    by_object, by_name = ImageEncoder(model).eval(), ImageEncoder("tf_efficientnet_lite0").eval()
    assert model.num_classes == 1000  # the caller's model keeps its classifier
    assert by_object.name == "module:tf_efficientnet_lite0"
    assert by_object.dim == by_name.dim == 1280
    assert by_object.preprocessing == by_name.preprocessing
    pixels = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    with torch.inference_mode():
        torch.testing.assert_close(by_object(pixels), by_name(pixels))


def test_cache_keys_follow_weights_not_object_identity():
    a, b = tiny_cnn(seed=0), tiny_cnn(seed=1)
    assert ImageEncoder(a).cache_key() == ImageEncoder(tiny_cnn(seed=0)).cache_key()
    assert ImageEncoder(a).cache_key() != ImageEncoder(b).cache_key()
    wider = tiny_cnn(width=16, seed=0)
    assert ImageEncoder(wider).cache_key() != ImageEncoder(a).cache_key()


class _MeanPool(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


class _MaxPool(nn.Module):
    def forward(self, x):
        return x.amax((2, 3))


# The same class name (so the same encoder name and repr) as _MeanPool: only the code differs.
_MaxPool.__name__ = "_MeanPool"


def test_cache_keys_follow_code_beyond_the_repr():
    mean, peak = _MeanPool(), _MaxPool()
    assert repr(mean) == repr(peak)
    assert ImageEncoder(mean).name == ImageEncoder(peak).name
    assert ImageEncoder(mean).cache_key() != ImageEncoder(peak).cache_key()


def test_sentence_transformer_object_and_grid_search_over_modules(small):
    X, y = small
    named = TextEncoder("all-MiniLM-L6-v2").eval()
    by_object = TextEncoder(named.model).eval()
    batch = named.tokenize(["a sunny day at the beach", "terrible service"])
    with torch.inference_mode():
        torch.testing.assert_close(by_object(**batch), named(**batch))
    search = GridSearchCV(
        MultimodalSentimentClassifier(text_encoder=named.model, finetune="frozen",
                                      max_epochs=3, validation_fraction=None, random_state=0),
        {"image_encoder": [tiny_cnn(width=4), tiny_cnn(width=8)]}, cv=2)
    search.fit(X, y)
    assert search.best_estimator_.net_.module_.image_encoder.dim in (4, 8)
    assert search.predict(X[:3]).shape == (3,)


def test_unusable_encoder_objects_are_refused(small):
    X, y = small
    with pytest.raises(TypeError, match="SentenceTransformer"):
        MultimodalSentimentClassifier(text_encoder=nn.Linear(2, 2), finetune="frozen").fit(X, y)
    with pytest.raises(ValueError, match=r"\(N, D\) vectors"):
        MultimodalSentimentClassifier(image_encoder=nn.Conv2d(3, 4, 3),
                                      finetune="frozen").fit(X, y)
    with pytest.raises(TypeError, match="image_encoder must be"):
        MultimodalSentimentClassifier(image_encoder=3, finetune="frozen").fit(X, y)
