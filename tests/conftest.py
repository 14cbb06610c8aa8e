"""Shared fixtures. Every test runs offline: encoders must come from installed packages."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The feature cache of this test session lives in a fresh folder, not the user's cache.
os.environ.setdefault("MMSENTIMENT_CACHE", __import__("tempfile").mkdtemp(prefix="mms-cache-"))

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

MVSA_ROOT = Path(os.environ.get(
    "MVSA_ROOT", Path(__file__).resolve().parents[1].parent / "shared" / "data" / "MVSA_Single"))


@pytest.fixture(scope="session")
def demo():
    """The built-in demo set as (X, y)."""
    from mmsentiment import load_demo

    return load_demo(return_X_y=True)


@pytest.fixture(scope="session")
def small(demo):
    """A stratified 36-post slice of the demo set (12 per class), as (X, y)."""
    X, y = demo
    idx = np.concatenate([np.flatnonzero(y == c)[:12] for c in np.unique(y)])
    idx = np.sort(idx)
    return X.iloc[idx].reset_index(drop=True), y[idx]


@pytest.fixture(scope="session")
def mvsa_root():
    """The MVSA-Single folder, or a skip where this machine does not have it."""
    if not (MVSA_ROOT / "labelResultAll.txt").is_file():
        pytest.skip(f"MVSA-Single not found at {MVSA_ROOT} (set MVSA_ROOT to its folder)")
    return MVSA_ROOT


@pytest.fixture
def image_file(tmp_path):
    """Write an RGB test image and return its path."""
    def make(name: str = "img.png", color=(200, 30, 30), size=(40, 30)) -> str:
        path = tmp_path / name
        Image.new("RGB", size, color).save(path)
        return str(path)
    return make
