"""``validate``: find every problem in a data set at once, before a long fit."""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from .inputs.columns import is_encodable, is_missing, is_missing_image, raw_columns
from .inputs.images import DecompressionBomb, check_pixel_limit
from .inputs.remote import RemoteImageError, is_url, open_image_file

LONG_TEXT_CHARS = 2000
TINY_IMAGE_PX = 32


@dataclass
class Problem:
    """One kind of problem found by `validate`.

    Attributes
    ----------
    severity : {"error", "warning", "info"}
        ``"error"``: fit would fail or the rows are unusable; ``"warning"``: a policy
        applies (e.g. a missing modality); ``"info"``: worth knowing, nothing to fix.
    kind : str
        A short name, e.g. ``"missing_image_file"``.
    count : int
        How many rows have it.
    rows : list of int
        The first few row positions.
    message : str
        What it means and what the package does about it.
    """

    severity: str
    kind: str
    count: int
    rows: list[int]
    message: str


@dataclass
class ValidationReport:
    """Everything `validate` found; ``ok`` is False when any problem is an error.

    Attributes
    ----------
    n_rows : int
        Rows in the data set.
    problems : list of Problem
        One entry per kind of problem; `validate` lists errors first, then warnings, then
        notes, each group by kind.
    """

    n_rows: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing would stop a fit."""
        return not any(p.severity == "error" for p in self.problems)

    def to_frame(self) -> pd.DataFrame:
        """The problems as a DataFrame, one row per kind."""
        return pd.DataFrame([vars(p) for p in self.problems],
                            columns=["severity", "kind", "count", "rows", "message"])

    def __str__(self) -> str:
        head = f"{self.n_rows} rows: " + ("no errors" if self.ok else "ERRORS found")
        lines = [head] + [
            f"  [{p.severity}] {p.kind}: {p.count} row(s), e.g. rows {p.rows} - {p.message}"
            for p in self.problems
        ]
        return "\n".join(lines)


def _inspect_image(value) -> tuple[str | None, str | None]:
    """Return (problem kind, detail) for one image value, or (None, note)."""
    if isinstance(value, Image.Image):
        return None, value.mode
    path = os.fspath(value)
    if not is_url(path) and not os.path.exists(path):
        return "missing_image_file", path
    try:
        with open_image_file(path) as fh, Image.open(fh) as img:
            check_pixel_limit(img)
            mode, size, frames = img.mode, img.size, getattr(img, "n_frames", 1)
            img.draft("RGB", (64, 64))
            img.load()
    except RemoteImageError as exc:  # its message names the URL
        return "unreachable_image", str(exc)
    except (DecompressionBomb, Image.DecompressionBombError) as exc:
        return "decompression_bomb", f"{path}: {exc}"
    except Exception as exc:  # noqa: BLE001 - as in data.load_images: any decode error
        # of a malformed file is reported for its row, whatever its type.
        return "unreadable_image", f"{path}: {type(exc).__name__}: {exc}"
    if min(size) < TINY_IMAGE_PX:
        return "tiny_image", f"{path}: {size[0]}x{size[1]}"
    if frames > 1:
        return None, "animated"
    return None, mode


def validate(X, y=None, text_column: str = "text", image_column: str = "image_path",
             check_images: bool = True, n_threads: int = 4) -> ValidationReport:
    """Check a data set for every problem the classifier would meet, all at once.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, 2)
        A DataFrame with the text and image columns, or a 2-column array (text, image).
    y : array-like of shape (n_samples,), default=None
        The labels, if any: checked for their length, for a single class, and for classes
        with one sample.
    text_column : str, default="text"
        Name of the text column (DataFrame input).
    image_column : str, default="image_path"
        Name of the image column (DataFrame input).
    check_images : bool, default=True
        Open and decode every image (slower; finds corrupt, tiny and oversized images).
        Image URLs are downloaded for it (`mmsentiment.inputs.remote.read_url`); without
        it they are not contacted.
    n_threads : int, default=4
        Threads for decoding images.

    Returns
    -------
    report : ValidationReport
        Print it, or inspect ``report.to_frame()``.

    Examples
    --------
    >>> report = validate(pd.DataFrame({"text": ["good", None], "image_path": [None, "x"]}))
    >>> report.ok, sorted(p.kind for p in report.problems)
    (False, ['missing_image', 'missing_image_file', 'missing_text', 'no_modality'])
    """
    found: dict[str, list[int]] = {}
    details: dict[str, list[str]] = {}

    def add(kind: str, row: int, detail: str = "") -> None:
        found.setdefault(kind, []).append(row)
        details.setdefault(kind, []).append(detail)

    try:
        texts, images = raw_columns(X, text_column, image_column)
    except ValueError as exc:
        report = ValidationReport(len(X) if hasattr(X, "__len__") else 0)
        kind = "missing_column" if isinstance(X, pd.DataFrame) else "wrong_shape"
        report.problems.append(Problem("error", kind, 1, [], str(exc)))
        return report
    report = ValidationReport(len(texts))
    if not texts:
        report.problems.append(Problem("error", "empty", 0, [], "X holds no rows"))
        return report

    for i, t in enumerate(texts):
        if is_missing(t):
            add("missing_text", i)
        elif not isinstance(t, str):
            add("text_not_string", i, repr(t))
        elif not t.strip():
            add("blank_text", i)
        elif not is_encodable(t):
            add("unencodable_text", i, repr(t[:40]))
        elif len(t) > LONG_TEXT_CHARS:
            add("long_text", i, f"{len(t)} chars")
    image_rows = []
    for i, v in enumerate(images):
        if is_missing_image(v):
            add("missing_image", i)
        elif not isinstance(v, (str, os.PathLike, Image.Image)):
            add("image_not_path", i, repr(v))
        else:
            image_rows.append(i)
    notes: Counter = Counter()
    if check_images:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            results = list(pool.map(_inspect_image, [images[i] for i in image_rows]))
        for i, (kind, detail) in zip(image_rows, results):
            if kind:
                add(kind, i, detail or "")
            else:
                notes[detail] += 1
    text_gone = set(found.get("missing_text", [])) | set(found.get("blank_text", []))
    image_gone = set(found.get("missing_image", []))
    for kind in ("missing_image_file", "unreachable_image", "unreadable_image",
                 "decompression_bomb"):
        image_gone |= set(found.get(kind, []))
    for i in sorted(text_gone & image_gone):
        add("no_modality", i)

    messages = {
        "missing_text": ("warning", "text is None/NaN: treated as a missing text"),
        "blank_text": ("warning", "text is empty or whitespace: treated as a missing text"),
        "text_not_string": ("error", "text is neither a string nor missing: fit raises"),
        "unencodable_text": ("error", "text holds a lone surrogate (not valid Unicode, often "
                                      "from a broken decode): fit raises"),
        "long_text": ("info", f"over {LONG_TEXT_CHARS} characters: truncated to the text "
                              "encoder's maximum length in tokens"),
        "missing_image": ("warning", "image is None/NaN/'': treated as a missing image"),
        "image_not_path": ("error", "image is neither a path, a PIL image nor missing"),
        "missing_image_file": ("error", "file not found: fit raises (on_bad_image='raise') "
                                        "or treats it as missing ('blank')"),
        "unreachable_image": ("error", "image URL could not be read (an HTTP error, a refused "
                                       "connection, a timeout, too large, or an fsspec "
                                       "protocol that is not installed): fit raises or, with "
                                       "on_bad_image='blank', treats it as missing"),
        "unreadable_image": ("error", "empty, truncated, corrupt, not an image, not a regular "
                                      "file or too large: fit raises or, with "
                                      "on_bad_image='blank', treats it as missing"),
        "decompression_bomb": ("error", "more pixels than PIL.Image.MAX_IMAGE_PIXELS: refused "
                                        "like an unreadable image"),
        "tiny_image": ("warning", f"smaller than {TINY_IMAGE_PX} px on a side: upscaled, "
                                  "carries little information"),
        "no_modality": ("warning", "neither text nor image: the prediction is the model's "
                                   "prior"),
    }
    for kind, rows in found.items():
        severity, message = messages[kind]
        examples = [d for d in details[kind][:3] if d]
        if examples:
            message += f" ({'; '.join(examples)})"
        report.problems.append(Problem(severity, kind, len(rows), rows[:5], message))
    converted = {k: v for k, v in notes.items() if k not in ("RGB",)}
    if converted:
        report.problems.append(Problem(
            "info", "converted_images", sum(converted.values()), [],
            f"non-RGB or animated images, converted to RGB (first frame): {dict(converted)}"))
    if y is not None:
        y = np.asarray(y, dtype=object)  # keeps NaN a NaN among strings
        if len(y) != len(texts):
            report.problems.append(Problem(
                "error", "length_mismatch", abs(len(y) - len(texts)), [],
                f"X has {len(texts)} rows, y has {len(y)}"))
        else:
            unlabelled = [i for i, v in enumerate(y.tolist()) if is_missing(v)]
            if unlabelled:
                report.problems.append(Problem(
                    "error", "missing_label", len(unlabelled), unlabelled[:5],
                    "label is None/NaN: fit raises (drop these rows or label them)"))
            counts = Counter(v for v in y.tolist() if not is_missing(v))
            if len(counts) < 2:
                report.problems.append(Problem(
                    "error", "single_class", len(y), [], f"y holds one class: {dict(counts)}"))
            rare = {c: n for c, n in counts.items() if n < 2}
            if rare:
                report.problems.append(Problem(
                    "warning", "rare_class", sum(rare.values()), [],
                    f"classes with one sample (no stratified validation split): {rare}"))
    order = {"error": 0, "warning": 1, "info": 2}
    report.problems.sort(key=lambda p: (order[p.severity], p.kind))
    return report
