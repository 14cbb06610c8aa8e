"""Prediction in chunks, decision_function, warm starts and decoding threads."""

from __future__ import annotations

import numpy as np
import pytest
from skorch.callbacks import Callback

import mmsentiment.inputs.pipelines as pipelines
from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.inputs.pipelines import decoding_threads


@pytest.fixture(scope="module")
def tuned(small):
    """A fine-tuned model (the raw-image prediction path), one short epoch."""
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="top-image", max_epochs=1, batch_size=12,
                                        validation_fraction=None, random_state=0)
    return clf.fit(X, y)


@pytest.fixture(scope="module")
def frozen(small):
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, batch_size=12,
                                        validation_fraction=None, cache_dir=None,
                                        random_state=0)
    return clf.fit(X, y)


@pytest.mark.parametrize("model", ["tuned", "frozen"])
def test_chunks_give_the_same_probabilities(model, small, monkeypatch, request):
    clf = request.getfixturevalue(model)
    X, _ = small
    whole = clf.predict_proba(X)
    monkeypatch.setattr(pipelines, "PREDICT_CHUNK", 7)  # 36 posts: 6 chunks
    # Under bfloat16 (precision="auto" here) other batches pad texts to other lengths and
    # block the matrix products otherwise: probabilities move by up to about 1e-3.
    np.testing.assert_allclose(clf.predict_proba(X), whole, atol=5e-3)


def test_bad_images_are_reported_by_their_row_across_chunks(tuned, small, monkeypatch,
                                                            tmp_path):
    X, _ = small
    X = X.copy()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    X.loc[9, "image_path"] = str(broken)  # in the second chunk of 7
    monkeypatch.setattr(pipelines, "PREDICT_CHUNK", 7)
    with pytest.raises(ValueError, match=r"row 9 \("):
        tuned.predict(X)
    tuned.set_params(on_bad_image="blank")
    tuned.pipeline_.on_bad_image = "blank"
    try:
        with pytest.warns(UserWarning, match=r"1 image\(s\) could not be read.*row 9 \("):
            proba = tuned.predict_proba(X)
    finally:
        tuned.set_params(on_bad_image="raise")
        tuned.pipeline_.on_bad_image = "raise"
    assert proba.shape == (len(X), 3) and np.all(np.isfinite(proba))


def test_decision_function_is_the_heads_scores(tuned, small):
    X, _ = small
    scores = tuned.decision_function(X)
    assert scores.shape == (len(X), len(tuned.classes_))
    softmax = np.exp(scores - scores.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    np.testing.assert_allclose(softmax, tuned.predict_proba(X), atol=1e-5)
    assert np.array_equal(tuned.classes_[scores.argmax(1)], tuned.predict(X))


def test_decision_function_of_two_classes_is_one_column(small):
    X, y = small
    keep = y != "neutral"
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, cache_dir=None,
                                        validation_fraction=None, random_state=0)
    clf.fit(X[keep], y[keep])
    scores = clf.decision_function(X[keep])
    assert scores.shape == (int(keep.sum()),)
    # Positive scores favour classes_[1], as scikit-learn's binary classifiers do.
    assert np.array_equal(clf.classes_[(scores > 0).astype(int)], clf.predict(X[keep]))


class FirstWeights(Callback):
    """Records a copy of the head's first weight tensor when training begins."""

    def on_train_begin(self, net, **kwargs):
        self.weights = next(net.module_.head.parameters()).detach().clone()


def test_warm_start_continues_from_the_fitted_weights(small):
    X, y = small
    recorder = FirstWeights()
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, cache_dir=None,
                                        validation_fraction=None, random_state=0,
                                        callbacks=[("first", recorder)])
    clf.fit(X, y)
    fitted = next(clf.net_.module_.head.parameters()).detach().clone()
    started_cold = dict(clf.net_.callbacks_)["first"].weights
    assert not np.allclose(started_cold.numpy(), fitted.numpy())
    clf.set_params(warm_start=True).fit(X, y)
    started_warm = dict(clf.net_.callbacks_)["first"].weights
    np.testing.assert_array_equal(started_warm.numpy(), fitted.numpy())
    # Without warm_start, a fit starts over from the same initial head.
    clf.set_params(warm_start=False).fit(X, y)
    np.testing.assert_array_equal(dict(clf.net_.callbacks_)["first"].weights.numpy(),
                                  started_cold.numpy())


def test_warm_start_refuses_new_labels(frozen, small):
    X, y = small
    warm = MultimodalSentimentClassifier(**{**frozen.get_params(), "warm_start": True})
    warm.__dict__.update({k: v for k, v in frozen.__dict__.items() if k.endswith("_")})
    y_new = np.where(y == "neutral", "mixed", y)
    with pytest.raises(ValueError, match=r"new labels \['mixed'\]"):
        warm.fit(X, y_new)


@pytest.mark.parametrize("n_jobs, expected", [(None, None), (1, 1), (3, 3)])
def test_decoding_threads(n_jobs, expected):
    assert decoding_threads(n_jobs) == expected
    assert decoding_threads(-1) >= 1 and decoding_threads(-1000) == 1


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2", True])
def test_bad_n_jobs_is_refused(small, n_jobs):
    with pytest.raises(ValueError, match="n_jobs must be"):
        MultimodalSentimentClassifier(n_jobs=n_jobs).fit(*small)


def test_n_jobs_does_not_change_predictions(frozen, small):
    X, _ = small
    expected = frozen.predict_proba(X)
    frozen.pipeline_.n_jobs = 1
    try:
        np.testing.assert_allclose(frozen.predict_proba(X), expected, atol=1e-6)
    finally:
        frozen.pipeline_.n_jobs = None


def test_warm_start_refuses_a_changed_network(frozen, small):
    X, y = small
    warm = MultimodalSentimentClassifier(**{**frozen.get_params(), "warm_start": True})
    warm.__dict__.update({k: v for k, v in frozen.__dict__.items() if k.endswith("_")})
    warm.set_params(finetune="full")  # the frozen network cannot start training its encoders
    with pytest.raises(ValueError, match=r"cannot follow a change of \['finetune'\]"):
        warm.fit(X, y)
