"""Image decoding: every mode to RGB, orientation, sizes, and unreadable files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmsentiment.encoders import ImagePreprocessing
from mmsentiment.inputs import handle_image_failures, load_image, load_images

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


def test_resize_filter_follows_the_model_config():
    import timm

    from mmsentiment.encoders import ImageEncoder

    model = timm.create_model("resnet18", pretrained=False)
    model.pretrained_cfg = {**model.pretrained_cfg, "interpolation": "bilinear"}
    assert ImageEncoder(model).preprocessing.interpolation == "bilinear"
    gradient = Image.fromarray(np.tile(np.arange(0, 250, 5, dtype=np.uint8), (50, 1)))
    prep = dict(size=16, crop_pct=1.0, mean=(0.5,) * 3, std=(0.5,) * 3)
    bicubic = load_image(gradient, ImagePreprocessing(**prep))
    bilinear = load_image(gradient, ImagePreprocessing(**prep, interpolation="bilinear"))
    assert bicubic.shape == bilinear.shape and not np.array_equal(bicubic, bilinear)


def test_only_regular_files_are_read(tmp_path):
    import os

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    big = tmp_path / "big.jpg"
    with open(big, "wb") as fh:  # sparse: large on paper, nothing written
        fh.truncate((64 << 20) + 1)
    images = [str(fifo), "/dev/zero", str(big), str(tmp_path)]
    pixels, present, failures = load_images(images, PREP)  # returns: nothing blocks
    assert not present.any()
    reasons = [reason for _, _, reason in failures]
    assert "not a regular file" in reasons[0] and "not a regular file" in reasons[1]
    assert "above the limit" in reasons[2] and "not a regular file" in reasons[3]
