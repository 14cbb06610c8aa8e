"""Datasets as named columns, batching and collation."""

from __future__ import annotations

import pytest
import torch

from mmsentiment.encoders import TextEncoder
from mmsentiment.inputs import Collate, PostDataset, batch_loader


def _dataset():
    pixels = torch.arange(4 * 3 * 2 * 2, dtype=torch.uint8).reshape(4, 3, 2, 2)
    return PostDataset({"text": ["a", "b", "", "d"],
                        "text_present": torch.tensor([True, True, False, True]),
                        "pixels": pixels, "image_present": torch.ones(4, dtype=torch.bool)},
                       y=[0, 1, 2, 0])


def test_subsets_are_views_and_batches_gather_every_column():
    ds = _dataset()
    view = ds.subset([3, 1])
    assert len(view) == 2 and view.columns["pixels"] is ds.columns["pixels"]
    inputs, y = view.batch([0, 1])
    assert inputs["text"] == ["d", "b"] and y.tolist() == [0, 1]
    assert torch.equal(inputs["pixels"], ds.columns["pixels"][[3, 1]])
    assert set(inputs) == {"text", "text_present", "pixels", "image_present"}
    assert view.column("text").tolist() == ["d", "b"]
    assert PostDataset({"pixels": torch.zeros(2, 1)}).column("y").tolist() == [0, 0]


def test_with_columns_replaces_and_drops():
    ds = _dataset().subset([0, 2])
    lower = torch.ones(2, 2, 5)
    swapped = ds.with_columns(pixels=None, image_lower=lower)
    inputs, y = swapped.batch([1])
    assert "pixels" not in inputs and torch.equal(inputs["image_lower"], lower[[1]])
    assert inputs["text"] == [""] and y.tolist() == [2]


def test_hide_marks_a_modality_missing_and_shares_the_rest():
    ds = _dataset()
    view = ds.subset([3, 0, 2])
    hidden = view.hide("image")
    assert hidden.columns["pixels"] is ds.columns["pixels"]  # no pixel copied
    inputs, y = hidden.batch([0, 1, 2])
    assert inputs["image_present"].tolist() == [False, False, False]
    assert inputs["text_present"].tolist() == [True, True, False]
    assert inputs["text"] == ["d", "a", ""] and y.tolist() == [0, 0, 2]
    assert view.column("image_present").tolist() == [True, True, True]  # source untouched
    both = ds.hide("text", "image")
    assert not both.column("text_present").any() and not both.column("image_present").any()
    assert ds.column("text_present").tolist() == [True, True, False, True]
    with pytest.raises(ValueError, match="'audio'"):
        ds.hide("audio")


def test_loader_and_collate_tokenize_and_flip():
    encoder = TextEncoder("all-MiniLM-L6-v2")
    ds = _dataset()
    loader = batch_loader(ds, 3, collate_fn=Collate(encoder.tokenizer, encoder.max_length))
    batches = list(loader)
    assert [len(y) for _, y in batches] == [3, 1]
    inputs, _ = batches[0]
    assert "text" not in inputs and inputs["input_ids"].shape[0] == 3
    assert torch.equal(inputs["pixels"], ds.columns["pixels"][:3])  # no flip without flip=
    torch.manual_seed(0)
    flip = Collate(encoder.tokenizer, encoder.max_length, flip=True)
    flipped, _ = flip(ds.batch(list(range(4))))
    original = ds.columns["pixels"]
    changed = [not torch.equal(flipped["pixels"][i], original[i]) for i in range(4)]
    assert any(changed)
    for i, c in enumerate(changed):
        if c:
            assert torch.equal(flipped["pixels"][i], original[i].flip(-1))


def test_collate_picks_one_lower_variant_per_post():
    encoder = TextEncoder("all-MiniLM-L6-v2")
    lower = torch.stack([torch.zeros(4, 2, 1, 1), torch.ones(4, 2, 1, 1)], dim=1)
    ds = PostDataset({"text": ["a"] * 4, "text_present": torch.ones(4, dtype=torch.bool),
                      "image_lower": lower})
    plain, _ = Collate(encoder.tokenizer, encoder.max_length)(ds.batch([0, 1, 2, 3]))
    assert plain["image_lower"].shape == (4, 2, 1, 1) and plain["image_lower"].sum() == 0
    torch.manual_seed(1)
    mixed, _ = Collate(encoder.tokenizer, encoder.max_length, flip=True)(ds.batch(range(4)))
    assert set(mixed["image_lower"].flatten(1).mean(1).tolist()) <= {0.0, 1.0}


def test_length_groups_cover_every_row_once_per_epoch_and_pad_less():
    import numpy as np

    from mmsentiment.inputs import LengthGroups

    lengths = np.random.default_rng(0).integers(5, 200, size=500)
    groups = LengthGroups(seed=3, span=4)
    first, second = groups.batches(lengths, 16), groups.batches(lengths, 16)
    for epoch in (first, second):
        assert sorted(i for batch in epoch for i in batch) == list(range(500))
        assert len(epoch) == 32 and all(len(batch) <= 16 for batch in epoch)
    assert first != second  # a new order every epoch
    assert LengthGroups(seed=3, span=4).batches(lengths, 16) == first  # seeded

    def padded(batches):  # positions computed, padding included
        return sum(len(batch) * lengths[batch].max() for batch in batches)

    shuffled = np.random.default_rng(1).permutation(500)
    random_batches = [shuffled[i:i + 16] for i in range(0, 500, 16)]
    assert padded(first) < 0.75 * padded(random_batches)
    # Batches are not sorted across the epoch: long and short ones alternate.
    maxima = [lengths[batch].max() for batch in first]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)


def test_loader_draws_length_groups_only_when_shuffling_texts():
    from mmsentiment.inputs import LengthGroups

    texts = ["x" * n for n in (1, 40, 2, 39, 3, 38, 4, 37)]
    ds = PostDataset({"text": texts, "text_present": torch.ones(8, dtype=torch.bool)},
                     y=list(range(8)))
    groups = LengthGroups(seed=0, span=4)
    batches = [y.tolist() for _, y in batch_loader(ds, 2, shuffle=True, length_groups=groups)]
    # One span of 4 batches holds all posts: each batch pairs neighbours in length.
    assert sorted(sorted(b) for b in batches) == [[0, 2], [1, 3], [4, 6], [5, 7]]
    assert groups.epoch == 1
    plain = [y.tolist() for _, y in batch_loader(ds, 2, length_groups=groups)]
    assert plain == [[0, 1], [2, 3], [4, 5], [6, 7]] and groups.epoch == 1  # no shuffle
    pixels = PostDataset({"pixels": torch.zeros(4, 3, 2, 2, dtype=torch.uint8)}, y=[0, 1, 2, 3])
    assert len(list(batch_loader(pixels, 2, shuffle=True, length_groups=groups))) == 2
    assert groups.epoch == 1  # no texts: plain shuffled batches
