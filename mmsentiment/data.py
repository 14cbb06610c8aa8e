"""From user input to tensors: column extraction, image decoding, datasets and batching.

The data path of a fit is ``X -> (texts, images) -> decoded uint8 crops -> PostDataset ->
batches``. Every image is decoded, oriented, converted to RGB, resized and centre-cropped once
per fit (in parallel threads); batches are tokenized with padding to the longest text of the
batch, never to a fixed length.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps

from .encoders.image import ImagePreprocessing
from .encoders.text import tokenize

MAX_ERRORS_SHOWN = 5


def extract_columns(X, text_column: str, image_column: str) -> tuple[list[str], list]:
    """Split ``X`` into a list of texts and a list of images (paths or PIL images).

    ``X`` is a DataFrame holding ``text_column`` and ``image_column``, or a 2-column
    array/list whose first column is the text and second the image.

    >>> extract_columns([["so happy", "a.jpg"]], "text", "image_path")
    (['so happy'], ['a.jpg'])
    """
    if isinstance(X, pd.DataFrame):
        missing = [c for c in (text_column, image_column) if c not in X.columns]
        if missing:
            raise ValueError(
                f"X lacks the column(s) {missing}; it has {list(X.columns)}. Rename them or "
                "set text_column= / image_column= on the classifier."
            )
        texts, images = X[text_column].tolist(), X[image_column].tolist()
    else:
        arr = np.asarray(X, dtype=object)
        if arr.ndim != 2 or arr.shape[1] != 2:
            n_features = arr.shape[1] if arr.ndim == 2 else "no"
            raise ValueError(
                f"X has {n_features} feature(s) (columns) but 2 are required: the text and the "
                f"image of each post (a DataFrame or a 2-column array; got shape {arr.shape})."
            )
        texts, images = arr[:, 0].tolist(), arr[:, 1].tolist()
    _check_texts(texts)
    return texts, images


def _check_texts(texts: list) -> None:
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        shown = ", ".join(f"row {i}: {texts[i]!r}" for i in bad[:MAX_ERRORS_SHOWN])
        raise ValueError(f"{len(bad)} text(s) are not strings ({shown}).")


def load_image(image, prep: ImagePreprocessing) -> np.ndarray:
    """Decode one image into a ``(3, size, size)`` uint8 array ready for the encoder.

    Accepts a path or a PIL image. EXIF orientation is applied, every mode (grayscale, palette,
    RGBA, CMYK, 16-bit) becomes RGB, the shorter side is resized to ``prep.resize_to`` and the
    centre ``prep.size`` square is kept.
    """
    if isinstance(image, Image.Image):
        img = image
        img.load()
    else:
        img = Image.open(os.fspath(image))
        # JPEG draft mode decodes at a reduced scale directly: much faster for large photos.
        img.draft("RGB", (prep.resize_to, prep.resize_to))
        img.load()
    img = ImageOps.exif_transpose(img)
    if img.mode not in ("RGB", "L"):
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            img = img.point(lambda v: v / 256).convert("L")
        elif "A" in img.getbands() or img.mode == "P":
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
    img = img.convert("RGB")
    img = _resize_shorter(img, prep.resize_to)
    left = (img.width - prep.size) // 2
    top = (img.height - prep.size) // 2
    img = img.crop((left, top, left + prep.size, top + prep.size))
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)


def _resize_shorter(img: Image.Image, side: int) -> Image.Image:
    scale = side / min(img.size)
    size = (max(side, round(img.width * scale)), max(side, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def load_images(images: Sequence, prep: ImagePreprocessing, n_threads: int | None = None
                ) -> torch.Tensor:
    """Decode all images (in parallel threads) into one ``(N, 3, size, size)`` uint8 tensor.

    Raises:
        ValueError: naming every row whose image cannot be read, and why.
    """
    out = torch.empty((len(images), 3, prep.size, prep.size), dtype=torch.uint8)
    errors: list[tuple[int, object, str]] = []

    def work(i: int) -> None:
        try:
            out[i] = torch.from_numpy(load_image(images[i], prep))
        except (OSError, ValueError, TypeError, Image.DecompressionBombError) as exc:
            errors.append((i, images[i], f"{type(exc).__name__}: {exc}"))

    threads = n_threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, range(len(images))))
    if errors:
        errors.sort(key=lambda e: e[0])
        shown = "; ".join(f"row {i} ({p}): {msg}" for i, p, msg in errors[:MAX_ERRORS_SHOWN])
        raise ValueError(f"{len(errors)} image(s) could not be read: {shown}")
    return out


class PostDataset(torch.utils.data.Dataset):
    """Posts as (inputs, label) pairs for skorch: raw (text, pixels) or precomputed features.

    Args:
        y: integer labels, or ``None`` at prediction time (zeros are returned then).
        texts: the texts (raw mode).
        pixels: ``(N, 3, S, S)`` uint8 images (raw mode).
        text_features: ``(N, D)`` precomputed text vectors (feature mode).
        image_features: ``(N, D)`` precomputed image vectors (feature mode).
    """

    def __init__(self, y: np.ndarray | None = None, *, texts: list[str] | None = None,
                 pixels: torch.Tensor | None = None, text_features: torch.Tensor | None = None,
                 image_features: torch.Tensor | None = None) -> None:
        self.texts, self.pixels = texts, pixels
        self.text_features, self.image_features = text_features, image_features
        n = len(texts) if texts is not None else len(text_features)
        self.y = torch.zeros(n, dtype=torch.long) if y is None else torch.as_tensor(y)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        if self.text_features is not None:
            return {"text_features": self.text_features[i],
                    "image_features": self.image_features[i]}, self.y[i]
        return {"text": self.texts[i], "pixels": self.pixels[i]}, self.y[i]

    def subset(self, index: np.ndarray) -> PostDataset:
        """A new dataset holding only the rows in ``index``."""
        idx = torch.as_tensor(index, dtype=torch.long)
        if self.text_features is not None:
            return PostDataset(self.y[idx], text_features=self.text_features[idx],
                               image_features=self.image_features[idx])
        return PostDataset(self.y[idx], texts=[self.texts[i] for i in index],
                           pixels=self.pixels[idx])


class Collate:
    """Batch raw posts: tokenize with dynamic padding, stack pixels, optionally flip images.

    Args:
        tokenizer: the text encoder's Hugging Face tokenizer.
        max_length: truncation length of the text encoder.
        flip: randomly flip images horizontally (training augmentation).
    """

    def __init__(self, tokenizer, max_length: int, flip: bool = False) -> None:
        self.tokenizer, self.max_length, self.flip = tokenizer, max_length, flip

    def __call__(self, batch):
        inputs, ys = zip(*batch)
        y = torch.stack(ys)
        if "text_features" in inputs[0]:
            return {k: torch.stack([x[k] for x in inputs]) for k in inputs[0]}, y
        X = tokenize(self.tokenizer, self.max_length, [x["text"] for x in inputs])
        pixels = torch.stack([x["pixels"] for x in inputs])
        if self.flip:
            flip = torch.rand(len(pixels)) < 0.5
            pixels[flip] = pixels[flip].flip(-1)
        X["pixels"] = pixels
        return X, y
