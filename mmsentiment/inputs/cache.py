"""On-disk cache of encoder outputs, shared by every clone, fold, candidate and process.

An entry is one encoder output for one input, stored as a ``.npy`` file under

    <cache_dir>/<encoder key>/<first 2 hex digits>/<content hash>.npy

- the *encoder key* names the encoder and its output (e.g. pooled image vectors), and holds a
  fingerprint of its weights and every preprocessing setting, so a change in any of them
  reads from another folder;
- the *content hash* is the SHA-256 of the text string or of the image file's bytes, never
  the path or the row position, so renamed, moved or duplicated files share an entry. An
  image URL is keyed by the bytes it serves (`mmsentiment.hashing.image_key`): an image
  replaced at its URL is encoded anew, never served from a stale entry.

Writes go to a temporary file that is then renamed into place (atomic on POSIX and Windows),
so processes of a parallel grid search can share the folder. An entry that cannot be read,
or whose shape or dtype differ from what the encoder produces, counts as a miss and is
rewritten.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..hashing import CACHE_LAYOUT_VERSION
from ..paths import default_cache_dir, open_regular_file

# Encoder folders are named like this (`TextEncoder.cache_key`, `ImageEncoder.cache_key`);
# a folder's LAYOUT file names the layout version that wrote it.
KEY_PATTERN = re.compile(r"(text|image)-.+-[0-9a-f]{20}")
LAYOUT_FILE = "LAYOUT"
DEFAULT_MAX_BYTES = 10 << 30
# How many bytes one process writes between two checks of the size cap.
PRUNE_EVERY_BYTES = 64 << 20
_UNWRITABLE: set[Path] = set()


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
        self.root = Path(root)
        self.folder = self.root / encoder_key
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.writable = True
        self._written = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The entry for ``key``, or ``None`` when absent, unreadable, of another shape or
        dtype (checked in the file's header before its data is read), or not finite."""
        path = self._path(key)
        limit = self.dtype.itemsize * int(np.prod(self.shape)) + 4096  # data + any header
        try:
            with open_regular_file(path, max_bytes=limit) as fh:
                major, _ = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if major == 1
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(fh)
                if tuple(shape) != self.shape or dtype != self.dtype or fortran:
                    return None
                value = np.frombuffer(bytearray(fh.read(limit)), dtype=self.dtype)
        except (OSError, ValueError, EOFError):
            return None
        if value.size != int(np.prod(self.shape)) or not np.isfinite(value).all():
            return None
        return value.reshape(self.shape)

    def put(self, key: str, value: np.ndarray) -> None:
        """Store ``value`` for ``key`` atomically (write to a temporary file, then rename).

        The cache is best-effort: where the folder cannot be written (read-only, full, not
        a folder), one warning says so and this cache stops writing; the fit goes on.

        Raises
        ------
        ValueError
            If ``value`` is not of the entries' shape.
        """
        value = np.ascontiguousarray(value, dtype=self.dtype)
        if value.shape != self.shape:
            raise ValueError(f"cache entry of shape {value.shape}, expected {self.shape}")
        if not self.writable:
            return
        path = self._path(key)
        tmp = None
        try:
            if not (self.folder / LAYOUT_FILE).is_file():
                self.folder.mkdir(parents=True, exist_ok=True)
                layout = self.folder / f"{LAYOUT_FILE}.{os.getpid()}.tmp"
                layout.write_text(str(CACHE_LAYOUT_VERSION))
                os.replace(layout, self.folder / LAYOUT_FILE)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, value, allow_pickle=False)
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            self.writable = False
            if self.root in _UNWRITABLE:  # said once per folder and process
                return
            _UNWRITABLE.add(self.root)
            warnings.warn(f"The feature cache at {self.root} cannot be written ({exc}); going "
                          "on without it (set cache_dir= to a writable folder, or None).",
                          UserWarning, stacklevel=2)
            return
        self._written += value.nbytes
        if self._written >= PRUNE_EVERY_BYTES:
            self._written = 0
            try:
                prune(self.root, max_cache_bytes())
            except OSError as exc:  # another process's files, a shared folder: go on
                warnings.warn(f"Pruning the feature cache at {self.root} failed ({exc}).",
                              UserWarning, stacklevel=2)


def _encoder_folders(root: Path) -> list[Path]:
    """The folders under ``root`` named as encoder keys are (``text-<name>-<20 hex>``): a
    user's own ``image-assets`` folder is never taken for one."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and KEY_PATTERN.fullmatch(p.name))


def max_cache_bytes() -> int:
    """The cache's size cap: ``$MMSENTIMENT_CACHE_MAX_BYTES``, else `DEFAULT_MAX_BYTES`."""
    value = os.environ.get("MMSENTIMENT_CACHE_MAX_BYTES", "")
    return int(value) if value.isdigit() else DEFAULT_MAX_BYTES


def cache_info(root) -> dict:
    """Entries and bytes per encoder folder of the cache at ``root``.

    Parameters
    ----------
    root : str or Path
        The cache folder.

    Returns
    -------
    dict
        ``{"root": str, "folders": {name: {"entries": int, "bytes": int, "layout":
        str}}, "entries": int, "bytes": int}``; ``layout`` is ``"current"`` or ``"old"``.
    """
    root = Path(root)
    folders = {}
    for folder in _encoder_folders(root):
        sizes = [size for _, size, _ in _entries_in([folder])]
        folders[folder.name] = {"entries": len(sizes), "bytes": sum(sizes),
                                "layout": "old" if _old(folder) else "current"}
    return {"root": str(root), "folders": folders,
            "entries": sum(f["entries"] for f in folders.values()),
            "bytes": sum(f["bytes"] for f in folders.values())}


def _entries_in(folders):
    """Each entry file in ``folders``: (path, size, mtime)."""
    for folder in folders:
        for path in folder.glob("??/*.npy"):
            try:
                info = path.stat()
            except OSError:  # removed meanwhile by another process
                continue
            yield path, info.st_size, info.st_mtime


def _old(folder: Path) -> bool:
    """Whether ``folder`` was written by another layout version (its LAYOUT file says so; a
    folder without one, being created or from before LAYOUT files, is not taken for old)."""
    try:
        layout = (folder / LAYOUT_FILE).read_text().strip()
    except OSError:
        return False
    return bool(layout) and layout != str(CACHE_LAYOUT_VERSION)


def prune(root, max_bytes: int | None = None) -> int:
    """Remove old-layout folders, then the oldest-written entries until the cache fits.

    Parameters
    ----------
    root : str or Path
        The cache folder.
    max_bytes : int, optional
        The size to shrink to (`max_cache_bytes` where ``None``).

    Returns
    -------
    int
        Bytes removed.
    """
    root = Path(root)
    limit = max_cache_bytes() if max_bytes is None else max_bytes
    removed = 0
    for folder in _encoder_folders(root):
        if _old(folder):
            removed += sum(size for _, size, _ in _entries_in([folder]))
            shutil.rmtree(folder, ignore_errors=True)
    entries = sorted(_entries_in(_encoder_folders(root)), key=lambda e: e[2])
    total = sum(size for _, size, _ in entries)
    for path, size, _ in entries:
        if total <= limit:
            break
        path.unlink(missing_ok=True)
        total -= size
        removed += size
    return removed


def clear(root) -> int:
    """Remove every encoder folder of the cache at ``root`` (nothing else there) and return
    the bytes removed."""
    removed = 0
    for folder in _encoder_folders(Path(root)):
        removed += sum(size for _, size, _ in _entries_in([folder]))
        shutil.rmtree(folder, ignore_errors=True)
    return removed
