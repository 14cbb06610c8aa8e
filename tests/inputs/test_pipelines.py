"""Input pipelines: chosen by what trains; each gives the columns its network reads."""

from __future__ import annotations

import pytest
import timm
import torch

from mmsentiment.encoders import ImageEncoder, TextEncoder
from mmsentiment.inputs import LowerActivations, PooledFeatures, RawImages, make_pipeline
from mmsentiment.nn import ConcatFusion, MultimodalNet, get_finetune


@pytest.fixture(scope="module")
def text():
    return TextEncoder("all-MiniLM-L6-v2")


def module(text, image, finetune):
    return MultimodalNet(text, image, ConcatFusion(text.dim, image.dim, 3), finetune=finetune)


def choose(net, finetune):
    return make_pipeline(get_finetune(finetune), net, on_bad_image="raise", cache_dir=None,
                         batch_size=8)


def test_the_pipeline_follows_what_trains(text):
    lite = ImageEncoder("tf_efficientnet_lite0")
    vit = ImageEncoder(timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=1))
    assert type(choose(module(text, lite, "full"), "full")) is RawImages
    assert type(choose(module(text, lite, "top"), "top")) is LowerActivations
    assert type(choose(module(text, vit, "top"), "top")) is RawImages  # cannot be split
    assert type(choose(module(text, lite, "frozen"), "frozen")) is PooledFeatures


def test_lower_activations_hold_each_image_and_its_mirror(text, image_file):
    lite = ImageEncoder("tf_efficientnet_lite0")
    net = module(text, lite, "top")
    paths = [image_file("a.png", (200, 30, 30), (60, 40)), None]
    pipeline = choose(net, "top")
    dataset = pipeline.train_dataset(["good", None], paths, net, [0, 1], "cpu",
                                     columns={"text_label": torch.tensor([0, -1])})
    assert set(dataset.columns) == {"text", "text_present", "image_lower", "image_present",
                                    "text_label", "y"}
    lower = dataset.column("image_lower")
    assert lower.dtype == torch.float16 and lower.shape[:2] == (2, 2)
    pixels = pipeline.predict_dataset(["good", None], paths, net, "cpu").column("pixels")
    with torch.inference_mode():
        lite.eval()
        for variant, image in ((0, pixels[:1]), (1, pixels[:1].flip(-1))):
            torch.testing.assert_close(lite.upper(lower[:1, variant].float()), lite(image),
                                       atol=0.05, rtol=0.05)
    assert dataset.column("text_present").tolist() == [True, False]
    assert dataset.column("image_present").tolist() == [True, False]


def test_pooled_features_equal_the_encoders_outputs(text, image_file, tmp_path):
    image = ImageEncoder(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                             torch.nn.AdaptiveAvgPool2d(1),
                                             torch.nn.Flatten()))
    net = module(text, image, "frozen")
    pipeline = make_pipeline(get_finetune("frozen"), net, on_bad_image="raise",
                             cache_dir=tmp_path, batch_size=8)
    path = image_file()
    dataset = pipeline.train_dataset(["fine", "ok"], [path, None], net, [0, 1], "cpu")
    assert set(dataset.columns) == {"text_features", "image_features", "text_present",
                                    "image_present", "y"}
    with torch.inference_mode():
        expected = text(**text.tokenize(["fine", "ok"]))
    torch.testing.assert_close(dataset.column("text_features"), expected, atol=1e-5,
                               rtol=1e-5)
    assert dataset.column("image_present").tolist() == [True, False]
    assert any(tmp_path.iterdir())  # the cache was written
    again = pipeline.predict_dataset(["fine", "ok"], [path, None], net, "cpu")
    torch.testing.assert_close(again.column("image_features"),
                               dataset.column("image_features"))


def test_lower_activations_are_computed_chunk_by_chunk(text, image_file, monkeypatch,
                                                        tmp_path):
    import mmsentiment.inputs.pipelines as pipelines

    lite = ImageEncoder("tf_efficientnet_lite0")
    net = module(text, lite, "top")
    colors = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (90, 90, 9), (9, 90, 90)]
    paths = [image_file(f"{i}.png", c, (50, 40)) for i, c in enumerate(colors)]
    texts = ["a", "b", "c", "d", "e"]
    whole = choose(net, "top").train_dataset(texts, paths, net, [0] * 5, "cpu")
    monkeypatch.setattr(pipelines, "LOWER_CHUNK", 2)  # chunks of 2, 2 and 1
    chunked = choose(net, "top").train_dataset(texts, paths, net, [0] * 5, "cpu")
    torch.testing.assert_close(chunked.column("image_lower"), whole.column("image_lower"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"1 image\(s\) could not be read: row 3 \("):
        choose(net, "top").train_dataset(texts, [*paths[:3], str(broken), paths[4]], net,
                                          [0] * 5, "cpu")
