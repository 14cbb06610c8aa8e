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
