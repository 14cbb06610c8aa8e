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


class _FolderHandler(__import__("http.server").server.SimpleHTTPRequestHandler):
    """Serves a folder, plus ``/slow`` (answers after a second), ``/endless`` (bytes with
    no announced length, until the client stops reading) and ``/redirect?to=URL``."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        import time
        from urllib.parse import parse_qs, urlsplit

        url = urlsplit(self.path)
        if url.path == "/slow":
            time.sleep(1.0)
        elif url.path == "/endless":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            try:
                for _ in range(10_000):  # at most 640 MB, long after any client stopped
                    self.wfile.write(b"\0" * 65536)
            except OSError:  # the client hung up: what a bounded reader does
                pass
            return
        elif url.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(url.query)["to"][0])
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        return


@pytest.fixture(scope="session")
def http_folder(tmp_path_factory):
    """A real HTTP server on 127.0.0.1 (a free port) serving a fresh folder.

    Returns ``(folder, base_url)``: a file written to ``folder / name`` is served at
    ``f"{base_url}/{name}"``.
    """
    import functools
    import threading
    from http.server import ThreadingHTTPServer

    folder = tmp_path_factory.mktemp("served")
    handler = functools.partial(_FolderHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
