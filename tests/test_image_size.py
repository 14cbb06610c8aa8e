"""image_size: the side of the images the image encoder sees, in fit and prediction."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.encoders import ImageEncoder
from mmsentiment.params import check_params
from mmsentiment.training import fit_fingerprint


def test_the_encoder_takes_the_given_side_and_keeps_its_crop_share():
    pretrained = ImageEncoder("tf_efficientnet_lite0").preprocessing
    small = ImageEncoder("tf_efficientnet_lite0", size=160).preprocessing
    assert (pretrained.size, small.size) == (224, 160)
    assert small.crop_pct == pretrained.crop_pct and small.mean == pretrained.mean
    assert small.resize_to == round(160 / pretrained.crop_pct)
    # Cached features of one size are never served for another.
    assert ImageEncoder("tf_efficientnet_lite0", size=160).cache_key() != \
        ImageEncoder("tf_efficientnet_lite0").cache_key()


def test_a_fit_trains_and_predicts_at_the_given_size_and_keeps_it_on_disk(small, tmp_path):
    X, y = small
    clf = MultimodalSentimentClassifier(image_size=96, max_epochs=1, batch_size=12,
                                        validation_fraction=None, random_state=0,
                                        inference_backend="torch").fit(X, y)
    assert clf.net_.module_.image_encoder.preprocessing.size == 96
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), proba)
    path = clf.save(tmp_path / "model.safetensors")
    loaded = MultimodalSentimentClassifier.load(path)
    assert loaded.image_size == 96
    assert loaded.net_.module_.image_encoder.preprocessing.size == 96
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-6)


def test_training_and_prediction_batches_have_the_given_side(small):
    X, y = small
    sides = set()
    clf = MultimodalSentimentClassifier(image_size=64, max_epochs=1, batch_size=12,
                                        validation_fraction=None, random_state=0)
    original = clf.build_module

    def build(*args, **kwargs):  # records the pixels' side of every image batch
        module = original(*args, **kwargs)
        module.image_encoder.register_forward_pre_hook(
            lambda _, inputs: sides.add(tuple(inputs[0].shape[-2:])))
        return module

    clf.build_module = build
    clf.fit(X, y)
    assert sides == {(64, 64)}
    sides.clear()
    clf.predict_proba(X)
    assert sides == {(64, 64)}


@pytest.mark.parametrize("finetune, fusion", [("top-image", "attention"), ("frozen", "concat")])
def test_cached_pipelines_follow_the_size(small, finetune, fusion):
    # The lower layers computed once (top-image) and the cached pooled vectors (frozen) are
    # computed from images of the given side: the stem convolution sees nothing else.
    X, y = small
    sides = set()
    clf = MultimodalSentimentClassifier(image_size=64, finetune=finetune, fusion=fusion,
                                        max_epochs=1, batch_size=12, cache_dir=None,
                                        validation_fraction=None, random_state=0)
    original = clf.build_module

    def build(*args, **kwargs):
        module = original(*args, **kwargs)
        module.image_encoder.model.conv_stem.register_forward_pre_hook(
            lambda _, inputs: sides.add(tuple(inputs[0].shape[-2:])))
        return module

    clf.build_module = build
    clf.fit(X, y)
    assert sides == {(64, 64)}
    assert np.isfinite(clf.predict_proba(X)).all()


@pytest.mark.parametrize("bad", [16, 31, 1025, 10**6, 1.5, "160", True])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="image_size must be None or an int from 32 to 1024"):
        check_params(MultimodalSentimentClassifier(image_size=bad))


def test_a_warm_start_cannot_change_the_size(small):
    X, y = small
    clf = MultimodalSentimentClassifier(image_size=64, max_epochs=1, batch_size=12,
                                        validation_fraction=None, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="image_size"):
        clf.set_params(warm_start=True, image_size=96).fit(X, y)


def test_the_pretrained_size_leaves_resume_fingerprints_as_before(small):
    X, y = small
    texts, images = list(X["text"]), list(X["image_path"])
    params = MultimodalSentimentClassifier().get_params()
    before = {k: v for k, v in params.items() if k != "image_size"}  # an older release's
    assert fit_fingerprint(params, texts, images, y) == fit_fingerprint(before, texts, images, y)
    params["image_size"] = 160
    assert fit_fingerprint(params, texts, images, y) != fit_fingerprint(before, texts, images, y)


def test_a_model_of_fixed_input_size_is_refused_when_built():
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1)
    with pytest.raises(ValueError, match="cannot take 96-pixel images"):
        ImageEncoder(vit, size=96)


def test_a_file_keeps_the_size_the_network_was_trained_at(small, tmp_path):
    X, y = small
    clf = MultimodalSentimentClassifier(image_size=64, max_epochs=1, batch_size=12,
                                        validation_fraction=None, random_state=0).fit(X, y)
    clf.set_params(image_size=96)  # after fit: the fitted network still takes 64 pixels
    loaded = MultimodalSentimentClassifier.load(clf.save(tmp_path / "model.safetensors"))
    assert loaded.image_size == 64
    assert loaded.net_.module_.image_encoder.preprocessing.size == 64
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    # A loaded model knows the size it was trained at too.
    loaded.set_params(image_size=None)
    again = MultimodalSentimentClassifier.load(loaded.save(tmp_path / "again.safetensors"))
    assert again.net_.module_.image_encoder.preprocessing.size == 64


def test_models_from_before_the_parameter_keep_the_pretrained_size(small):
    X, y = small
    clf = MultimodalSentimentClassifier(max_epochs=1, batch_size=12, validation_fraction=None,
                                        random_state=0).fit(X, y)
    state = clf.__getstate__()
    state.pop("image_size")  # as pickled by a version without it
    state["network_params_"] = {k: v for k, v in state["network_params_"].items()
                                if k != "image_size"}
    old = MultimodalSentimentClassifier.__new__(MultimodalSentimentClassifier)
    old.__setstate__(state)
    assert old.get_params()["image_size"] is None
    old.set_params(warm_start=True).fit(X, y)  # the same network: a warm start goes on
    with pytest.raises(ValueError, match="image_size"):
        old.set_params(image_size=96).fit(X, y)
