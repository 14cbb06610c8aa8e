"""Frozen-encoder features: each unique input encoded once, then read from the cache."""

from __future__ import annotations

import pytest
import torch

from mmsentiment.encoders import ImageEncoder, TextEncoder
from mmsentiment.inputs.features import image_features, text_features


class Counting(torch.nn.Module):
    """A tiny image model that counts the images it encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return self.conv(x).mean((2, 3))


def test_text_features_encode_unique_texts_once_then_hit_the_cache(tmp_path, monkeypatch):
    encoder = TextEncoder("all-MiniLM-L6-v2").eval()
    batches = []
    tokenize = encoder.tokenize
    monkeypatch.setattr(encoder, "tokenize", lambda texts: batches.append(list(texts)) or
                        tokenize(texts))
    key = encoder.cache_key()
    texts = ["so happy", None, "so happy", "awful"]
    vectors, present = text_features(encoder, texts, tmp_path, key)
    assert sorted(t for batch in batches for t in batch) == ["awful", "so happy"]
    assert present.tolist() == [True, False, True, True]
    assert torch.equal(vectors[0], vectors[2]) and not vectors[1].any()
    batches.clear()
    again, _ = text_features(encoder, texts, tmp_path, key)
    assert batches == [] and torch.equal(again, vectors)


def test_image_features_blank_policy_and_cache(tmp_path, image_file):
    encoder = ImageEncoder(Counting()).eval()
    good = image_file()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    images = [good, None, str(bad), good]
    with pytest.raises(ValueError, match="could not be read"):
        image_features(encoder, images, tmp_path, encoder.cache_key())
    with pytest.warns(UserWarning, match="treated as missing"):
        vectors, present = image_features(encoder, images, tmp_path, encoder.cache_key(),
                                           on_bad_image="blank")
    assert present.tolist() == [True, False, False, True]
    assert torch.equal(vectors[0], vectors[3]) and not vectors[2].any()
    seen = encoder.model.seen
    image_features(encoder, [good], tmp_path, encoder.cache_key())
    assert encoder.model.seen == seen  # read from the cache, not encoded again
