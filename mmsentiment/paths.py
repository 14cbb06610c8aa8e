"""Files and folders: where per-user files live, and opening a file that a user names."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs


def default_cache_dir() -> Path:
    """The per-user cache folder.

    ``$MMSENTIMENT_CACHE`` where it is set, else the platform's user cache folder for
    ``mmsentiment`` as `platformdirs` finds it: on Linux ``$XDG_CACHE_HOME/mmsentiment``, else
    ``~/.cache/mmsentiment``; on macOS ``~/Library/Caches/mmsentiment``; on Windows
    ``mmsentiment\\Cache`` under ``%LOCALAPPDATA%``.

    Returns
    -------
    folder : pathlib.Path
        The folder; it is created on first write, not here.
    """
    if os.environ.get("MMSENTIMENT_CACHE"):
        return Path(os.environ["MMSENTIMENT_CACHE"]).expanduser()
    return Path(platformdirs.user_cache_dir("mmsentiment", appauthor=False))


# Images larger than this are refused before they are read (a photo is a few MB).
MAX_FILE_BYTES = 64 << 20


def open_regular_file(path, max_bytes: int = MAX_FILE_BYTES):
    """Open a regular file for reading, refusing anything else before reading a byte.

    A FIFO, a device such as ``/dev/zero``, a socket or a folder would block or never end;
    a file above ``max_bytes`` would exhaust memory. Opening does not block on a FIFO.

    Parameters
    ----------
    path : str or path-like
        The file (symbolic links are followed).
    max_bytes : int, default=MAX_FILE_BYTES
        Largest size accepted.

    Returns
    -------
    file object
        Opened in binary mode; close it (or use it in a ``with`` block).

    Raises
    ------
    OSError
        Where the file cannot be opened (missing, no permission).
    ValueError
        For anything but a regular file, an empty file, or one above ``max_bytes``.

    Examples
    --------
    >>> open_regular_file("/dev/zero")
    Traceback (most recent call last):
    ...
    ValueError: /dev/zero is not a regular file (a device, FIFO, socket or folder)
    """
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{os.fspath(path)} is not a regular file (a device, FIFO, "
                             "socket or folder)")
        if info.st_size == 0:
            raise ValueError(f"{os.fspath(path)} is an empty file")
        if info.st_size > max_bytes:
            raise ValueError(f"{os.fspath(path)} has {info.st_size} bytes, above the limit of "
                             f"{max_bytes}")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")
