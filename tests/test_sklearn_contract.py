"""The scikit-learn contract on real posts (the demo set) and the real default encoders."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.inputs import LowerActivations
from mmsentiment.nn import get_finetune

FAST = {"finetune": "frozen", "max_epochs": 8, "random_state": 0}


@pytest.fixture(scope="module")
def fitted(small):
    X, y = small
    return MultimodalSentimentClassifier(**FAST).fit(X, y)


def test_init_stores_params_untouched_and_loads_nothing():
    clf = MultimodalSentimentClassifier(text_encoder="no/such-model", lr=0.5, fusion="paper")
    params = clf.get_params()
    assert params["text_encoder"] == "no/such-model"
    assert params["lr"] == 0.5 and params["fusion"] == "paper"
    assert not [k for k in vars(clf) if k.endswith("_")]


def test_clone_and_set_params():
    clf = MultimodalSentimentClassifier(max_epochs=2)
    other = clone(clf).set_params(image_encoder="tf_efficientnet_lite2", batch_size=8)
    assert other.get_params()["image_encoder"] == "tf_efficientnet_lite2"
    assert other.batch_size == 8 and clf.batch_size == 32
    assert clone(other).get_params() == other.get_params()


def test_not_fitted_raises(small):
    X, _ = small
    clf = MultimodalSentimentClassifier()
    for method in (clf.predict, clf.predict_proba):
        with pytest.raises(NotFittedError):
            method(X)


def test_fit_predict_proba_score(fitted, small):
    X, y = small
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert list(fitted.classes_) == ["negative", "neutral", "positive"]
    assert set(fitted.predict(X)) <= set(fitted.classes_)
    # The demo set is learnable: the training posts are mostly fitted.
    assert fitted.score(X, y) > 0.6
    assert fitted.n_features_in_ == 2
    assert list(fitted.feature_names_in_) == ["text", "image_path"]
    assert len(fitted.history_) >= 1 and "train_loss" in fitted.history_[-1]


def test_array_input_and_columns(small):
    X, y = small
    clf = MultimodalSentimentClassifier(**FAST).fit(X.to_numpy().tolist(), y)
    assert not hasattr(clf, "feature_names_in_")
    renamed = X.rename(columns={"text": "tweet", "image_path": "photo"})
    clf2 = MultimodalSentimentClassifier(**FAST, text_column="tweet", image_column="photo")
    proba = clf2.fit(renamed, y).predict_proba(renamed)
    np.testing.assert_allclose(proba, clf.predict_proba(X.to_numpy()), atol=1e-5)


def test_pipeline_with_text_cleaner(small):
    X, y = small

    def lowercase(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(text=df["text"].str.lower())

    pipe = make_pipeline(FunctionTransformer(lowercase), MultimodalSentimentClassifier(**FAST))
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (len(X),)
    # The cleaner ran: the pipeline equals the classifier fitted on lowercased posts.
    direct = MultimodalSentimentClassifier(**FAST).fit(lowercase(X), y)
    np.testing.assert_allclose(pipe.predict_proba(X), direct.predict_proba(lowercase(X)),
                               atol=1e-6)


def test_grid_search_over_image_encoders(small):
    X, y = small
    search = GridSearchCV(
        MultimodalSentimentClassifier(**FAST),
        {"image_encoder": ["tf_efficientnet_lite0", "tf_efficientnet_lite2"]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.best_params_["image_encoder"] in ("tf_efficientnet_lite0",
                                                    "tf_efficientnet_lite2")
    assert search.predict(X).shape == (len(X),)


def test_cross_val_score(small):
    X, y = small
    scores = cross_val_score(MultimodalSentimentClassifier(**FAST), X, y, cv=3)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


def test_joblib_round_trip_identical(fitted, small, tmp_path):
    X, _ = small
    path = tmp_path / "m.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    assert loaded.get_params() == fitted.get_params()


def test_full_finetune_is_repeatable_and_changes_encoders(small):
    X, y = small
    X, y = X.iloc[::2], y[::2]
    # Repeatability is promised on the CPU (GPU kernels may sum in any order).
    params = {"finetune": "full", "max_epochs": 1, "batch_size": 6, "random_state": 3,
              "validation_fraction": None, "device": "cpu"}
    a = MultimodalSentimentClassifier(**params).fit(X, y)
    b = MultimodalSentimentClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # Joint fine-tuning: the text and image encoders left their pretrained weights.
    fresh = MultimodalSentimentClassifier(finetune="frozen").build_module(3)
    tuned = a.net_.module_
    for name in ("text_encoder", "image_encoder"):
        before = dict(getattr(fresh, name).named_parameters())
        after = dict(getattr(tuned, name).named_parameters())
        assert any(not np.allclose(before[k].detach(), after[k].detach()) for k in before)


def test_frozen_keeps_encoders_and_top_trains_only_top(small):
    X, y = small
    fresh = MultimodalSentimentClassifier().build_module(3)
    frozen = MultimodalSentimentClassifier(**FAST).fit(X, y).net_.module_
    for name in ("text_encoder", "image_encoder"):
        for (k, p0), (_, p1) in zip(getattr(fresh, name).state_dict().items(),
                                    getattr(frozen, name).state_dict().items()):
            assert np.allclose(p0, p1.cpu()), k
    top = MultimodalSentimentClassifier(finetune="top").build_module(3)
    trainable = {n.split(".")[0] for n, p in top.named_parameters() if p.requires_grad}
    assert trainable == {"text_encoder", "image_encoder", "head", "missing_text",
                         "missing_image"}
    layers = top.text_encoder.transformer_layers()
    trains = [all(p.requires_grad for p in layer.parameters()) for layer in layers]
    n_top = get_finetune("top").text_groups
    assert trains == [False] * (len(layers) - n_top) + [True] * n_top


def test_different_seeds_differ(small):
    X, y = small
    a = MultimodalSentimentClassifier(**{**FAST, "random_state": 0}).fit(X, y)
    b = MultimodalSentimentClassifier(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.allclose(a.predict_proba(X), b.predict_proba(X))


def test_paper_fusion_and_class_weight(small):
    X, y = small
    clf = MultimodalSentimentClassifier(**FAST, fusion="paper",
                                        class_weight={"neutral": 2.0}).fit(X, y)
    assert type(clf.net_.module_.head).__name__ == "PaperFusion"
    weight = clf.net_.criterion_.weight.tolist()
    assert weight == [1.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="unknown classes"):
        MultimodalSentimentClassifier(**FAST, class_weight={"happy": 2.0}).fit(X, y)


@pytest.mark.parametrize("params, match", [
    ({"fusion": "sum"}, "fusion must be one of"),
    ({"finetune": "half"}, "finetune must be one of"),
    ({"max_epochs": 0}, "max_epochs"),
    ({"validation_fraction": 1.5}, "validation_fraction"),
])
def test_bad_params(small, params, match):
    X, y = small
    with pytest.raises(ValueError, match=match):
        MultimodalSentimentClassifier(**params).fit(X, y)


def test_bad_input_errors(small, tmp_path):
    X, y = small
    clf = MultimodalSentimentClassifier(**FAST)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['image_path'\]"):
        clf.fit(X.rename(columns={"image_path": "img"}), y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(X, np.array(["positive"] * len(X)))
    with pytest.raises(ValueError, match="neither strings nor missing"):
        clf.fit(X.assign(text=[3] * len(X)), y)
    missing = X.copy()
    missing.loc[4, "image_path"] = str(tmp_path / "gone.jpg")
    with pytest.raises(ValueError, match=r"1 image\(s\) could not be read: row 4"):
        clf.fit(missing, y)


def test_predict_checks_columns(fitted, small):
    X, _ = small
    with pytest.raises(ValueError, match="feature names"):
        fitted.predict(X.rename(columns={"text": "tweet"}))


def test_unavailable_encoder_names_the_fix(small):
    from mmsentiment import EncoderUnavailableError

    X, y = small
    with pytest.raises(EncoderUnavailableError, match="neither installed nor downloadable"):
        MultimodalSentimentClassifier(**FAST, text_encoder="no-such/model-xyz").fit(X, y)
    with pytest.raises(EncoderUnavailableError, match="offline encoders"):
        MultimodalSentimentClassifier(**FAST, image_encoder="resnet18").fit(X, y)


def test_image_encoder_split_is_exact():
    import torch

    from mmsentiment.encoders import ImageEncoder

    enc = ImageEncoder("tf_efficientnet_lite0").eval()
    x = torch.randint(0, 255, (2, 3, 224, 224), dtype=torch.uint8)
    with torch.inference_mode():
        torch.testing.assert_close(enc.upper(enc.lower(x)), enc(x))


def test_top_finetune_trains_on_precomputed_lower_layers(small):
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="top", max_epochs=1, batch_size=12,
                                        validation_fraction=None, random_state=0)
    fresh = clf.build_module(3)
    clf.fit(X, y)
    module = clf.net_.module_
    assert isinstance(clf.pipeline_, LowerActivations)
    lowest = module.image_encoder.model.blocks[0]
    top = module.image_encoder.model.blocks[-1]
    before = dict(fresh.image_encoder.model.named_parameters())
    after = dict(module.image_encoder.model.named_parameters())
    changed = {k for k in before
               if not np.allclose(before[k].detach(), after[k].detach().cpu())}
    assert any(k.startswith("blocks.6") for k in changed)
    highest_frozen = f"blocks.{len(module.image_encoder.model.blocks) - 2}."
    assert not any(k.startswith(("blocks.0", highest_frozen, "conv_stem", "bn1"))
                   for k in changed)
    # Frozen batch-norm statistics did not move either.
    np.testing.assert_array_equal(
        fresh.image_encoder.model.bn1.running_mean.numpy(),
        module.image_encoder.model.bn1.running_mean.cpu().numpy())
    module.train()
    assert not lowest.training and top.training and not module.text_encoder.training
    assert clf.predict_proba(X).shape == (len(X), 3)


def test_predict_log_proba(fitted, small):
    X, _ = small
    log_proba = fitted.predict_log_proba(X[:5])
    np.testing.assert_allclose(np.exp(log_proba), fitted.predict_proba(X[:5]), rtol=1e-12)
