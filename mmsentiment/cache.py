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

import hashlib
import inspect
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# Bump when decoding, cropping or the stored layout changes: old entries are then ignored.
CACHE_LAYOUT_VERSION = 1


def default_cache_dir() -> Path:
    """The per-user cache folder: ``$MMSENTIMENT_CACHE``, else ``$XDG_CACHE_HOME/mmsentiment``,
    else ``~/.cache/mmsentiment``."""
    if os.environ.get("MMSENTIMENT_CACHE"):
        return Path(os.environ["MMSENTIMENT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mmsentiment"


def resolve_cache_dir(cache_dir) -> Path | None:
    """``"auto"`` -> the per-user default; ``None`` -> no cache; a path -> that path."""
    if cache_dir is None:
        return None
    if isinstance(cache_dir, str) and cache_dir == "auto":
        return default_cache_dir()
    return Path(cache_dir).expanduser()


def text_key(text: str) -> str:
    """Content hash of a text.

    >>> text_key("hello")[:12]
    '2cf24dba5fb0'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def image_key(image) -> str | None:
    """Content hash of an image: its file's bytes, or a PIL image's mode, size and pixels.

    Returns ``None`` when a file cannot be read (the decoder then reports why).
    """
    digest = hashlib.sha256()
    if isinstance(image, Image.Image):
        # Everything decoding looks at: pixels, palette, transparency, EXIF orientation.
        digest.update(f"{image.mode}{image.size}{image.info.get('transparency')}".encode())
        digest.update(f"{image.getexif().get(0x0112)}{image.getpalette()}".encode())
        digest.update(image.tobytes())
        return digest.hexdigest()
    try:
        with open(os.fspath(image), "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def slug(name: str) -> str:
    """A file-name-safe short form of an encoder name.

    >>> slug("sentence-transformers/all-MiniLM-L6-v2")
    'sentence-transformers_all-MiniLM-L6-v2'
    """
    return "".join(c if c.isalnum() or c in "-." else "_" for c in name)[-60:]


def fingerprint(*parts) -> str:
    """A short hash of strings and tensors, used to name an encoder's cache folder."""
    digest = hashlib.sha256(str(CACHE_LAYOUT_VERSION).encode())
    for part in parts:
        if hasattr(part, "detach"):  # raw bytes, any dtype (numpy has no bfloat16)
            digest.update(part.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
                          .numpy().tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()[:20]


def module_code(module: torch.nn.Module) -> str:
    """What stands for a module object's code in its fingerprint: its ``repr`` (layers and
    their settings), and the qualified name and source of every class inside it.

    A class without a source file (defined in an interactive session, or compiled) is
    represented by its name alone; two such classes of the same name with different
    ``forward`` methods would then share cache entries.

    >>> "torch.nn.modules.linear.Linear" in module_code(torch.nn.Linear(2, 2))
    True
    """
    parts = [repr(module)]
    classes = {type(m) for m in module.modules()}
    for cls in sorted(classes, key=lambda c: (c.__module__, c.__qualname__)):
        parts.append(f"{cls.__module__}.{cls.__qualname__}")
        try:
            parts.append(inspect.getsource(cls))
        except (OSError, TypeError):  # no source file to read: the name stands alone
            parts.append("")
    return "\n".join(parts)


class FeatureCache:
    """One encoder output per input, on disk.

    Args:
        root: the cache folder (created on first write).
        encoder_key: folder name for this encoder and output (see module docstring).
        shape: the shape of one entry.
        dtype: the numpy dtype of one entry.

    Examples:
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
        """Store ``value`` for ``key`` atomically (write to a temporary file, then rename)."""
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
