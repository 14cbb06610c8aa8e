"""What trains under each ``finetune`` setting, for any timm family (no download needed)."""

from __future__ import annotations

import pytest
import timm
import torch

from mmsentiment.encoders import ImageEncoder, TextEncoder
from mmsentiment.nn import ConcatFusion, MultimodalNet, get_finetune


@pytest.fixture(scope="module")
def text():
    return TextEncoder("all-MiniLM-L6-v2")


def random_image_encoder(name: str) -> ImageEncoder:
    """A randomly initialised small timm model of another family than EfficientNet."""
    kwargs = {"depth": 2} if name.startswith("vit") else {}
    return ImageEncoder(timm.create_model(name, pretrained=False, **kwargs))


def build(text, image, finetune):
    return MultimodalNet(text, image, ConcatFusion(text.dim, image.dim, 3), finetune=finetune)


def trainable(module) -> set[str]:
    return {n for n, p in module.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("name, top, below", [
    # timm's coarse groups: the last block with the final norm; the last stage with the head
    # norm (ConvNeXt's head norm matches no pattern of its group_matcher and joins the top).
    ("vit_tiny_patch16_224", ("model.blocks.1.", "model.norm."), "model.blocks.0."),
    ("convnext_atto", ("model.stages.3.", "model.head.norm."), "model.stages.2."),
])
def test_top_trains_the_top_layer_group_of_any_timm_family(text, name, top, below):
    image = random_image_encoder(name)
    net = build(text, image, "top")
    names = trainable(net.image_encoder)
    assert names and all(n.startswith(top) for n in names)
    assert all(any(n.startswith(prefix) for n in names) for prefix in top)
    assert not any(n.startswith(below) for n in names)
    net.train()
    mode = dict(net.image_encoder.named_modules())
    assert mode[top[0].rstrip(".")].training and not mode[below.rstrip(".")].training
    # The text side: the top 4 transformer layers, nothing below them.
    layers = net.text_encoder.transformer_layers()
    assert [all(p.requires_grad for p in layer.parameters()) for layer in layers] == \
        [False] * (len(layers) - 4) + [True] * 4
    assert not any(p.requires_grad for p in net.text_encoder.model[0].model.embeddings
                   .parameters())
    assert net.text_encoder.transformer_layers()[-1].training
    assert not net.text_encoder.transformer_layers()[0].training


def test_efficientnet_top_group_is_the_last_stage_with_the_head_convolution(text):
    image = ImageEncoder("tf_efficientnet_lite0")
    names = trainable(build(text, image, "top").image_encoder)
    assert {n.split(".")[1] for n in names} == {"blocks", "conv_head", "bn2"}
    assert all(n.startswith("model.blocks.6.") for n in names if ".blocks." in f".{n}")
    assert image.splits_at_top_group()


@pytest.mark.parametrize("finetune, text_trains, image_trains", [
    ("full", True, True), ("frozen", False, False)])
def test_full_and_frozen(text, finetune, text_trains, image_trains):
    net = build(text, random_image_encoder("convnext_atto"), finetune)
    assert all(p.requires_grad == text_trains for p in net.text_encoder.parameters())
    assert all(p.requires_grad == image_trains for p in net.image_encoder.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    assert get_finetune(finetune).trains_encoders == text_trains


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="finetune must be one of"):
        get_finetune("half")


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "convnext_atto"])
def test_layer_decay_follows_the_timm_groups(text, name):
    from mmsentiment.training import build_net

    image = random_image_encoder(name)
    lr, decay = 1e-3, 0.5
    net = build_net(build(text, image, "full"), n_classes=3, device="cpu",
                    image_encoder_lr=lr, layer_decay=decay).initialize()
    rate = {id(p): g["lr"] for g in net.optimizer_.param_groups for p in g["params"]}
    params = dict(image.named_parameters())
    layer_groups = image.layer_groups()
    assert len(layer_groups) >= 3
    for depth, names in enumerate(layer_groups):
        expected = lr * decay ** (len(layer_groups) - 1 - depth)
        assert all(rate[id(params[n])] == pytest.approx(expected) for n in names)
    assert all(rate[id(p)] == pytest.approx(1e-3) for p in net.module_.head.parameters())


def test_groups_cover_every_parameter_once(text):
    for image in (random_image_encoder("vit_tiny_patch16_224"),
                  ImageEncoder(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                                   torch.nn.AdaptiveAvgPool2d(1),
                                                   torch.nn.Flatten()))):
        names = [n for group in image.layer_groups() for n in group]
        assert sorted(names) == sorted(n for n, _ in image.named_parameters())
    names = [n for group in text.layer_groups() for n in group]
    assert sorted(names) == sorted(n for n, _ in text.named_parameters())


def test_top_image_trains_all_of_the_text_and_the_image_top_group(text):
    image = ImageEncoder("tf_efficientnet_lite0")
    net = build(text, image, "top-image")
    assert all(p.requires_grad for p in net.text_encoder.parameters())
    assert trainable(net.image_encoder) == trainable(build(text, image, "top").image_encoder)
    setting = get_finetune("top-image")
    assert setting.trains_encoders and not setting.trains_everything
    assert setting.resolve_micro_batch_size("auto") is None
