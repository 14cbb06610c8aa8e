"""Options for accuracy on real posts: tweet normalisation and the collapse warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.inputs import extract_columns, predict_chunks
from mmsentiment.inputs.tweets import normalize_texts, normalize_tweet


@pytest.mark.parametrize("text, expected", [
    ("RT @user_1: great game!", "great game!"),
    ("see http://t.co/AbC123 and www.example.com/x now", "see url and url now"),
    ("thanks @Ann_B and @bob!", "thanks @user and @user!"),
    ("mail me at ann@example.com", "mail me at ann@example.com"),
    ("#HappyValentine2015 #love #NYC_Marathon", "Happy Valentine 2015 love NYC Marathon"),
    ("fish &amp; chips &lt;3", "fish & chips <3"),
    ("I \u2764\ufe0f it \U0001F602", "I red heart it face with tears of joy"),
    ("  many   spaces\n\there ", "many spaces here"),
    ("http://t.co/x", "url"),
    ("(see https://x.com/a). Or WWW.Example.com!", "(see url). Or url!"),
    ("awww.great day", "awww.great day"),
    ("I &notice &copy; &#39;hi&#39;", "I &notice copyright 'hi'"),  # \u00a9 is an emoji
    ("#\u00c9t\u00e9Paris #happyvalentine", "\u00c9t\u00e9 Paris happyvalentine"),
    ("snake_case and :red_heart: stay", "snake_case and :red_heart: stay"),
])
def test_normalize_tweet_rewrites_social_media_parts(text, expected):
    assert normalize_tweet(text) == expected


def test_normalisation_keeps_missing_texts_missing_and_refuses_unknown_names():
    assert normalize_texts([None, "#Yes"], "tweet") == [None, "Yes"]
    assert normalize_texts(["RT @a:"], "tweet") == [None]
    assert normalize_tweet(None) is None and np.isnan(normalize_tweet(np.nan))
    assert normalize_texts(["#Yes"], None) == ["#Yes"]
    with pytest.raises(ValueError, match="text_normalization must be one of"):
        normalize_texts(["a"], "emoji")
    texts, _ = extract_columns([["@a #GoodDay", "x.jpg"], ["  ", None]], "text", "image_path",
                               "tweet")
    assert texts == ["@user Good Day", None]


def test_classifier_normalises_texts_in_fit_and_predict(small):
    X, y = small
    X = X.assign(text=X["text"] + " #SoVeryHappy @someone http://t.co/abc")
    params = dict(finetune="frozen", max_epochs=2, random_state=0, cache_dir=None)
    plain = MultimodalSentimentClassifier(**params).fit(X, y)
    tweet = MultimodalSentimentClassifier(**params, text_normalization="tweet").fit(X, y)
    # The same fit on texts normalised by hand: normalisation happens inside the estimator.
    by_hand = MultimodalSentimentClassifier(**params).fit(
        X.assign(text=[normalize_tweet(t) for t in X["text"]]), y)
    proba = tweet.predict_proba(X)
    np.testing.assert_allclose(
        proba, by_hand.predict_proba(X.assign(text=[normalize_tweet(t) for t in X["text"]])),
        atol=1e-6)
    assert not np.allclose(proba, plain.predict_proba(X), atol=1e-4)
    with pytest.raises(ValueError, match="text_normalization must be one of"):
        MultimodalSentimentClassifier(text_normalization="emoji").fit(X, y)


def test_a_fit_that_predicts_one_class_warns_with_what_to_try(demo):
    X, y = demo
    rng = np.random.default_rng(0)
    # Labels unrelated to the posts, 90 % of one class: the head learns the majority only.
    y_skewed = np.where(rng.random(len(y)) < 0.9, "common", "rare")
    for adjustment, label, advice in ((0.0, "common", "logit_adjustment=1.0.*balanced"),
                                      (0.5, "rare", "a lower logit_adjustment")):
        # Near its initial state the head scores every post alike: with no adjustment it
        # predicts the majority; the default adjustment then tips every post to the rare
        # class. Either way the warning names the class that prediction gives.
        clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, lr=1e-4,
                                            validation_fraction=0.3, random_state=0,
                                            logit_adjustment=adjustment)
        with pytest.warns(UserWarning, match=f"predicts '{label}' for all .*collapsed onto "
                                             f"one class.*{advice}"):
            clf.fit(X, y_skewed)
        assert set(clf.predict(X)) == {label}


def test_a_fit_that_separates_the_classes_does_not_warn(small):
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=8, lr=1e-2,
                                        validation_fraction=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.fit(X, y)
    counts = clf.history_[-1, "predicted_counts"]
    assert sum(counts) == len(y) and np.count_nonzero(counts) > 1


@pytest.fixture(scope="module")
def skewed_fit(demo):
    """A frozen-encoder fit on the demo set, whose classes are uneven (54 / 36 / 72)."""
    X, y = demo
    return MultimodalSentimentClassifier(finetune="frozen", max_epochs=3,
                                         random_state=0).fit(X, y), X


def test_logit_adjustment_divides_probabilities_by_the_prior_to_a_power(skewed_fit):
    clf, X = skewed_fit
    prior = clf.class_count_ / clf.class_count_.sum()
    np.testing.assert_allclose(clf.class_prior_, prior)
    raw = clf.set_params(logit_adjustment=0.0).predict_proba(X)
    # With no adjustment: the network's own softmax, as skorch computes it.
    (dataset,) = predict_chunks(clf.pipeline_, *extract_columns(X, "text", "image_path"),
                                clf.net_.module_, "cpu")
    np.testing.assert_allclose(raw, clf.net_.predict_proba(dataset), atol=1e-5)
    for tau in (0.5, 1.0):
        adjusted = clf.set_params(logit_adjustment=tau).predict_proba(X)
        expected = raw / prior ** tau
        np.testing.assert_allclose(adjusted, expected / expected.sum(axis=1, keepdims=True),
                                   atol=1e-6)
        assert np.array_equal(clf.predict(X), clf.classes_[adjusted.argmax(axis=1)])
    # The rarest class gains: predicted at least as often as without the adjustment.
    rare = int(np.argmin(prior))
    assert (adjusted.argmax(axis=1) == rare).sum() >= (raw.argmax(axis=1) == rare).sum()
    clf.set_params(logit_adjustment=0.5)
    with pytest.raises(ValueError, match="logit_adjustment must be a finite number"):
        MultimodalSentimentClassifier(logit_adjustment=-1).fit(X, np.asarray(["a", "b"] * 81))


def test_saved_models_keep_the_class_counts_that_adjust_their_logits(skewed_fit, tmp_path):
    clf, X = skewed_fit
    clf.save(tmp_path / "m.safetensors")
    loaded = MultimodalSentimentClassifier.load(tmp_path / "m.safetensors")
    assert loaded.class_count_.tolist() == clf.class_count_.tolist()
    np.testing.assert_allclose(loaded.class_prior_, clf.class_prior_)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_model_file_configs_may_omit_class_counts_but_not_garble_them():
    import json

    from mmsentiment.model_files import check_config

    config = {"params": {"text_encoder": "all-MiniLM-L6-v2",
                         "image_encoder": "tf_efficientnet_lite0"},
              "classes": ["neg", "pos"], "classes_dtype": "object", "n_features_in": 2,
              "feature_names_in": [], "referenced_encoders": []}
    names = MultimodalSentimentClassifier().get_params()
    assert "class_count" not in check_config(json.dumps(config), names)
    assert check_config(json.dumps({**config, "class_count": [3, 5]}), names)[
        "class_count"] == [3, 5]
    for bad in ([3], [3, -1], [3, "5"], "35", [2 ** 62, 2 ** 62], [True, 1]):
        with pytest.raises(ValueError, match="class_count"):
            check_config(json.dumps({**config, "class_count": bad}), names)
    assert check_config(json.dumps({**config, "class_prior": [0.25, 0.75]}), names)
    for bad in ([1.0], [0.7, 0.7], [float("nan"), 1.0], [-0.5, 1.5], [True, 0]):
        with pytest.raises(ValueError, match="class_prior"):
            check_config(json.dumps({**config, "class_prior": bad}), names)


def test_a_soft_voting_ensemble_of_seeds_averages_their_probabilities(small):
    from sklearn.ensemble import VotingClassifier

    X, y = small
    members = [(f"seed{s}", MultimodalSentimentClassifier(finetune="frozen", max_epochs=3,
                                                          random_state=s)) for s in (0, 1)]
    ensemble = VotingClassifier(members, voting="soft").fit(X, y)
    proba = ensemble.predict_proba(X)
    np.testing.assert_allclose(
        proba, np.mean([m.predict_proba(X) for m in ensemble.estimators_], axis=0), atol=1e-9)
    assert list(ensemble.classes_) == sorted(set(y))
    assert not np.allclose(ensemble.estimators_[0].predict_proba(X),
                           ensemble.estimators_[1].predict_proba(X), atol=1e-4)


def test_the_prior_follows_the_weights_of_the_loss_and_warm_starts(demo):
    X, y = demo
    params = dict(finetune="frozen", max_epochs=1, random_state=0)
    balanced = MultimodalSentimentClassifier(**params, class_weight="balanced").fit(X, y)
    np.testing.assert_allclose(balanced.class_prior_, 1 / 3)  # nothing to adjust
    weights = np.where(y == "neutral", 4.0, 1.0)
    weighted = MultimodalSentimentClassifier(**params).fit(X, y, sample_weight=weights)
    mass = np.array([54, 36 * 4, 72], dtype=float)  # negative, neutral, positive
    np.testing.assert_allclose(weighted.class_prior_, mass / mass.sum())
    # A warm start on positives only: the prior mixes both fits by their posts; no class
    # drops to zero and none is boosted for being absent.
    clf = MultimodalSentimentClassifier(**params).fit(X, y)
    first = clf.class_prior_.copy()
    clf.set_params(warm_start=True).fit(X[y == "positive"], y[y == "positive"])
    assert clf.class_count_.tolist() == [54, 36, 72 + 72]
    expected = (first * 162 + np.array([0, 0, 1.0]) * 72) / 234
    np.testing.assert_allclose(clf.class_prior_, expected)
