"""Options for accuracy on real posts: tweet normalisation and the collapse warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.inputs import extract_columns
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
])
def test_normalize_tweet_rewrites_social_media_parts(text, expected):
    assert normalize_tweet(text) == expected


def test_normalisation_keeps_missing_texts_missing_and_refuses_unknown_names():
    assert normalize_texts([None, "#Yes"], "tweet") == [None, "Yes"]
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
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, lr=1e-4,
                                        validation_fraction=0.3, random_state=0)
    with pytest.warns(UserWarning, match="collapsed onto one class.*'common'.*balanced"):
        clf.fit(X, y_skewed)
    assert set(clf.predict(X)) == {"common"}
    assert clf.history_[-1, "predicted_counts"][0] > 0


def test_a_fit_that_separates_the_classes_does_not_warn(small):
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=8, lr=1e-2,
                                        validation_fraction=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.fit(X, y)
    counts = clf.history_[-1, "predicted_counts"]
    assert sum(counts) == len(y) and np.count_nonzero(counts) > 1
