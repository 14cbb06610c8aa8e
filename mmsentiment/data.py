"""From user input to tensors: column extraction, image decoding, datasets and batching.

The data path of a fit is ``X -> (texts, images) -> decoded uint8 crops -> PostDataset ->
batches``. Every image is decoded, oriented, converted to RGB, resized and centre-cropped once
per fit (in parallel threads); batches are tokenized with padding to the longest text of the
batch, never to a fixed length.

Missing values are first-class: a text that is None, NaN or blank and an image that is None,
NaN or ``""`` mark that modality as absent for the row (see ``docs/guide/bad-input.md``).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .encoders.image import ImagePreprocessing
from .encoders.text import tokenize

MAX_ERRORS_SHOWN = 5
IMAGE_POLICIES = ("raise", "blank")


def is_missing(value) -> bool:
    """True for None, NaN and pandas' missing markers.

    >>> is_missing(None), is_missing(float("nan")), is_missing(pd.NA), is_missing("x")
    (True, True, True, False)
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _rows(items: list[tuple[int, object]]) -> str:
    return ", ".join(f"row {i}: {v!r}" for i, v in items[:MAX_ERRORS_SHOWN])


def raw_columns(X, text_column: str, image_column: str) -> tuple[list, list]:
    """The text and image columns of ``X`` as lists, values untouched.

    Raises:
        ValueError: for a DataFrame without the columns, or an array without 2 columns.
    """
    if isinstance(X, pd.DataFrame):
        missing = [c for c in (text_column, image_column) if c not in X.columns]
        if missing:
            raise ValueError(
                f"X lacks the column(s) {missing}; it has {list(X.columns)}. Rename them or "
                "set text_column= / image_column= on the classifier."
            )
        return X[text_column].tolist(), X[image_column].tolist()
    arr = np.asarray(X, dtype=object)
    if arr.ndim != 2 or arr.shape[1] != 2:
        n_features = arr.shape[1] if arr.ndim == 2 else "no"
        raise ValueError(
            f"X has {n_features} feature(s) (columns) but 2 are required: the text and the "
            f"image of each post (a DataFrame or a 2-column array; got shape {arr.shape})."
        )
    return arr[:, 0].tolist(), arr[:, 1].tolist()


def extract_columns(X, text_column: str, image_column: str) -> tuple[list, list]:
    """Split ``X`` into texts and images, with ``None`` where a modality is missing.

    ``X`` is a DataFrame holding ``text_column`` and ``image_column``, or a 2-column
    array/list whose first column is the text and second the image. Texts that are None,
    NaN, empty or whitespace become ``None``; so do images that are None, NaN or ``""``.

    Raises:
        ValueError: for missing columns, a wrong column count, texts that are neither strings
            nor missing, or images that are neither paths, PIL images nor missing.

    >>> extract_columns([["so happy", "a.jpg"], ["  ", None]], "text", "image_path")
    (['so happy', None], ['a.jpg', None])
    """
    texts, images = raw_columns(X, text_column, image_column)
    return _clean_texts(texts), _clean_images(images)


def is_missing_image(value) -> bool:
    """True for an image value that marks a missing image: None, NaN or a blank string."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


class DecompressionBomb(ValueError):
    """An image with more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``."""


def check_pixel_limit(img: Image.Image) -> None:
    """Refuse images over PIL's pixel limit (PIL itself only warns up to twice the limit)."""
    if img.width * img.height > (Image.MAX_IMAGE_PIXELS or math.inf):
        raise DecompressionBomb(
            f"{img.width}x{img.height} pixels is above the decompression-bomb limit "
            f"PIL.Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS}"
        )


def _clean_texts(texts: list) -> list:
    bad = [(i, t) for i, t in enumerate(texts) if not (isinstance(t, str) or is_missing(t))]
    if bad:
        raise ValueError(
            f"{len(bad)} text(s) are neither strings nor missing values ({_rows(bad)}); "
            "convert the column to str, or use None/NaN for a missing text."
        )
    return [None if is_missing(t) or not t.strip() else t for t in texts]


def _clean_images(images: list) -> list:
    ok = (str, os.PathLike, Image.Image)
    bad = [(i, v) for i, v in enumerate(images) if not (isinstance(v, ok) or is_missing(v))]
    if bad:
        raise ValueError(
            f"{len(bad)} image(s) are neither paths, PIL images nor missing values "
            f"({_rows(bad)})."
        )
    return [None if is_missing_image(v) else v for v in images]


