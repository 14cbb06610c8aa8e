"""On-disk cache of encoder outputs, shared by every clone, fold, candidate and process.

An entry is one encoder output for one input, stored as a ``.npy`` file under

    <cache_dir>/<encoder key>/<first 2 hex digits>/<content hash>.npy

- the *encoder key* names the encoder and its output (e.g. pooled image vectors), and holds a
  fingerprint of its weights and every preprocessing setting, so a change in any of them
  reads from another folder;
- the *content hash* is the SHA-256 of the text string or of the image file's bytes, never
  the path or the row position, so renamed, moved or duplicated files share an entry.

Writes go to a temporary file that is then renamed into place (atomic on POSIX and Windows),
so processes of a parallel grid search can share the folder. An entry that cannot be read,
or whose shape or dtype differ from what the encoder produces, counts as a miss and is
rewritten.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..paths import default_cache_dir


def resolve_cache_dir(cache_dir) -> Path | None:
    """The feature cache folder that a ``cache_dir`` setting names.

    Parameters
    ----------
    cache_dir : "auto", str, path-like or None
        ``"auto"`` for `default_cache_dir`, ``None`` for no cache, or a folder.

    Returns
    -------
    folder : pathlib.Path or None
        The folder (``~`` expanded), or ``None`` for no cache.
    """
    if cache_dir is None:
        return None
    if isinstance(cache_dir, str) and cache_dir == "auto":
        return default_cache_dir()
    return Path(cache_dir).expanduser()


class FeatureCache:
    """One encoder output per input, on disk.

    Parameters
    ----------
    root : str or path-like
        The cache folder (created on first write).
    encoder_key : str
        Folder name for this encoder and output (see the module docstring).
    shape : tuple of int
        The shape of one entry.
    dtype : str or numpy.dtype
        The dtype of one entry.

    Attributes
    ----------
    folder : pathlib.Path
        ``root / encoder_key``, where the entries are.
    shape : tuple of int
        The shape of one entry.
    dtype : numpy.dtype
        The dtype of one entry.

    Examples
    --------
    >>> import tempfile
    >>> cache = FeatureCache(tempfile.mkdtemp(), "demo-encoder", (3,), "float32")
    >>> cache.put("abc", np.ones(3, dtype="float32"))
    >>> cache.get("abc").tolist(), cache.get("missing")
    ([1.0, 1.0, 1.0], None)
    """

    def __init__(self, root, encoder_key: str, shape: tuple[int, ...], dtype: str) -> None:
        self.folder = Path(root) / encoder_key
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The entry for ``key``, or ``None`` when absent, unreadable or of the wrong shape."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if value.shape != self.shape or value.dtype != self.dtype:
            return None
        return value

    def put(self, key: str, value: np.ndarray) -> None:
        """Store ``value`` for ``key`` atomically (write to a temporary file, then rename).

        Raises
        ------
        ValueError
            If ``value`` is not of the entries' shape.
        """
        value = np.ascontiguousarray(value, dtype=self.dtype)
        if value.shape != self.shape:
            raise ValueError(f"cache entry of shape {value.shape}, expected {self.shape}")
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, value, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
