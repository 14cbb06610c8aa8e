"""Where mmsentiment keeps per-user files (the feature cache, unpacked encoder weights)."""

from __future__ import annotations

import os
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