def load_image(image, prep: ImagePreprocessing) -> np.ndarray:
    """Decode one image into a ``(3, size, size)`` uint8 array ready for the encoder.

    Accepts a path or a PIL image. EXIF orientation is applied; grayscale, palette, RGBA
    (composited on white), CMYK and 16-bit images become RGB; of an animated image the first
    frame is used. The shorter side is resized to ``prep.resize_to`` and the centre
    ``prep.size`` square is kept.

    Raises:
        OSError, ValueError: when the file is missing, empty, truncated or not an image, or
            has more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (a decompression bomb).
    """
    if isinstance(image, Image.Image):
        image.load()
        return _prepare(image, prep)
    with Image.open(os.fspath(image)) as img:
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
    img = _resize_shorter(img.convert("RGB"), prep.resize_to)
    left = (img.width - prep.size) // 2
    top = (img.height - prep.size) // 2
    img = img.crop((left, top, left + prep.size, top + prep.size))
    return np.array(img, dtype=np.uint8).transpose(2, 0, 1)


def _resize_shorter(img: Image.Image, side: int) -> Image.Image:
    scale = side / min(img.size)
    size = (max(side, round(img.width * scale)), max(side, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def load_images(images: Sequence, prep: ImagePreprocessing, n_threads: int | None = None,
                progress: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, object, str]]]:
    """Decode all images in parallel threads; one unreadable image never stops the others.

    ``progress=True`` shows a tqdm bar over the images.

    Returns:
        ``pixels``, a ``(N, 3, size, size)`` uint8 tensor (zeros where no image was read);
        ``present``, a boolean tensor marking the rows whose image was read; and
        ``failures``, a ``(row, image, reason)`` list of the images that could not be read.
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
    """Apply ``on_bad_image``: raise naming every bad row, or warn and go on without them.

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


class PostDataset(torch.utils.data.Dataset):
    """Posts for skorch: raw (text, pixels) or precomputed features, read a batch at a time.

    A subset is a view: it shares the tensors of the dataset it came from and only holds
    its row numbers, so the split into training and validation rows copies no image.
    :meth:`batch` gathers a whole batch with one indexing operation per tensor, so the hot
    loop does no per-post Python work (:func:`batch_loader`).

    Args:
        y: integer labels, or ``None`` at prediction time (zeros are returned then).
        texts: the texts, ``None`` where missing (raw mode).
        pixels: ``(N, 3, S, S)`` uint8 images (raw mode).
        image_present: which rows have an image (default: all).
        text_features: ``(N, D)`` precomputed text vectors (feature mode).
        image_features: ``(N, D)`` precomputed image vectors (feature mode).
        text_present: which rows have a text (feature mode; derived from ``texts`` otherwise).
        image_lower: ``(N, 2, C, H, W)`` outputs of the image encoder's frozen lower part, for
            each image and its mirror image (partial fine-tuning; replaces ``pixels``).
        text_label, image_label: per-modality integer labels (-1 where unknown), passed to
            the model as inputs of the same names (auxiliary targets).
    """

    def __init__(self, y=None, *, texts: list | None = None, pixels: torch.Tensor | None = None,
                 image_present: torch.Tensor | None = None,
                 text_features: torch.Tensor | None = None,
                 image_features: torch.Tensor | None = None,
                 text_present: torch.Tensor | None = None,
                 image_lower: torch.Tensor | None = None,
                 text_label: torch.Tensor | None = None,
                 image_label: torch.Tensor | None = None) -> None:
        if texts is not None:
            text_present = torch.tensor([t is not None for t in texts], dtype=torch.bool)
            texts = np.array(["" if t is None else t for t in texts], dtype=object)
        n = len(text_present)
        self.columns = {
            "texts": texts, "pixels": pixels, "image_lower": image_lower,
            "text_features": text_features, "image_features": image_features,
            "text_present": text_present, "text_label": text_label, "image_label": image_label,
            "image_present": (torch.ones(n, dtype=torch.bool) if image_present is None
                              else image_present),
            "y": torch.zeros(n, dtype=torch.long) if y is None else torch.as_tensor(y),
        }
        self.rows = torch.arange(n)

    def __len__(self) -> int:
        return len(self.rows)

    def __getattr__(self, name: str):
        # The columns of this view's rows, e.g. ``dataset.pixels`` (a copy for a subset).
        columns = self.__dict__.get("columns", {})
        if name not in columns:
            raise AttributeError(name)
        value = columns[name]
        return None if value is None else value[self.rows.numpy() if name == "texts"
                                                else self.rows]

    def subset(self, index) -> PostDataset:
        """A view of the rows in ``index`` (positions within this dataset)."""
        view = object.__new__(PostDataset)
        view.columns = self.columns
        view.rows = self.rows[torch.as_tensor(index, dtype=torch.long)]
        return view

    def batch(self, index) -> tuple[dict, torch.Tensor]:
        """The inputs and labels of the rows at positions ``index``, gathered at once."""
        rows = self.rows[torch.as_tensor(index, dtype=torch.long)]
        c = self.columns
        inputs = {"text_present": c["text_present"][rows],
                  "image_present": c["image_present"][rows]}
        if c["text_features"] is not None:
            inputs.update(text_features=c["text_features"][rows],
                          image_features=c["image_features"][rows])
        else:
            inputs["text"] = c["texts"][rows.numpy()].tolist()
            key = "image_lower" if c["image_lower"] is not None else "pixels"
            inputs[key] = c[key][rows]
        if c["text_label"] is not None:
            inputs.update(text_label=c["text_label"][rows], image_label=c["image_label"][rows])
        return inputs, c["y"][rows]

    def __getitem__(self, i: int):
        inputs, y = self.batch([i])
        return {k: v[0] for k, v in inputs.items()}, y[0]


