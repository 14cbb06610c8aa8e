"""Data sets: the built-in synthetic demo set and a reader for the MVSA-Single layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
MVSA_LABELS = ("positive", "neutral", "negative")


def load_demo(return_X_y: bool = False):
    """Load the small synthetic demo set that ships with the package (162 posts, < 1 MB).

    The posts were made by ``scripts/make_demo_data.py``: template texts and drawn pictures
    (sunny, rainy and plain office scenes). About a fifth carry their sentiment only in the
    image and a fifth only in the text, so both modalities matter. It is a smoke test for
    the pipeline, not a benchmark.

    Args:
        return_X_y: return ``(X, y)`` instead of one DataFrame.

    Returns:
        A DataFrame with columns ``text``, ``image_path`` (absolute) and ``label``, or
        ``(X, y)`` where ``X = df[["text", "image_path"]]``.

    Example:
        >>> df = load_demo()
        >>> sorted(df["label"].unique())
        ['negative', 'neutral', 'positive']
    """
    df = pd.read_csv(DEMO_DIR / "posts.csv")
    df["image_path"] = [str(DEMO_DIR / p) for p in df.pop("image")]
    df = df[["id", "text", "image_path", "label"]]
    if return_X_y:
        return df[["text", "image_path"]], df["label"].to_numpy()
    return df


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")
    return text.strip()


def merge_labels(text_label: str, image_label: str) -> str | None:
    """One post label from the per-modality labels (Xu & Mao, 2017); ``None`` for conflicts.

    >>> merge_labels("neutral", "positive"), merge_labels("positive", "negative")
    ('positive', None)
    """
    if text_label == image_label:
        return text_label
    if "neutral" in (text_label, image_label):
        return image_label if text_label == "neutral" else text_label
    return None


def load_mvsa(root: str | Path, split: str | None = None) -> pd.DataFrame:
    """Read MVSA-Single in its official layout.

    Args:
        root: folder holding ``data/``, ``labelResultAll.txt`` and ``splits.csv``.
        split: ``"train"``, ``"dev"`` or ``None`` for every labelled post that survives
            the merge rule.

    Returns:
        A DataFrame with ``id``, ``text``, ``image_path``, ``label``, ``text_label``,
        ``image_label``, sorted by ``id``.

    Raises:
        FileNotFoundError: when ``root`` is not an MVSA-Single folder.
    """
    root = Path(root).expanduser()
    labels_file = root / "labelResultAll.txt"
    if not labels_file.is_file() or not (root / "data").is_dir():
        raise FileNotFoundError(
            f"{root} is not an MVSA-Single folder: expected labelResultAll.txt and data/."
        )
    labels = pd.read_csv(labels_file, sep="\t")
    labels.columns = ["id", "labels"]
    labels[["text_label", "image_label"]] = labels["labels"].str.split(",", expand=True)
    labels["label"] = [merge_labels(t, i)
                       for t, i in zip(labels["text_label"], labels["image_label"])]
    df = labels.dropna(subset=["label"]).drop(columns="labels")
    if split is not None:
        if split not in ("train", "dev"):
            raise ValueError(f"split must be 'train', 'dev' or None, got {split!r}")
        splits = pd.read_csv(root / "splits.csv")
        df = df[df["id"].isin(splits.loc[splits["split"] == split, "id"])]
    df = df.sort_values("id").reset_index(drop=True)
    df["text"] = [_read_text(root / "data" / f"{i}.txt") for i in df["id"]]
    df["image_path"] = [str(root / "data" / f"{i}.jpg") for i in df["id"]]
    return df[["id", "text", "image_path", "label", "text_label", "image_label"]]
