"""Image decoding, column extraction and the data sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmsentiment import load_demo, load_mvsa
from mmsentiment.data import extract_columns, handle_image_failures, load_image, load_images
from mmsentiment.datasets import merge_labels
from mmsentiment.encoders import ImagePreprocessing

PREP = ImagePreprocessing(size=32, crop_pct=0.875, mean=(0.5,) * 3, std=(0.5,) * 3)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "1", "LA"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    img = Image.new("RGB", (50, 40), (10, 200, 30)).convert(mode)
    suffix = "tiff" if mode in ("CMYK", "I;16") else "png"
    path = tmp_path / f"x.{suffix}"
    img.save(path)
    arr = load_image(str(path), PREP)
    assert arr.shape == (3, 32, 32) and arr.dtype == np.uint8


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    arr = load_image(img, PREP)
    assert arr.min() == 255


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 40, 40))  # left half blue, right half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    arr = load_image(str(path), ImagePreprocessing(32, 1.0, (0.5,) * 3, (0.5,) * 3))
    # After rotation the blue half is on top.
    assert arr[2, :8].mean() > arr[0, :8].mean()
    assert arr[0, -8:].mean() > arr[2, -8:].mean()


def test_tiny_and_tall_images(tmp_path):
    Image.new("RGB", (1, 1), (5, 5, 5)).save(tmp_path / "dot.png")
    Image.new("RGB", (48, 1200), (5, 5, 5)).save(tmp_path / "tall.png")
    out, present, failures = load_images([str(tmp_path / "dot.png"),
                                          str(tmp_path / "tall.png")], PREP)
    assert out.shape == (2, 3, 32, 32) and present.all() and not failures


def test_unreadable_images_are_named(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    Image.new("RGB", (10, 10)).save(tmp_path / "ok.png")
    paths = [str(tmp_path / "ok.png"), str(tmp_path / "empty.jpg"), str(tmp_path / "nope.png"),
             str(tmp_path / "text.jpg")]
    _, present, failures = load_images(paths, PREP)
    assert present.tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match=r"3 image\(s\) could not be read: row 1 .*row 2 .*"
                                         r"row 3"):
        handle_image_failures(failures, "raise")


def test_extract_columns_errors():
    with pytest.raises(ValueError, match="3 feature"):
        extract_columns([["a", "b", "c"]], "text", "image_path")
    with pytest.raises(ValueError, match="lacks the column"):
        extract_columns(pd.DataFrame({"text": ["a"]}), "text", "image_path")
    with pytest.raises(ValueError, match="row 1: 7"):
        extract_columns([["a", "x.jpg"], [7, "y.jpg"]], "text", "image_path")


def test_demo_set_is_small_and_complete():
    df = load_demo()
    assert len(df) == 162
    assert set(df["label"]) == {"positive", "neutral", "negative"}
    assert all(Image.open(p).size == (128, 128) for p in df["image_path"][:5])
    X, y = load_demo(return_X_y=True)
    assert list(X.columns) == ["text", "image_path"] and len(y) == 162


def test_merge_rule():
    assert merge_labels("positive", "positive") == "positive"
    assert merge_labels("neutral", "negative") == "negative"
    assert merge_labels("negative", "neutral") == "negative"
    assert merge_labels("negative", "positive") is None


def test_load_mvsa_counts(mvsa_root):
    train = load_mvsa(mvsa_root, "train")
    dev = load_mvsa(mvsa_root, "dev")
    assert len(train) == 3611 and len(dev) == 450
    assert train["label"].value_counts().to_dict() == {
        "positive": 2147, "negative": 1088, "neutral": 376}
    assert not set(train["id"]) & set(dev["id"])
    assert train["text"].map(len).gt(0).mean() > 0.99
    # GB18030-encoded files decode to real characters, not replacement marks.
    assert train["text"].str.contains("\ufffd").mean() < 0.01


def test_load_mvsa_rejects_other_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an MVSA-Single folder"):
        load_mvsa(tmp_path)