class _Gather:
    """The collate function of `batch_loader`: positions in, one gathered batch out."""

    def __init__(self, dataset: PostDataset, collate_fn=None) -> None:
        self.dataset, self.collate_fn = dataset, collate_fn

    def __call__(self, positions: list[int]):
        batch = self.dataset.batch(positions)
        return self.collate_fn(batch) if self.collate_fn is not None else batch


def batch_loader(dataset: PostDataset, batch_size: int, shuffle: bool = False,
                 collate_fn=None) -> DataLoader:
    """A skorch iterator over a :class:`PostDataset` that gathers whole batches at once.

    It is a plain ``torch.utils.data.DataLoader`` over the row positions (``range(n)``):
    its sampler draws the positions of a batch, and its collate function gathers that
    whole batch from the dataset's columns with one index operation per column, so the hot
    loop does no per-post work beyond listing positions. Being a real ``DataLoader`` with
    a standard batch sampler, accelerate can shard it across processes.

    Args:
        dataset: the posts.
        batch_size: posts per batch.
        shuffle: draw a new order every epoch (seeded from torch's global generator).
        collate_fn: turns ``(inputs, y)`` of a batch into model input (:class:`Collate`).

    Examples:
        >>> loader = batch_loader(PostDataset([0, 1, 0], texts=["a", "b", None],
        ...                       pixels=torch.zeros(3, 3, 2, 2, dtype=torch.uint8)), 2)
        >>> [len(y) for _, y in loader]
        [2, 1]
    """
    return DataLoader(range(len(dataset)), batch_size=batch_size, shuffle=shuffle,
                      collate_fn=_Gather(dataset, collate_fn))


class Collate:
    """Finish a gathered batch: tokenize with dynamic padding, optionally flip images.

    Args:
        tokenizer: the text encoder's Hugging Face tokenizer.
        max_length: truncation length of the text encoder.
        flip: randomly flip images horizontally (training augmentation).
    """

    def __init__(self, tokenizer, max_length: int, flip: bool = False) -> None:
        self.tokenizer, self.max_length, self.flip = tokenizer, max_length, flip

    def __call__(self, batch: tuple[dict, torch.Tensor]):
        inputs, y = batch
        inputs = dict(inputs)
        if "text" not in inputs:
            return inputs, y
        inputs.update(tokenize(self.tokenizer, self.max_length, inputs.pop("text")))
        if "image_lower" in inputs:
            # Precomputed lower-layer outputs of the image and of its mirror image.
            variant = (torch.rand(len(y)) < 0.5).long() if self.flip else \
                torch.zeros(len(y), dtype=torch.long)
            inputs["image_lower"] = inputs["image_lower"][torch.arange(len(y)), variant]
        elif self.flip:
            flip = torch.rand(len(y)) < 0.5
            inputs["pixels"][flip] = inputs["pixels"][flip].flip(-1)
        return inputs, y
