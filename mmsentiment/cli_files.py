"""The command line's files: data tables in and out, model files in and out."""

from __future__ import annotations

from pathlib import Path

from .inputs.remote import is_url
from .model_files import PICKLE_SUFFIXES, file_format, write_atomically

READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


class CLIError(Exception):
    """A problem the user can fix, reported as one line."""


def read_table(path: str | Path, image_column: str | None = None):
    """Read a CSV, Parquet or JSON Lines file into a DataFrame.

    Parameters
    ----------
    path : str or Path
        The file; its suffix names the format (`READERS`).
    image_column : str or None, default=None
        A column of image paths: relative paths there are made absolute against the
        file's folder (URLs, ``scheme://...``, are left as they are).

    Returns
    -------
    DataFrame

    Raises
    ------
    CLIError
        For an unknown suffix or a missing file.
    """
    import pandas as pd

    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise CLIError(f"{path}: unknown data format {path.suffix!r}; use one of "
                       f"{', '.join(sorted(READERS))}")
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    if kind in ("csv", "tsv"):
        # Only an empty cell is missing: a tweet that reads "NA" or "null" is a text.
        df = pd.read_csv(path, sep="\t" if kind == "tsv" else ",", keep_default_na=False,
                         na_values=[""])
    elif kind == "parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_json(path, lines=kind == "jsonl", dtype=False)
    if image_column is not None and image_column in df.columns:
        base = path.resolve().parent

        def absolute(value):
            if (isinstance(value, str) and value.strip() and not is_url(value)
                    and not Path(value).is_absolute()):
                return str(base / value)
            return value

        df[image_column] = df[image_column].map(absolute)
    return df


def write_table(df, path: str | Path, force: bool = True) -> Path:
    """Write ``df`` as CSV, Parquet or JSON Lines, chosen by the file suffix.

    Parameters
    ----------
    df : DataFrame
        What to write.
    path : str or Path
        The file; missing folders are made. It is written under a temporary name and
        renamed into place.
    force : bool, default=True
        Replace an existing file (else a `CLIError`).

    Returns
    -------
    Path
    """
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise CLIError(f"{path}: unknown output format {path.suffix!r}; use one of "
                       f"{', '.join(sorted(READERS))}")
    if path.exists() and not force:
        raise CLIError(f"{path} exists; pass --force to replace it")

    def write(tmp: Path) -> None:
        if kind in ("csv", "tsv"):
            df.to_csv(tmp, sep="\t" if kind == "tsv" else ",", index=False)
        elif kind == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_json(tmp, orient="records", lines=kind == "jsonl", force_ascii=False)

    return write_atomically(path, write)


def save_model(clf, path: str | Path, force: bool = False) -> Path:
    """Save as safetensors (``.safetensors``), a joblib pickle (``.joblib``, ``.pkl``), or a
    model folder in the Hugging Face layout (a path without a suffix, or a folder).

    The file is written under a temporary name and renamed into place, so an interruption
    leaves no partial file; an existing file is kept unless ``force``. A folder is written
    by `MultimodalSentimentClassifier.save_pretrained`: a non-empty one only with ``force``,
    and never one that holds anything but an mmsentiment model.

    Parameters
    ----------
    clf : MultimodalSentimentClassifier
        A fitted model.
    path : str or Path
        The model file or folder (missing folders are made).
    force : bool, default=False
        Replace an existing file, or the model in an existing model folder.

    Returns
    -------
    Path
    """
    import joblib

    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or not suffix:
        if path.is_dir() and any(path.iterdir()) and not force:
            raise CLIError(f"{path} is a folder that is not empty; pass --force to replace "
                           "the model in it")
        try:
            return clf.save_pretrained(path)
        except FileExistsError as exc:
            raise CLIError(str(exc)) from None
    if suffix not in (".safetensors", *PICKLE_SUFFIXES):
        raise CLIError(f"{path}: a model file ends in .safetensors (safe to share) or "
                       f"{' / '.join(PICKLE_SUFFIXES)} (a pickle); a path without a suffix "
                       "is a model folder")
    if path.exists() and not force:
        raise CLIError(f"{path} exists; pass --force to replace it")
    if suffix == ".safetensors":
        return clf.save(path, overwrite=force)
    return write_atomically(path, lambda tmp: joblib.dump(clf, tmp), overwrite=force)


def load_model(path: str | Path, allow_pickle: bool = False, trust_encoders: bool = False):
    """Load a model file, telling its kind from its content (never from its name), or a
    model folder (`MultimodalSentimentClassifier.from_pretrained`, local folders only).

    Parameters
    ----------
    path : str or Path
        A safetensors model file, a joblib pickle, or a model folder.
    allow_pickle : bool, default=False
        Load pickles; a pickle runs code when it is loaded, so only for files you trust.
    trust_encoders : bool, default=False
        Let a safetensors file name encoders that are not installed offline.

    Returns
    -------
    MultimodalSentimentClassifier

    Raises
    ------
    CLIError
        Where the file is missing, of neither kind, or a pickle without ``allow_pickle``.
    """
    import joblib

    from .classifier import MultimodalSentimentClassifier

    if Path(path).is_dir():
        return MultimodalSentimentClassifier.from_pretrained(Path(path),
                                                             trust_encoders=trust_encoders)
    try:
        kind = file_format(path)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if kind == "safetensors":
        return MultimodalSentimentClassifier.load(path, trust_encoders=trust_encoders)
    if not allow_pickle:
        raise CLIError(f"{path} is a pickle, which runs code when it is loaded: pass "
                       "--allow-pickle only if you trust who made it (or ask for a "
                       ".safetensors model, which runs none)")
    clf = joblib.load(path)
    if not isinstance(clf, MultimodalSentimentClassifier):
        raise CLIError(f"{path} holds a {type(clf).__name__}, not a model")
    return clf


def save_figure(fig, path: str | Path, force: bool = False) -> Path:
    """Write a matplotlib figure as PNG through a temporary file; keep an existing file
    unless ``force``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path, force
        As for `save_model`.

    Returns
    -------
    Path
    """
    path = Path(path)
    if path.exists() and not force:
        raise CLIError(f"{path} exists; pass --force to replace it")
    return write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120,
                                                          bbox_inches="tight"))
