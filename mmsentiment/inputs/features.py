"""Frozen-encoder features: each unique input encoded once, through the on-disk cache.

Shared by frozen fits of `mmsentiment.MultimodalSentimentClassifier` and by the
embedding transformers (`mmsentiment.TextEmbedder`, `mmsentiment.ImageEmbedder`).
Inputs found in the cache (`mmsentiment.inputs.cache`) are neither decoded nor encoded again;
the rest are, in batches, and are stored for the next fit, fold, candidate or process.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..encoders import ImageEncoder, TextEncoder
from ..hashing import image_key, text_key
from .cache import FeatureCache
from .images import handle_image_failures, load_images

# Defaults of the embedding transformers. On CPU, image batches beyond 32 ran slower per
# image (EfficientNet-Lite0 on MVSA dev, 2 cores: 16.6 s at 32, 21.0 s at 64).
TEXT_BATCH = 128
IMAGE_BATCH = 32


def _cache(root: Path | None, key: str | None, dim: int) -> FeatureCache | None:
    return FeatureCache(root, key, (dim,), "float32") if root is not None and key else None


def _lookup(cache: FeatureCache | None, keys) -> dict[str, np.ndarray]:
    if cache is None:
        return {}
    found = {k: cache.get(k) for k in keys}
    return {k: v for k, v in found.items() if v is not None}


def _store(cache: FeatureCache | None, found: dict, keys: list[str], values: np.ndarray
           ) -> None:
    for key, value in zip(keys, values):
        found[key] = value
        if cache is not None:
            cache.put(key, value)


def _assemble(n: int, dim: int, rows: dict[int, str | None], found: dict[str, np.ndarray]
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """One row per input: its vector where one was found for its key, else zeros."""
    features = torch.zeros(n, dim)
    present = torch.zeros(n, dtype=torch.bool)
    for i, k in rows.items():
        if k in found:
            features[i] = torch.from_numpy(found[k])
            present[i] = True
    return features, present


def text_features(encoder: TextEncoder, texts: list, root: Path | None = None,
                  cache_key: str | None = None, device: str = "cpu", progress: bool = False,
                  batch_size: int = TEXT_BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled text vectors, one row per text; ``None`` texts give zero rows.

    Parameters
    ----------
    encoder : TextEncoder
        The text encoder (in eval mode for repeatable vectors).
    texts : list of str or None
        The texts, ``None`` where a text is missing.
    root : pathlib.Path or None, default=None
        The cache folder, or ``None`` for no cache.
    cache_key : str or None, default=None
        The encoder's cache folder name (`TextEncoder.cache_key`).
    device : str, default="cpu"
        Where the encoder runs.
    progress : bool, default=False
        Show a tqdm bar over the batches still to encode.
    batch_size : int, default=128
        Inputs per forward pass.

    Returns
    -------
    features : torch.Tensor of shape (N, dim), dtype float32
        One vector per text, zeros where it is missing.
    present : torch.Tensor of shape (N,), dtype bool
        The rows that hold a vector.
    """
    rows = {i: text_key(t) for i, t in enumerate(texts) if t is not None}
    cache = _cache(root, cache_key, encoder.dim)
    first = {k: texts[i] for i, k in reversed(list(rows.items()))}
    found = _lookup(cache, first)
    # Similar lengths batched together: little padding.
    todo = sorted((k for k in first if k not in found), key=lambda k: len(first[k]))
    starts = range(0, len(todo), batch_size)
    for start in tqdm(starts, desc="Encoding texts", unit="batch", disable=not progress):
        keys = todo[start:start + batch_size]
        batch = encoder.tokenize([first[k] for k in keys])
        with torch.inference_mode():
            out = encoder(**{k: v.to(device) for k, v in batch.items()}).float().cpu()
        _store(cache, found, keys, out.numpy())
    return _assemble(len(texts), encoder.dim, rows, found)


def image_features(encoder: ImageEncoder, images: list, root: Path | None = None,
                   cache_key: str | None = None, device: str = "cpu",
                   on_bad_image: str = "raise", progress: bool = False,
                   batch_size: int = IMAGE_BATCH, n_threads: int | None = None,
                   first_row: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled image vectors, one row per image; missing images give zero rows.

    So do unreadable images with ``on_bad_image="blank"``.

    Parameters
    ----------
    encoder : ImageEncoder
        The image encoder (in eval mode).
    images : list of str, path-like, PIL.Image.Image or None
        The images (paths, URLs or PIL images), ``None`` where an image is missing.
    root, cache_key, device, progress, batch_size
        As for `text_features` (``cache_key`` from `ImageEncoder.cache_key`).
    on_bad_image : {"raise", "blank"}, default="raise"
        What unreadable images do (`mmsentiment.inputs.images.handle_image_failures`).
    n_threads : int or None, default=None
        Decoding threads (`mmsentiment.inputs.images.load_images`).
    first_row : int, default=0
        The row of ``images[0]`` in the caller's data, for messages.

    Returns
    -------
    features : torch.Tensor of shape (N, dim), dtype float32
        One vector per image, zeros where it is missing or unreadable.
    present : torch.Tensor of shape (N,), dtype bool
        The rows that hold a vector.

    Raises
    ------
    ValueError
        With ``on_bad_image="raise"``, if any image cannot be read.
    """
    # Content keys in threads: a URL is downloaded to be keyed (once more to be decoded
    # where the cache lacks it).
    given = [i for i, img in enumerate(images) if img is not None]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        rows = dict(zip(given, pool.map(image_key, [images[i] for i in given])))
    cache = _cache(root, cache_key, encoder.dim)
    first = {k: i for i, k in reversed(list(rows.items())) if k is not None}
    found = _lookup(cache, first)
    # Decode what the cache lacks: one row per unseen content, and unreadable files
    # (no content key) so that the decoder reports why.
    decode = sorted({i for k, i in first.items() if k not in found}
                    | {i for i, k in rows.items() if k is None})
    # Chunk by chunk, so that memory holds one chunk of decoded images. (Decoding the next
    # chunk in a thread while this one is encoded was no faster on 2 cores: the decoder's
    # threads and torch's compete for the same cores.)
    chunks = [decode[start:start + batch_size] for start in range(0, len(decode), batch_size)]
    failures: list[tuple[int, object, str]] = []
    for chunk in tqdm(chunks, desc="Encoding images", unit="batch", disable=not progress):
        pixels, ok, failed = load_images([images[i] for i in chunk], encoder.preprocessing,
                                         n_threads=n_threads)
        failures += [(chunk[j], p, msg) for j, p, msg in failed]
        # A file that could not be read for its content key but decoded later (it changed
        # in between) is reported rather than used without a key.
        failures += [(i, images[i], "the file changed while it was being read")
                     for j, i in enumerate(chunk) if ok[j] and rows[i] is None]
        good = [j for j in range(len(chunk)) if ok[j] and rows[chunk[j]] is not None]
        if not good:
            continue
        with torch.inference_mode():
            out = encoder(pixels[good].to(device)).float().cpu()
        _store(cache, found, [rows[chunk[j]] for j in good], out.numpy())
    handle_image_failures(sorted((first_row + i, p, msg) for i, p, msg in failures),
                          on_bad_image)
    return _assemble(len(images), encoder.dim, rows, found)
