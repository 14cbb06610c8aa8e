"""The attention fusion head: masking, and the classifier's sequence path around it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.nn import AttentionFusion

TOP = {"fusion": "attention", "finetune": "top", "max_epochs": 1, "batch_size": 12,
       "validation_fraction": None, "random_state": 0}


def test_masked_positions_never_reach_the_logits():
    torch.manual_seed(0)
    head = AttentionFusion(8, 6, 3, hidden=16, heads=2).eval()
    text, image = torch.randn(3, 5, 8), torch.randn(3, 4, 6)
    text_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]).bool()
    image_mask = torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0]]).bool()
    logits = head(text, text_mask, image, image_mask)
    noisy_text, noisy_image = text.clone(), image.clone()
    noisy_text[~text_mask] = 100.0
    noisy_image[~image_mask] = -100.0
    assert torch.allclose(head(noisy_text, text_mask, noisy_image, image_mask), logits,
                          atol=1e-5)
    changed = text.clone()
    changed[0, 0] += 1.0  # a real token of the first post
    moved = head(changed, text_mask, image, image_mask)
    assert not torch.allclose(moved[0], logits[0]) and torch.allclose(moved[1:], logits[1:])
    # Nothing to attend to but the summary token: still finite logits.
    empty = head(text, torch.zeros_like(text_mask), image, torch.zeros_like(image_mask))
    assert torch.isfinite(empty).all()


def test_attention_fit_sees_tokens_and_patches(small):
    X, y = small
    seen = []
    clf = MultimodalSentimentClassifier(**TOP)
    build = clf.build_module

    def spy(n_classes, **kwargs):
        module = build(n_classes, **kwargs)
        module.head.register_forward_hook(
            lambda m, args, out: seen.append((tuple(args[0].shape), tuple(args[2].shape))))
        return module

    clf.build_module = spy
    clf.fit(X, y)
    (text_shape, image_shape) = seen[0]
    assert text_shape[0] == image_shape[0] == 12  # a batch
    assert text_shape[2] == 384 and text_shape[1] > 1  # MiniLM tokens
    assert image_shape[1:] == (49, 1280)  # EfficientNet-Lite0's 7 x 7 cells
    proba = clf.predict_proba(X[:6])
    assert proba.shape == (6, 3) and np.allclose(proba.sum(axis=1), 1.0)
    # Missing modalities: a whole column, or single posts.
    for missing in ({"image_path": None}, {"text": None}):
        other = clf.predict_proba(X[:6].assign(**missing))
        assert np.all(np.isfinite(other)) and not np.allclose(other, proba)
    mixed = X[:6].copy()
    mixed.loc[0, "text"], mixed.loc[1, "image_path"] = None, None
    assert np.all(np.isfinite(clf.predict_proba(mixed)))


def test_attention_full_fine_tune_with_micro_batches_and_auxiliary_labels(small, tmp_path):
    X, y = small
    texts = y.astype(object).copy()
    texts[::4] = None
    clf = MultimodalSentimentClassifier(**{**TOP, "finetune": "full", "micro_batch_size": 4})
    clf.fit(X, y, text_labels=texts, image_labels=y)
    assert np.isfinite(clf.history_[-1, "train_loss"])
    assert not hasattr(clf.net_.module_, "text_aux")
    path = clf.save(tmp_path / "attention.safetensors")
    again = MultimodalSentimentClassifier.load(path)
    assert type(again.net_.module_.head) is AttentionFusion
    np.testing.assert_allclose(again.predict_proba(X[:4]), clf.predict_proba(X[:4]),
                               atol=1e-5)


def test_encoder_without_patches_gives_one_position(small):
    X, y = small
    cnn = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten())
    clf = MultimodalSentimentClassifier(**{**TOP, "finetune": "full"}, image_encoder=cnn)
    clf.fit(X, y)
    assert clf.predict(X[:3]).shape == (3,)


def test_attention_needs_trainable_encoders(small):
    with pytest.raises(ValueError, match='finetune="frozen" caches pooled vectors only'):
        MultimodalSentimentClassifier(fusion="attention", finetune="frozen").fit(*small)
