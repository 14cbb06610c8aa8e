"""Input pipelines: from texts and images to a `PostDataset`, chosen once per fit.

Which work a fit can do once depends on what trains (`mmsentiment.nn.Finetune`):

- `RawImages`: both encoders train, so every batch runs them whole. Images are decoded
  once into uint8 crops; texts are tokenized batch by batch.
- `LowerActivations`: only the image encoder's top layer group trains, so the part below
  it runs once per fit, on each image and its mirror image (the flip augmentation), and
  its activations are kept in float16. Prediction decodes raw images.
- `PooledFeatures`: no encoder trains, so each encoder's pooled output is computed once
  per unique input and kept in the on-disk cache (`mmsentiment.inputs.cache`).

Every pipeline is built by `make_pipeline` and answers `train_dataset` and
`predict_dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from tqdm.auto import tqdm

from ..memory import large_blocks_reused, release_free_memory
from ..nn import Finetune
from ..precision import resolve_precision
from .cache import resolve_cache_dir
from .dataset import PostDataset
from .features import image_features, text_features
from .images import handle_image_failures, load_images

LOWER_BATCH = 64
LOWER_CHUNK = 512
# Posts per prediction chunk: a chunk's decoded images (224 px) take about 77 MB.
PREDICT_CHUNK = 512


def decoding_threads(n_jobs: int | None) -> int | None:
    """Image decoding threads for an ``n_jobs`` setting, as scikit-learn reads ``n_jobs``.

    Parameters
    ----------
    n_jobs : int or None
        ``None``: the default of `load_images` (the CPUs, at most 4); a positive count; or
        a negative one, counted back from the CPUs (-1: all of them, -2: all but one).

    Returns
    -------
    int or None

    Examples
    --------
    >>> decoding_threads(None), decoding_threads(3)
    (None, 3)
    >>> decoding_threads(-1) == (os.cpu_count() or 1)
    True
    """
    if n_jobs is None or n_jobs > 0:
        return n_jobs
    return max(1, (os.cpu_count() or 1) + 1 + n_jobs)


class RawImages:
    """Texts as strings and images decoded once into uint8 crops.

    Parameters
    ----------
    on_bad_image : {"raise", "blank"}
        Policy for images that cannot be read (`handle_image_failures`).
    progress : bool, default=False
        Show tqdm bars.
    precision : {"auto", "32", "bf16", "fp16"}, default="32"
        Arithmetic of the passes that run once per fit (`LowerActivations`).
    n_jobs : int or None, default=None
        Image decoding threads (`decoding_threads`).
    """

    def __init__(self, on_bad_image: str, progress: bool = False,
                 precision: str = "32", n_jobs: int | None = None) -> None:
        self.on_bad_image = on_bad_image
        self.progress = progress
        self.precision = precision
        self.n_jobs = n_jobs

    def train_dataset(self, texts: list, images: list, module, y, device: str,
                      columns: dict | None = None) -> PostDataset:
        """The training posts (``columns``: further per-post columns, such as auxiliary
        labels or sample weights)."""
        return self._raw(texts, images, module, y, columns)

    def predict_dataset(self, texts: list, images: list, module, device: str,
                        first_row: int = 0) -> PostDataset:
        """The posts to predict (``first_row``: the first post's row in the caller's data,
        for messages about unreadable images)."""
        return self._raw(texts, images, module, first_row=first_row)

    def _raw(self, texts, images, module, y=None, columns=None, first_row=0) -> PostDataset:
        pixels, present, failures = load_images(images, module.image_encoder.preprocessing,
                                                n_threads=decoding_threads(self.n_jobs),
                                                progress=self.progress)
        release_free_memory()  # the decoder threads' scratch memory
        handle_image_failures([(first_row + i, image, reason) for i, image, reason in failures],
                              self.on_bad_image)
        return _posts(texts, {"pixels": pixels, "image_present": present, **(columns or {})}, y)


def _posts(texts: list, columns: dict, y=None) -> PostDataset:
    """A `PostDataset` of ``texts`` (``None``: missing) and the image ``columns``."""
    return PostDataset({"text": ["" if t is None else t for t in texts],
                        "text_present": torch.tensor([t is not None for t in texts],
                                                     dtype=torch.bool), **columns}, y=y)


class LowerActivations(RawImages):
    """`RawImages`, with the image encoder's frozen lower part run once per fit.

    The activations below the image encoder's top layer group
    (`ImageEncoder.lower`) are stored for each image and its mirror image, in float16,
    in place of the pixels; `Collate` picks one of the two per post and epoch.
    """

    def train_dataset(self, texts: list, images: list, module, y, device: str,
                      columns: dict | None = None) -> PostDataset:
        # Decoded and run LOWER_CHUNK images at a time: memory never holds every image's
        # pixels (150 KB each at 224 px), only the float16 activations (37 KB per image
        # and its mirror for EfficientNet-Lite0).
        encoder = module.image_encoder.to(device).eval()
        autocast = resolve_precision(self.precision, device).autocast(torch.device(device).type)
        lower, present, failures = None, torch.zeros(len(images), dtype=torch.bool), []
        chunks = range(0, len(images), LOWER_CHUNK)
        for start in tqdm(chunks, desc="Lower image layers", unit="chunk",
                          disable=not self.progress):
            pixels, ok, failed = load_images(images[start:start + LOWER_CHUNK],
                                             encoder.preprocessing,
                                             n_threads=decoding_threads(self.n_jobs))
            failures += [(start + i, image, reason) for i, image, reason in failed]
            present[start:start + len(ok)] = ok
            # batches of 64: feature maps of 80-160 MB at 224 px, kept for reuse
            with torch.inference_mode(), autocast, large_blocks_reused():
                for first in range(0, len(pixels), LOWER_BATCH):
                    chunk = pixels[first:first + LOWER_BATCH].to(device)
                    both = torch.stack([encoder.lower(chunk), encoder.lower(chunk.flip(-1))],
                                       dim=1)
                    if lower is None:  # filled in place: no copy from concatenating parts
                        lower = torch.empty((len(images), *both.shape[1:]),
                                            dtype=torch.float16)
                    lower[start + first:start + first + len(both)] = both.half().cpu()
        release_free_memory()  # the decoder threads' scratch memory
        handle_image_failures(failures, self.on_bad_image)
        return _posts(texts, {"image_lower": lower, "image_present": present,
                              **(columns or {})}, y)


class PooledFeatures:
    """Each encoder's pooled output, computed once per unique input through the cache.

    Parameters
    ----------
    on_bad_image : {"raise", "blank"}
        Policy for images that cannot be read.
    cache_dir : "auto", str, Path or None
        The feature cache (`mmsentiment.inputs.cache.resolve_cache_dir`).
    batch_size : int
        Inputs per encoder forward pass.
    progress : bool, default=False
        Show tqdm bars.
    n_jobs : int or None, default=None
        Image decoding threads (`decoding_threads`).
    """

    def __init__(self, on_bad_image: str, cache_dir, batch_size: int,
                 progress: bool = False, n_jobs: int | None = None) -> None:
        self.on_bad_image = on_bad_image
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.progress = progress
        self.n_jobs = n_jobs
        self._keys: tuple[str, str] | None = None

    def train_dataset(self, texts: list, images: list, module, y, device: str,
                      columns: dict | None = None) -> PostDataset:
        """The training posts as cached vectors, with any further ``columns``."""
        dataset = self._features(texts, images, module, device, y)
        return dataset.with_columns(**columns) if columns else dataset

    def predict_dataset(self, texts: list, images: list, module, device: str,
                        first_row: int = 0) -> PostDataset:
        """The posts to predict, as cached vectors (``first_row`` as for `RawImages`)."""
        return self._features(texts, images, module, device, first_row=first_row)

    def _features(self, texts, images, module, device, y=None, first_row=0) -> PostDataset:
        root = resolve_cache_dir(self.cache_dir)
        module.to(device).eval()
        text_enc, image_enc = module.text_encoder, module.image_encoder
        if self._keys is None and root is not None:
            # Frozen weights never change: fingerprint them once per pipeline.
            self._keys = (text_enc.cache_key(), image_enc.cache_key())
        keys = self._keys or (None, None)
        text_vecs, text_present = text_features(text_enc, texts, root, keys[0], device,
                                                progress=self.progress,
                                                batch_size=self.batch_size)
        image_vecs, image_present = image_features(image_enc, images, root, keys[1], device,
                                                   self.on_bad_image, progress=self.progress,
                                                   batch_size=self.batch_size,
                                                   n_threads=decoding_threads(self.n_jobs),
                                                   first_row=first_row)
        return PostDataset({"text_features": text_vecs, "image_features": image_vecs,
                            "text_present": text_present, "image_present": image_present},
                           y=y)


def predict_chunks(pipeline, texts: list, images: list, module, device: str
                   ) -> Iterator[PostDataset]:
    """The posts to predict, `PREDICT_CHUNK` at a time, each chunk as ``pipeline``'s
    `predict_dataset` (unreadable images named by their row in ``texts``): memory holds one
    chunk's decoded images, whatever the number of posts.

    Examples
    --------
    >>> class Echo:
    ...     def predict_dataset(self, texts, images, module, device, first_row):
    ...         return first_row, len(texts)
    >>> list(predict_chunks(Echo(), ["t"] * 1030, [None] * 1030, None, "cpu"))
    [(0, 512), (512, 512), (1024, 6)]
    """
    for start in range(0, len(texts), PREDICT_CHUNK):
        end = start + PREDICT_CHUNK
        yield pipeline.predict_dataset(texts[start:end], images[start:end], module, device,
                                       start)


def make_pipeline(finetune: Finetune, module, *, on_bad_image: str, cache_dir, batch_size: int,
                  progress: bool = False, precision: str = "32", n_jobs: int | None = None
                  ) -> RawImages | LowerActivations | PooledFeatures:
    """The pipeline for what ``finetune`` trains in ``module``.

    Parameters
    ----------
    finetune : Finetune
        What trains.
    module : MultimodalNet
        The network (its image encoder says whether it can be split).
    on_bad_image : {"raise", "blank"}
        Policy for unreadable images.
    cache_dir : "auto", str, Path or None
        The feature cache (used when no encoder trains).
    batch_size : int
        Inputs per encoder pass (cached features).
    progress : bool, default=False
        Show tqdm bars.
    precision : {"auto", "32", "bf16", "fp16"}, default="32"
        Arithmetic of the once-per-fit lower image pass (`LowerActivations`).
    n_jobs : int or None, default=None
        Image decoding threads (`decoding_threads`).

    Returns
    -------
    RawImages, LowerActivations or PooledFeatures
    """
    if not finetune.trains_encoders:
        return PooledFeatures(on_bad_image, cache_dir, batch_size, progress, n_jobs)
    groups = finetune.image_groups
    if groups is not None and module.image_encoder.splits_at_top_group(groups):
        return LowerActivations(on_bad_image, progress, precision, n_jobs)
    return RawImages(on_bad_image, progress, precision, n_jobs)
