"""From user input to two cleaned columns: texts and images, ``None`` where missing.

Missing values are first-class: a text that is None, NaN or blank and an image that is None,
NaN or ``""`` mark that modality as absent for the row (see ``docs/guide/bad-input.md``).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import torch
from PIL import Image

from .tweets import normalize_texts

MAX_ERRORS_SHOWN = 5


def is_missing(value) -> bool:
    """True for None, NaN and pandas' missing markers.

    Examples
    --------
    >>> is_missing(None), is_missing(float("nan")), is_missing(pd.NA), is_missing("x")
    (True, True, True, False)
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def rows_text(items: list[tuple[int, object]]) -> str:
    """The first few ``(row, value)`` pairs for an error message: ``row 3: 'x', ...``."""
    return ", ".join(f"row {i}: {v!r}" for i, v in items[:MAX_ERRORS_SHOWN])


def raw_columns(X, text_column: str, image_column: str) -> tuple[list, list]:
    """The text and image columns of ``X`` as lists, values untouched.

    Parameters
    ----------
    X, text_column, image_column
        As for `extract_columns`.

    Returns
    -------
    texts : list
        The text column.
    images : list
        The image column.

    Raises
    ------
    ValueError
        For a DataFrame without the columns, or an array without 2 columns.
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


def extract_columns(X, text_column: str, image_column: str,
                    text_normalization: str | None = None) -> tuple[list, list]:
    """Split ``X`` into texts and images, with ``None`` where a modality is missing.

    Texts that are None, NaN, empty or whitespace become ``None``; so do images that are
    None, NaN or blank strings.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, 2)
        A DataFrame holding ``text_column`` and ``image_column``, or a 2-column array or
        list whose first column is the text and second the image.
    text_column : str
        Name of the text column (DataFrame input).
    image_column : str
        Name of the image column (DataFrame input).
    text_normalization : {"tweet", None}, default=None
        A rewrite of each present text (`mmsentiment.inputs.tweets.normalize_texts`).

    Returns
    -------
    texts : list of str or None
        The cleaned (and normalised) texts.
    images : list of str, path-like, PIL.Image.Image or None
        The cleaned images.

    Raises
    ------
    ValueError
        For missing columns, a wrong column count, texts that are neither strings nor
        missing, or images that are neither paths, PIL images nor missing.

    Examples
    --------
    >>> extract_columns([["so happy", "a.jpg"], ["  ", None]], "text", "image_path")
    (['so happy', None], ['a.jpg', None])
    """
    texts, images = raw_columns(X, text_column, image_column)
    return normalize_texts(clean_texts(texts), text_normalization), clean_images(images)


def is_missing_image(value) -> bool:
    """True for an image value that marks a missing image: None, NaN or a blank string."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def is_encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogates), as every tokenizer needs.

    Examples
    --------
    >>> is_encodable("fine"), is_encodable("broken " + chr(0xD83D))
    (True, False)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_texts(texts: list) -> list:
    """The texts, with ``None`` for each that is None, NaN, empty or whitespace.

    Raises
    ------
    ValueError
        If a text is neither a string nor missing, or is not valid Unicode (a lone
        surrogate); the message names the first few rows.
    """
    bad = [(i, t) for i, t in enumerate(texts) if not (isinstance(t, str) or is_missing(t))]
    if bad:
        raise ValueError(
            f"{len(bad)} text(s) are neither strings nor missing values ({rows_text(bad)}); "
            "convert the column to str, or use None/NaN for a missing text."
        )
    broken = [(i, t) for i, t in enumerate(texts) if isinstance(t, str) and not is_encodable(t)]
    if broken:
        raise ValueError(
            f"{len(broken)} text(s) are not valid Unicode (a lone surrogate, often left by a "
            f"broken decode): {rows_text(broken)}. Repair them, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8')."
        )
    return [None if is_missing(t) or not t.strip() else t for t in texts]


def clean_images(images: list) -> list:
    """The images, with ``None`` for each that is None, NaN or a blank string.

    Raises
    ------
    ValueError
        If an image is neither a path, a PIL image nor missing; the message names the
        first few.
    """
    ok = (str, os.PathLike, Image.Image)
    bad = [(i, v) for i, v in enumerate(images) if not (isinstance(v, ok) or is_missing(v))]
    if bad:
        raise ValueError(
            f"{len(bad)} image(s) are neither paths, PIL images nor missing values "
            f"({rows_text(bad)})."
        )
    return [None if is_missing_image(v) else v for v in images]



def label_indices(labels, classes: np.ndarray, n: int, name: str) -> np.ndarray:
    """Labels as indices into ``classes``, -1 where a label is missing (or ``labels`` is None).

    Parameters
    ----------
    labels : array-like or None
        One label per row, None or NaN where unknown.
    classes : ndarray
        The known classes.
    n : int
        Expected number of rows.
    name : str
        The argument's name, for error messages.

    Returns
    -------
    ndarray of int64

    Raises
    ------
    ValueError
        For a wrong length, or labels that are not among ``classes``.

    Examples
    --------
    >>> label_indices(["pos", None, "neg"], np.array(["neg", "pos"]), 3, "labels").tolist()
    [1, -1, 0]
    """
    if labels is None:
        return np.full(n, -1, dtype=np.int64)
    index = {label: i for i, label in enumerate(classes.tolist())}
    values = list(np.asarray(labels, dtype=object).ravel())
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries; X has {n} rows.")
    unknown = sorted({repr(v) for v in values if not is_missing(v) and v not in index})
    if unknown:
        raise ValueError(f"{name} holds labels that are not classes of y: "
                         f"{', '.join(unknown[:5])}; classes: {classes.tolist()}.")
    return np.array([-1 if is_missing(v) else index[v] for v in values], dtype=np.int64)


def check_sample_weight(sample_weight, y) -> np.ndarray:
    """Sample weights as float32, one per label, finite, non-negative, not all zero.

    Examples
    --------
    >>> check_sample_weight([1, 0.5], ["a", "b"]).tolist()
    [1.0, 0.5]
    """
    weights = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
    if len(weights) != len(y):
        raise ValueError(f"sample_weight has {len(weights)} entries; y has {len(y)}.")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("sample_weight must be finite and >= 0.")
    if not weights.any():  # scikit-learn's wording
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return weights


def training_columns(y, classes: np.ndarray, sample_weight=None, labels=None) -> dict:
    """The per-post training columns besides texts and images, as tensors.

    Parameters
    ----------
    y : array-like
        The labels (for the count).
    classes : ndarray
        The classes, in the order of the model's outputs.
    sample_weight : array-like, optional
        Becomes ``"sample_weight"`` (`check_sample_weight`).
    labels : (text_labels, image_labels) or None
        Per-modality labels; where either is given, both become ``"text_label"`` and
        ``"image_label"`` class indices, -1 where unknown (`label_indices`).

    Returns
    -------
    dict of str to torch.Tensor

    Examples
    --------
    >>> cols = training_columns(["a", "b"], np.array(["a", "b"]), [1, 2], (["b", None], None))
    >>> {k: v.tolist() for k, v in cols.items()}
    {'sample_weight': [1.0, 2.0], 'text_label': [1, -1], 'image_label': [-1, -1]}
    """
    columns = {}
    if sample_weight is not None:
        columns["sample_weight"] = torch.as_tensor(check_sample_weight(sample_weight, y))
    if labels is not None and any(v is not None for v in labels):
        for name, values in zip(("text_label", "image_label"), labels):
            columns[name] = torch.as_tensor(label_indices(values, classes, len(y), name + "s"))
    return columns
