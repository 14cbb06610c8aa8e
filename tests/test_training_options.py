"""Mixed precision, micro-batches and progress reporting of fit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.params import check_params


@pytest.mark.parametrize("precision, dtype", [("bf16", "torch.bfloat16"),
                                              ("fp16", "torch.float16")])
def test_mixed_precision_fit_and_predict(small, precision, dtype):
    X, y = small
    seen = []
    clf = MultimodalSentimentClassifier(finetune="top", max_epochs=1, batch_size=12,
                                        precision=precision, validation_fraction=None,
                                        random_state=0)
    build = clf.build_module

    def spy(n_classes, **kwargs):
        module = build(n_classes, **kwargs)
        module.head.register_forward_hook(lambda m, i, out: seen.append(str(out.dtype)))
        return module

    clf.build_module = spy
    clf.fit(X, y)
    proba = clf.predict_proba(X[:5])
    assert proba.dtype == np.float64 and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert seen and set(seen) == {dtype}  # the head really ran in the reduced precision
    assert clf.net_.scaler_.is_enabled() == (precision == "fp16")


def test_unknown_precision_is_refused(small):
    with pytest.raises(ValueError, match="precision must be one of"):
        MultimodalSentimentClassifier(precision="int8").fit(*small)


def test_micro_batch_size_in_a_fit(small):
    from skorch.callbacks import Callback

    hold_out = []

    class HoldOut(Callback):  # fit works on a copy of its callbacks: record outside
        def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
            hold_out.append(list(dataset_valid.column("text")))

    X, y = small
    clf = MultimodalSentimentClassifier(finetune="top", max_epochs=1, batch_size=12,
                                        micro_batch_size=5, validation_fraction=0.3,
                                        callbacks=[HoldOut()], random_state=0).fit(X, y)
    assert clf.predict_proba(X[:3]).shape == (3, 3)
    assert clf.net_.micro_batch_size == 5
    # The hold-out runs from its shortest text to its longest, so its batches pad less.
    lengths = [len(text) for text in hold_out[0]]
    assert len(lengths) == 11 and lengths == sorted(lengths)
    with pytest.raises(ValueError, match="micro_batch_size"):
        MultimodalSentimentClassifier(micro_batch_size=0).fit(X, y)


@pytest.mark.parametrize("finetune, expected", [("full", 4), ("top", None), ("frozen", None)])
def test_auto_micro_batches_only_for_full_fine_tuning(finetune, expected):
    clf = MultimodalSentimentClassifier(finetune=finetune)
    assert clf.micro_batch_size == "auto"  # the parameter itself stays as given
    assert clf._micro_batch_size() == expected  # what "auto" resolves to


def test_micro_batches_freeze_batchnorm_statistics():
    from mmsentiment.encoders import ImageEncoder, TextEncoder
    from mmsentiment.nn import ConcatFusion, MultimodalNet

    text, image = TextEncoder("all-MiniLM-L6-v2"), ImageEncoder("tf_efficientnet_lite0")
    for frozen in (False, True):
        net = MultimodalNet(text, image, ConcatFusion(text.dim, image.dim, 3),
                            frozen_batchnorm=frozen).train()
        norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and all(m.training != frozen for m in norms)
        assert net.head.training and net.text_encoder.training
        assert all(p.requires_grad for m in norms for p in m.parameters())
    pixels = torch.randint(0, 255, (4, 3, 224, 224), dtype=torch.uint8)
    before = norms[0].running_mean.clone()
    image(pixels)  # a forward pass in training mode leaves frozen statistics alone
    assert torch.equal(norms[0].running_mean, before)


@pytest.mark.parametrize("schedule, expected", [("exponential", 0.9 ** 2), ("cosine", 0.0)])
def test_learning_rate_schedules(small, schedule, expected):
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, batch_size=12,
                                        lr_schedule=schedule, warmup=0.0, cache_dir=None,
                                        validation_fraction=None, random_state=0).fit(X, y)
    groups = clf.net_.optimizer_.param_groups
    # After two epochs: two falls by 0.9, or the end of the cosine decay.
    assert groups and all(g["lr"] == pytest.approx(expected * g["initial_lr"], abs=1e-12)
                          for g in groups)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        MultimodalSentimentClassifier(lr_schedule="step").fit(X, y)


def test_label_smoothing_reaches_the_loss(small):
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=1, label_smoothing=0.2,
                                        cache_dir=None, random_state=0).fit(X, y)
    assert clf.net_.criterion_.label_smoothing == 0.2
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="label_smoothing must be in"):
            MultimodalSentimentClassifier(label_smoothing=bad).fit(X, y)


def test_layer_decay_gives_each_depth_its_rate(small):
    X, y = small
    lr = {"text_encoder_lr": 1e-4, "image_encoder_lr": 2e-4}
    clf = MultimodalSentimentClassifier(finetune="top", max_epochs=1, layer_decay=0.5,
                                        validation_fraction=None, random_state=0,
                                        **lr).fit(X, y)
    rate = {id(p): g["initial_lr"] for g in clf.net_.optimizer_.param_groups
            for p in g["params"]}
    module = clf.net_.module_
    # Every parameter sits in exactly one group.
    assert len(rate) == sum(len(g["params"]) for g in clf.net_.optimizer_.param_groups)
    assert set(rate) == {id(p) for p in module.parameters()}

    def one(part):  # the single rate of all parameters of a part
        rates = {rate[id(p)] for p in part.parameters()}
        assert len(rates) == 1
        return rates.pop()

    layers = module.text_encoder.transformer_layers()
    for depth, layer in enumerate(reversed(layers)):
        assert one(layer) == pytest.approx(1e-4 * 0.5 ** depth)
    embeddings = module.text_encoder.model[0].auto_model.embeddings
    assert one(embeddings) == pytest.approx(1e-4 * 0.5 ** len(layers))
    # Image: timm's coarse groups (stem, each block stage, the head convolution joined to
    # the last stage).
    trunk = module.image_encoder.model
    assert rate[id(trunk.conv_head.weight)] == pytest.approx(2e-4)
    assert rate[id(trunk.blocks[-1][0].conv_pwl.weight)] == pytest.approx(2e-4)
    assert rate[id(trunk.blocks[-2][0].conv_pwl.weight)] == pytest.approx(1e-4)
    assert rate[id(trunk.conv_stem.weight)] == pytest.approx(2e-4 * 0.5 ** len(trunk.blocks))
    assert one(module.head) == clf.lr
    with pytest.raises(ValueError, match="layer_decay must be in"):
        MultimodalSentimentClassifier(layer_decay=0.0).fit(X, y)


def _modality_labels(y):
    text = y.astype(object).copy()
    text[::5] = None  # unknown for some posts
    image = np.roll(y, 3)
    return text, image


def test_auxiliary_labels_train_heads_that_are_dropped_after_fit(small, monkeypatch):
    from mmsentiment.nn import MultimodalNet
    from mmsentiment.training import SentimentNet

    X, y = small
    text, image = _modality_labels(y)
    seen, heads = [], {}
    get_loss = SentimentNet.get_loss

    def spy_loss(self, y_pred, *args, **kwargs):
        seen.append(isinstance(y_pred, tuple) and kwargs.get("training", False))
        return get_loss(self, y_pred, *args, **kwargs)

    drop = MultimodalNet.drop_auxiliary_heads

    def spy_drop(self):
        heads["trained"] = self.text_aux.weight.detach().clone()
        drop(self)

    monkeypatch.setattr(SentimentNet, "get_loss", spy_loss)
    monkeypatch.setattr(MultimodalNet, "drop_auxiliary_heads", spy_drop)
    clf = MultimodalSentimentClassifier(finetune="top", max_epochs=1, batch_size=12,
                                        random_state=0)
    build = clf.build_module

    def spy_build(n_classes, auxiliary=False, **kwargs):
        module = build(n_classes, auxiliary, **kwargs)
        heads["initial"] = module.text_aux.weight.detach().clone() if auxiliary else None
        return module

    clf.build_module = spy_build
    clf.fit(X, y, text_labels=text, image_labels=image)
    assert heads["initial"] is not None and not torch.equal(heads["initial"], heads["trained"])
    assert any(seen)  # training batches returned auxiliary logits
    assert not hasattr(clf.net_.module_, "text_aux")  # prediction never uses them
    assert clf.predict_proba(X[:4]).shape == (4, 3)


def test_bad_auxiliary_labels_are_refused(small):
    X, y = small
    text, image = _modality_labels(y)
    clf = MultimodalSentimentClassifier(finetune="top", max_epochs=1)
    with pytest.raises(ValueError, match="text_labels has 35 entries; X has 36 rows"):
        clf.fit(X, y, text_labels=text[:-1])
    wrong = image.astype(object)
    wrong[2] = "angry"
    with pytest.raises(ValueError, match="image_labels holds labels that are not classes"):
        clf.fit(X, y, image_labels=wrong)
    frozen = MultimodalSentimentClassifier(finetune="frozen", max_epochs=1, cache_dir=None)
    with pytest.warns(UserWarning, match="ignored with finetune=\"frozen\""):
        frozen.fit(X, y, text_labels=text)
    with pytest.raises(ValueError, match="auxiliary_weight must be >= 0"):
        MultimodalSentimentClassifier(auxiliary_weight=-1.0).fit(X, y)


def test_grid_search_splits_auxiliary_labels_with_the_posts(small):
    from sklearn.model_selection import GridSearchCV

    X, y = small
    text, image = _modality_labels(y)
    clf = MultimodalSentimentClassifier(finetune="top", max_epochs=1, validation_fraction=None,
                                        random_state=0)
    search = GridSearchCV(clf, {"auxiliary_weight": [0.0, 0.5]}, cv=2, error_score="raise")
    search.fit(X, y, text_labels=text, image_labels=image)
    assert search.cv_results_["mean_test_score"].shape == (2,)
    assert search.best_estimator_.predict(X[:3]).shape == (3,)


def test_sample_weight_reaches_the_loss_and_grid_search(small):
    from sklearn.model_selection import GridSearchCV

    X, y = small
    # No logit adjustment: it would divide the weights' prior out again (tested apart).
    params = {"finetune": "frozen", "max_epochs": 2, "cache_dir": None, "random_state": 0,
              "validation_fraction": None, "logit_adjustment": 0.0}
    plain = MultimodalSentimentClassifier(**params).fit(X, y)
    ones = MultimodalSentimentClassifier(**params).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(ones.predict_proba(X), plain.predict_proba(X), atol=1e-4)
    # Weight only the negative posts: the model leans towards negative.
    weights = np.where(y == "negative", 1.0, 0.01)
    leaning = MultimodalSentimentClassifier(**params).fit(X, y, sample_weight=weights)
    assert (leaning.predict_proba(X)[:, 0].mean() > plain.predict_proba(X)[:, 0].mean())
    search = GridSearchCV(MultimodalSentimentClassifier(**params), {"lr": [1e-3]}, cv=2,
                          error_score="raise").fit(X, y, sample_weight=weights)
    assert search.best_estimator_.predict(X[:2]).shape == (2,)
    for bad in (np.ones(3), -np.ones(len(y)), np.zeros(len(y))):
        with pytest.raises(ValueError, match="(?i)sample.weight"):
            MultimodalSentimentClassifier(**params).fit(X, y, sample_weight=bad)


@pytest.mark.parametrize("setting", [False, True])
def test_gradient_checkpointing_reaches_the_text_encoder(setting):
    clf = MultimodalSentimentClassifier(finetune="top-image", gradient_checkpointing=setting)
    assert clf.build_module(3).text_encoder.gradient_checkpointing is setting


def test_a_checkpointed_fit_pickles_predicts_alike_and_follows_a_warm_start(small):
    X, y = small
    params = {"finetune": "top-image", "max_epochs": 1, "batch_size": 12,
              "validation_fraction": None, "random_state": 0}
    plain = MultimodalSentimentClassifier(**params).fit(X, y)
    recomputed = MultimodalSentimentClassifier(**params, gradient_checkpointing=True).fit(X, y)
    assert recomputed.net_.module_.text_encoder.gradient_checkpointing
    np.testing.assert_allclose(recomputed.predict_proba(X), plain.predict_proba(X), atol=1e-6)
    again = pickle.loads(pickle.dumps(recomputed))
    np.testing.assert_array_equal(again.predict_proba(X), recomputed.predict_proba(X))
    again.set_params(warm_start=True, gradient_checkpointing=False).fit(X, y)
    assert not again.net_.module_.text_encoder.gradient_checkpointing


def test_gradient_checkpointing_is_checked():
    with pytest.raises(ValueError, match="gradient_checkpointing must be True or False"):
        check_params(MultimodalSentimentClassifier(gradient_checkpointing="auto"))
