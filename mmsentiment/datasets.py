"""Data sets: the built-in synthetic demo set and a reader for the MVSA-Single layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .paths import open_regular_file

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
MVSA_LABELS = ("positive", "neutral", "negative")


def load_demo(return_X_y: bool = False):
    """Load the small synthetic demo set that ships with the package (162 posts, < 1 MB).

    The posts were made by ``scripts/make_demo_data.py``: template texts and drawn pictures
    (sunny, rainy and plain office scenes). About a fifth carry their sentiment only in the
    image and a fifth only in the text, so both modalities matter. It is a smoke test for
    the pipeline, not a benchmark.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of one DataFrame.

    Returns
    -------
    df : DataFrame
        The columns ``id``, ``text``, ``image_path`` (absolute) and ``label``.
    (X, y) : tuple of DataFrame and ndarray, if ``return_X_y`` is True
        ``X = df[["text", "image_path"]]`` and the labels ``y``.

    Examples
    --------
    >>> df = load_demo()
    >>> sorted(df["label"].unique())
    ['negative', 'neutral', 'positive']
    """
    df = pd.read_csv(DEMO_DIR / "posts.csv", keep_default_na=False, na_values=[""])
    df["image_path"] = [str(DEMO_DIR / p) for p in df.pop("image")]
    df = df[["id", "text", "image_path", "label"]]
    if return_X_y:
        return df[["text", "image_path"]], df["label"].to_numpy()
    return df


def _read_text(path: Path) -> str:
    if path.stat().st_size == 0:
        return ""
    with open_regular_file(path, max_bytes=1 << 20) as fh:  # a tweet is a few hundred bytes
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")
    return text.strip()


def merge_labels(text_label: str, image_label: str) -> str | None:
    """One post label from the per-modality labels (Xu & Mao, 2017); ``None`` for conflicts.

    Parameters
    ----------
    text_label : {"positive", "neutral", "negative"}
        The label of the text.
    image_label : {"positive", "neutral", "negative"}
        The label of the image.

    Returns
    -------
    label : str or None
        The label both share; the other label where one is ``"neutral"``; ``None`` for
        positive against negative.

    Examples
    --------
    >>> merge_labels("neutral", "positive"), merge_labels("positive", "negative")
    ('positive', None)
    """
    if text_label == image_label:
        return text_label
    if "neutral" in (text_label, image_label):
        return image_label if text_label == "neutral" else text_label
    return None


def mvsa_split_ids(split: str) -> set[int]:
    """The post ids of the standard MVSA-Single ``"train"`` or ``"dev"`` part.

    The package carries both lists (``mmsentiment/splits``); the test part is every labelled
    post in neither.

    Parameters
    ----------
    split : {"train", "dev"}
        The part of the split.

    Returns
    -------
    ids : set of int
        The post ids of that part.

    Raises
    ------
    ValueError
        For any other ``split``.

    Examples
    --------
    >>> len(mvsa_split_ids("train")), len(mvsa_split_ids("dev"))
    (3611, 450)
    """
    if split not in ("train", "dev"):
        raise ValueError(f"the package carries the 'train' and 'dev' id lists, not {split!r}")
    lines = (SPLITS_DIR / f"mvsa_single_{split}.txt").read_text().splitlines()
    return {int(line) for line in lines if line and not line.startswith("#")}


def load_mvsa(root: str | Path, split: str | None = None) -> pd.DataFrame:
    """Read MVSA-Single in its official layout (Niu et al., 2016).

    Texts are read as UTF-8, or GB18030 where they are not UTF-8 (as in the original
    release). The two per-modality labels become one post label by the rule of Xu & Mao
    (2017): equal labels give that label, one neutral gives the other label, and
    positive-versus-negative posts are dropped.

    Parameters
    ----------
    root : str or path-like
        Folder holding ``labelResultAll.txt`` and ``data/{id}.txt``, ``data/{id}.jpg``.
    split : {"train", "dev", "test"} or None, default=None
        That part of the standard 8:1:1 split (the package carries the train and dev id
        lists; test is every labelled post in neither), or ``None`` for every labelled
        post.

    Returns
    -------
    df : DataFrame
        The columns ``id``, ``text``, ``image_path``, ``label``, ``text_label`` and
        ``image_label``, sorted by ``id``.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not an MVSA-Single folder, or a post's text or image file is
        missing.
    ValueError
        For an unknown split, a malformed label file, or a split with no posts in this
        copy (e.g. ``"test"`` on a copy that leaves the test part out).

    Examples
    --------
    >>> df = load_mvsa("path/to/MVSA_Single", "train")  # doctest: +SKIP
    >>> df["label"].value_counts().to_dict()  # doctest: +SKIP
    {'positive': 2147, 'negative': 1088, 'neutral': 376}
    """
    if split not in (None, "train", "dev", "test"):
        raise ValueError(f"split must be 'train', 'dev', 'test' or None, got {split!r}")
    root = Path(root).expanduser()
    labels_file = root / "labelResultAll.txt"
    if not labels_file.is_file() or not (root / "data").is_dir():
        raise FileNotFoundError(
            f"{root} is not an MVSA-Single folder: expected labelResultAll.txt and data/."
        )
    labels = pd.read_csv(labels_file, sep="\t", dtype=str)
    pairs = labels.iloc[:, 1].str.split(",", expand=True) if labels.shape[1] == 2 else None
    if pairs is None or pairs.shape[1] != 2 or not pairs.isin(MVSA_LABELS).all().all():
        raise ValueError(f"{labels_file} is not an MVSA label file: expected a header, then "
                         "'id<TAB>text_label,image_label' lines with labels in "
                         f"{MVSA_LABELS}.")
    df = pd.DataFrame({"id": labels.iloc[:, 0].astype(int), "text_label": pairs[0],
                       "image_label": pairs[1]})
    df["label"] = [merge_labels(t, i) for t, i in zip(df["text_label"], df["image_label"])]
    df = df.dropna(subset=["label"])
    if split in ("train", "dev"):
        df = df[df["id"].isin(mvsa_split_ids(split))]
    elif split == "test":
        df = df[~df["id"].isin(mvsa_split_ids("train") | mvsa_split_ids("dev"))]
    if split is not None and df.empty:
        raise ValueError(f"{root} holds no post of the {split!r} part of the standard split "
                         "(copies shared for model selection often leave the test part out).")
    df = df.sort_values("id").reset_index(drop=True)
    missing = [f"data/{i}.{ext}" for i in df["id"] for ext in ("txt", "jpg")
               if not (root / "data" / f"{i}.{ext}").is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} file(s) of labelled posts are missing under "
                                f"{root}: {', '.join(missing[:5])}")
    df["text"] = [_read_text(root / "data" / f"{i}.txt") for i in df["id"]]
    df["image_path"] = [str(root / "data" / f"{i}.jpg") for i in df["id"]]
    return df[["id", "text", "image_path", "label", "text_label", "image_label"]]
