"""The network's forward pass: inputs, missing modalities, auxiliary outputs."""

from __future__ import annotations

import pytest
import torch

from mmsentiment.encoders import ImageEncoder, TextEncoder
from mmsentiment.nn import AttentionFusion, AuxiliaryOutput, ConcatFusion, MultimodalNet


@pytest.fixture(scope="module")
def encoders():
    text = TextEncoder("all-MiniLM-L6-v2")
    image = ImageEncoder(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                             torch.nn.AdaptiveAvgPool2d(1),
                                             torch.nn.Flatten()))
    return text, image


def _head_inputs(net):
    seen = []
    net.head.register_forward_hook(lambda m, args, out: seen.append(args))
    return seen


def _batch(text, texts, pixels, text_present, image_present):
    return {**text.tokenize(texts), "pixels": pixels,
            "text_present": torch.tensor(text_present),
            "image_present": torch.tensor(image_present)}


def test_pooled_head_reads_the_missing_vectors(encoders):
    text, image = encoders
    net = MultimodalNet(text, image, ConcatFusion(text.dim, image.dim, 3)).eval()
    with torch.no_grad():
        net.missing_text.fill_(7.0)
        net.missing_image.fill_(-3.0)
    seen = _head_inputs(net)
    pixels = torch.randint(0, 255, (3, 3, 224, 224), dtype=torch.uint8)
    logits = net(**_batch(text, ["good", "", "bad"], pixels, [True, False, True],
                          [True, True, False]))
    assert logits.shape == (3, 3)
    t, t_mask, i, i_mask = seen[0]
    assert t.shape == (3, 1, text.dim) and i.shape == (3, 1, image.dim)
    assert t_mask.all() and i_mask.all()
    assert torch.all(t[1] == 7.0) and torch.all(i[2] == -3.0)
    assert not torch.all(t[0] == 7.0) and not torch.all(i[0] == -3.0)


def test_a_batch_without_text_skips_the_text_encoder(encoders, monkeypatch):
    text, image = encoders
    net = MultimodalNet(text, image, ConcatFusion(text.dim, image.dim, 3)).eval()

    def fail(*args, **kwargs):
        raise AssertionError("the text encoder ran")

    monkeypatch.setattr(net.text_encoder, "forward", fail)
    pixels = torch.zeros(2, 3, 224, 224, dtype=torch.uint8)
    out = net(**_batch(text, ["", ""], pixels, [False, False], [True, True]))
    assert out.shape == (2, 3)


def test_precomputed_features_skip_both_encoders(encoders):
    text, image = encoders
    net = MultimodalNet(text, image, ConcatFusion(text.dim, image.dim, 2), finetune="frozen")
    out = net.eval()(text_features=torch.randn(4, text.dim),
                     image_features=torch.randn(4, image.dim),
                     text_present=torch.ones(4, dtype=torch.bool),
                     image_present=torch.tensor([True, False, True, False]))
    assert out.shape == (4, 2)


def test_auxiliary_output_only_in_training_with_labels(encoders):
    text, image = encoders
    net = MultimodalNet(text, image, ConcatFusion(text.dim, image.dim, 3), aux_classes=3)
    pixels = torch.zeros(2, 3, 224, 224, dtype=torch.uint8)
    batch = _batch(text, ["good", ""], pixels, [True, False], [True, True])
    labels = {"text_label": torch.tensor([2, 1]), "image_label": torch.tensor([0, -1])}
    out = net.train()(**batch, **labels)
    assert isinstance(out, AuxiliaryOutput) and out.logits.shape == (2, 3)
    (text_logits, text_labels), (image_logits, image_labels) = out.auxiliary
    assert text_labels.tolist() == [2, -1]  # no text in row 1: no text label either
    assert image_labels.tolist() == [0, -1] and image_logits.shape == (2, 3)
    assert torch.is_tensor(net.eval()(**batch, **labels))
    net.drop_auxiliary_heads()
    assert torch.is_tensor(net.train()(**batch, **labels))


def test_sequence_head_masks_what_is_missing_or_hidden(encoders):
    text, image = encoders
    head = AttentionFusion(text.token_dim, image.dim, 3)
    net = MultimodalNet(text, image, head, modality_dropout=0.5)
    seen = _head_inputs(net)
    pixels = torch.zeros(4, 3, 224, 224, dtype=torch.uint8)
    net.eval()(**_batch(text, ["a b c", "", "d", "e"], pixels, [True, False, True, True],
                        [True, True, False, True]))
    t, t_mask, i, i_mask = seen[-1]
    assert t.shape[:2] == t_mask.shape and t.shape[1] > 1
    assert not t_mask[1].any() and t_mask[0].any()
    assert not i_mask[2].any() and i_mask[3].all()
    torch.manual_seed(0)
    net.train()(**_batch(text, ["a", "b", "c", "d"], pixels, [True] * 4, [True] * 4))
    t, t_mask, i, i_mask = seen[-1]
    shown = torch.stack([t_mask.any(1), i_mask.any(1)], dim=1)
    # With modality_dropout=0.5 every complete post shows exactly one modality.
    assert shown.sum(1).tolist() == [1, 1, 1, 1]
