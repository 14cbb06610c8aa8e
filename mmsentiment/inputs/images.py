"""Image decoding: each image decoded once into the encoder's input size.

Every image is decoded, oriented, converted to RGB, resized and centre-cropped once, in
parallel threads, with one policy for images that cannot be read.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from ..encoders.image import ImagePreprocessing
from .columns import MAX_ERRORS_SHOWN
from .remote import open_image_file

IMAGE_POLICIES = ("raise", "blank")
RESAMPLING = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
              "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
              "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}


class DecompressionBomb(ValueError):
    """An image with more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``."""


def check_pixel_limit(img: Image.Image) -> None:
    """Refuse images over PIL's pixel limit (PIL itself only warns up to twice the limit).

    Raises
    ------
    DecompressionBomb
        If ``img`` has more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``.
    """
    if img.width * img.height > (Image.MAX_IMAGE_PIXELS or math.inf):
        raise DecompressionBomb(
            f"{img.width}x{img.height} pixels is above the decompression-bomb limit "
            f"PIL.Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS}"
        )



def load_image(image, prep: ImagePreprocessing) -> np.ndarray:
    """Decode one image into a ``(3, size, size)`` uint8 array ready for the encoder.

    Accepts a path, a URL (``http(s)://`` or an installed fsspec protocol such as ``s3://``,
    read into memory by `mmsentiment.inputs.remote.read_url`) or a PIL image. EXIF
    orientation is applied; grayscale, palette, RGBA (composited on white), CMYK and 16-bit
    images become RGB; of an animated image the first frame is used. The shorter side is
    resized to ``prep.resize_to`` and the centre ``prep.size`` square is kept.

    Parameters
    ----------
    image : str, path-like or PIL.Image.Image
        The image: a local path, a URL or a PIL image.
    prep : ImagePreprocessing
        The encoder's preprocessing.

    Returns
    -------
    pixels : ndarray of shape (3, prep.size, prep.size), dtype uint8
        The RGB pixels.

    Raises
    ------
    OSError
        If the file is missing, truncated or not an image, or a URL cannot be read
        (`mmsentiment.inputs.remote.RemoteImageError`: an HTTP error, a refused connection,
        a timeout, more than `mmsentiment.paths.MAX_FILE_BYTES` bytes).
    ValueError
        If it is not a regular file (a FIFO, a device), is empty, or is larger than
        `mmsentiment.paths.MAX_FILE_BYTES`.
    DecompressionBomb
        If the image has more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (a
        ``ValueError``; above twice that limit PIL raises its own
        ``PIL.Image.DecompressionBombError``).
    """
    if isinstance(image, Image.Image):
        image.load()
        return _prepare(image, prep)
    with open_image_file(image) as fh, Image.open(fh) as img:
        check_pixel_limit(img)
        # JPEG draft mode decodes at a reduced scale directly: much faster for large photos.
        img.draft("RGB", (prep.resize_to, prep.resize_to))
        img.load()
        return _prepare(img, prep)


def _prepare(img: Image.Image, prep: ImagePreprocessing) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    elif "A" in img.getbands() or img.mode == "P":
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    img = _resize_shorter(img.convert("RGB"), prep.resize_to, prep.interpolation)
    left = (img.width - prep.size) // 2
    top = (img.height - prep.size) // 2
    img = img.crop((left, top, left + prep.size, top + prep.size))
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)


def _resize_shorter(img: Image.Image, side: int, interpolation: str = "bicubic") -> Image.Image:
    scale = side / min(img.size)
    size = (max(side, round(img.width * scale)), max(side, round(img.height * scale)))
    # timm's "random" (a training augmentation) and unknown names resample bicubically.
    resample = RESAMPLING.get(interpolation, Image.Resampling.BICUBIC)
    return img.resize(size, resample, reducing_gap=3.0)


def load_images(images: Sequence, prep: ImagePreprocessing, n_threads: int | None = None,
                progress: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, object, str]]]:
    """Decode all images in parallel threads; one unreadable image never stops the others.

    Parameters
    ----------
    images : sequence of str, path-like, PIL.Image.Image or None
        The images (paths, URLs or PIL images), ``None`` where an image is missing.
    prep : ImagePreprocessing
        The encoder's preprocessing.
    n_threads : int or None, default=None
        Decoding threads; ``None`` for the number of CPUs, at most 4.
    progress : bool, default=False
        Show a tqdm bar over the images.

    Returns
    -------
    pixels : torch.Tensor of shape (N, 3, size, size), dtype uint8
        Zeros where no image was read.
    present : torch.Tensor of shape (N,), dtype bool
        The rows whose image was read.
    failures : list of tuple (int, object, str)
        ``(row, image, reason)`` for each image that could not be read, by row.
    """
    pixels = torch.zeros((len(images), 3, prep.size, prep.size), dtype=torch.uint8)
    present = torch.zeros(len(images), dtype=torch.bool)
    failures: list[tuple[int, object, str]] = []

    def work(i: int) -> None:
        if images[i] is None:
            return
        try:
            pixels[i] = torch.from_numpy(load_image(images[i], prep))
            present[i] = True
        except Exception as exc:  # noqa: BLE001 - malformed files raise many types (EOFError,
            # struct.error, IndexError, ...); each is recorded with its reason, and the policy
            # (raise naming every row, or treat as missing) applies to all of them at once.
            failures.append((i, images[i], f"{type(exc).__name__}: {exc}"))

    threads = n_threads or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        done = pool.map(work, range(len(images)))
        list(tqdm(done, total=len(images), desc="Decoding images", unit="image",
                  disable=not progress or not any(i is not None for i in images)))
    failures.sort(key=lambda f: f[0])
    return pixels, present, failures


def handle_image_failures(failures: list[tuple[int, object, str]], policy: str) -> None:
    """Apply ``on_bad_image``: raise, or warn and go on without the unreadable images.

    Parameters
    ----------
    failures : list of tuple (int, object, str)
        ``(row, image, reason)`` for each image that could not be read.
    policy : {"raise", "blank"}
        The ``on_bad_image`` setting.

    Raises
    ------
    ValueError
        With ``policy="raise"``, if there are failures; the message counts them and names
        the first few.

    Warns
    -----
    UserWarning
        With ``policy="blank"``, if there are failures.

    Examples
    --------
    >>> handle_image_failures([], "raise")
    """
    if not failures:
        return
    shown = "; ".join(f"row {i} ({p}): {msg}" for i, p, msg in failures[:MAX_ERRORS_SHOWN])
    if policy == "raise":
        raise ValueError(
            f"{len(failures)} image(s) could not be read: {shown}. Fix or drop them, or pass "
            "on_bad_image='blank' to treat them as missing images."
        )
    warnings.warn(
        f"{len(failures)} image(s) could not be read and are treated as missing (policy "
        f"on_bad_image='blank'): {shown}", UserWarning, stacklevel=3,
    )
