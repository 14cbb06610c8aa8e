"""Images from URLs: a real local HTTP server and fsspec's memory file system."""

from __future__ import annotations

import re
import shutil
import socket
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mmsentiment import MultimodalSentimentClassifier, validate
from mmsentiment.cli_files import read_table
from mmsentiment.encoders import ImageEncoder, ImagePreprocessing
from mmsentiment.hashing import image_key
from mmsentiment.inputs import load_image, load_images
from mmsentiment.inputs import remote as remote_module
from mmsentiment.inputs.features import image_features
from mmsentiment.inputs.remote import RemoteImageError, is_url, read_url

PREP = ImagePreprocessing(size=32, crop_pct=0.875, mean=(0.5,) * 3, std=(0.5,) * 3)


def refused_url() -> str:
    """A URL on a port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/a.jpg"


@pytest.fixture(scope="module")
def served(http_folder):
    """A JPEG, a PNG and a text file named .jpg in the served folder, with their URLs."""
    folder, base = http_folder
    Image.new("RGB", (64, 48), (200, 40, 10)).save(folder / "red.jpg", quality=90)
    Image.new("RGBA", (30, 50), (10, 40, 200, 128)).save(folder / "blue.png")
    (folder / "text.jpg").write_text("this is not an image")
    return folder, base


def test_urls_are_told_from_paths(tmp_path):
    assert is_url("https://example.org/a.jpg") and is_url(" s3://bucket/a.jpg")
    absolute = str(tmp_path / "a.jpg")
    assert not any(map(is_url, ["a.jpg", absolute, "C:\\x\\a.jpg", None, 3]))


def test_url_pixels_equal_the_local_files(served):
    folder, base = served
    for name in ("red.jpg", "blue.png"):
        assert np.array_equal(load_image(f"{base}/{name}", PREP),
                              load_image(str(folder / name), PREP))
    pixels, present, failures = load_images([f"{base}/red.jpg", None, str(folder / "blue.png")],
                                            PREP)
    assert present.tolist() == [True, False, True] and not failures
    assert torch.equal(pixels[0], torch.from_numpy(load_image(str(folder / "red.jpg"), PREP)))


@pytest.mark.parametrize("case, reason", [
    ("missing", r"HTTP 404"),
    ("text", r"UnidentifiedImageError"),
    ("refused", r"cannot connect"),
    ("redirect_to_file", r"Redirection to url 'file:.*' is not allowed"),  # urllib's check
    ("redirect_to_ftp", r"redirected to 'ftp:.*', which is not an http\(s\) URL"),  # ours
    ("file_url", r"file:// URLs are not read"),
    ("unknown_protocol", r"no protocol 'nosuchproto'"),
])
def test_each_download_failure_has_its_reason(served, case, reason):
    folder, base = served
    url = {"missing": f"{base}/nope.jpg", "text": f"{base}/text.jpg", "refused": refused_url(),
           "redirect_to_file": f"{base}/redirect?to=file://{folder}/red.jpg",
           "redirect_to_ftp": f"{base}/redirect?to=ftp://127.0.0.1/red.jpg",
           "file_url": f"file://{folder}/red.jpg",
           "unknown_protocol": "nosuchproto://x/a.jpg"}[case]
    _, present, failures = load_images([str(folder / "red.jpg"), url], PREP)
    assert present.tolist() == [True, False]
    assert [f[:2] for f in failures] == [(1, url)]
    assert re.search(reason, failures[0][2])


def test_redirects_to_http_are_followed(served):
    folder, base = served
    url = f"{base}/redirect?to={base}/red.jpg"
    assert np.array_equal(load_image(url, PREP), load_image(str(folder / "red.jpg"), PREP))


def test_oversize_responses_are_refused(served, monkeypatch):
    folder, base = served
    size = (folder / "red.jpg").stat().st_size
    monkeypatch.setattr("mmsentiment.paths.MAX_FILE_BYTES", size - 1)
    with pytest.raises(RemoteImageError, match=f"{size} bytes, above the limit of {size - 1}"):
        read_url(f"{base}/red.jpg")  # refused on its Content-Length, before the body
    _, present, failures = load_images([f"{base}/red.jpg"], PREP)
    assert not present.any() and "above the limit" in failures[0][2]
    monkeypatch.setattr("mmsentiment.paths.MAX_FILE_BYTES", size)
    assert len(read_url(f"{base}/red.jpg")) == size  # exactly the limit is fine


def test_a_body_without_length_is_cut_at_the_limit(served):
    _, base = served
    with pytest.raises(RemoteImageError, match="more bytes, above the limit of 100000"):
        read_url(f"{base}/endless", max_bytes=100_000)


def test_a_slow_server_times_out(served, monkeypatch):
    _, base = served
    monkeypatch.setattr(remote_module, "HTTP_TIMEOUT", 0.2)
    _, present, failures = load_images([f"{base}/slow"], PREP)
    assert not present.any() and "no answer within 0.2 s" in failures[0][2]


def test_url_content_keys_the_cache(served, tmp_path):
    folder, base = served
    Image.new("RGB", (40, 40), (0, 255, 0)).save(folder / "changing.png")
    url = f"{base}/changing.png"
    assert image_key(url) == image_key(str(folder / "changing.png"))
    assert image_key(f"{base}/nope.png") is None
    encoder = ImageEncoder(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                               torch.nn.AdaptiveAvgPool2d(1),
                                               torch.nn.Flatten())).eval()
    first, present = image_features(encoder, [url], tmp_path, encoder.cache_key())
    Image.new("RGB", (40, 40), (255, 0, 255)).save(folder / "changing.png")  # new content
    second, _ = image_features(encoder, [url], tmp_path, encoder.cache_key())
    local, _ = image_features(encoder, [str(folder / "changing.png")], None, None)
    assert present.all() and not torch.equal(first, second)  # no stale entry
    assert torch.allclose(second, local)


def test_memory_fsspec_urls_load(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    path = tmp_path / "m.png"
    Image.new("RGB", (50, 50), (1, 2, 3)).save(path)
    with fsspec.open("memory://mms-test/m.png", "wb") as fh:
        fh.write(path.read_bytes())
    assert np.array_equal(load_image("memory://mms-test/m.png", PREP), load_image(path, PREP))
    _, present, failures = load_images(["memory://mms-test/gone.png"], PREP)
    assert not present.any() and "FileNotFoundError" in failures[0][2]
    with pytest.raises(RemoteImageError, match="above the limit of 10"):
        read_url("memory://mms-test/m.png", max_bytes=10)


def test_validate_and_cli_leave_urls_alone(served, tmp_path):
    folder, base = served
    X = pd.DataFrame({"text": ["a", "b", "c"],
                      "image_path": [f"{base}/red.jpg", f"{base}/nope.jpg", f"{base}/text.jpg"]})
    report = validate(X)
    kinds = {p.kind: p.rows for p in report.problems}
    assert kinds["unreachable_image"] == [1] and kinds["unreadable_image"] == [2]
    assert "missing_image_file" not in kinds and not report.ok
    assert not validate(X, check_images=False).problems
    X.to_csv(tmp_path / "posts.csv", index=False)
    assert read_table(tmp_path / "posts.csv", "image_path")["image_path"].tolist() == \
        X["image_path"].tolist()  # URLs are not made into paths under the data folder


@pytest.fixture(scope="module")
def url_posts(small, http_folder):
    """The small fixture's posts with their images served over HTTP, and its labels."""
    folder, base = http_folder
    X, y = small
    urls = []
    for path in X["image_path"]:
        shutil.copy(path, folder / f"demo-{path.rsplit('/', 1)[-1]}")
        urls.append(f"{base}/demo-{path.rsplit('/', 1)[-1]}")
    return X.assign(image_path=urls), y


def test_fit_and_predict_on_urls_match_local_files(small, url_posts, tmp_path):
    X, y = small
    X_url, _ = url_posts
    params = {"finetune": "frozen", "max_epochs": 1, "random_state": 0, "verbose": 0}
    local = MultimodalSentimentClassifier(cache_dir=tmp_path / "local", **params).fit(X, y)
    by_url = MultimodalSentimentClassifier(cache_dir=tmp_path / "url", **params).fit(X_url, y)
    expected = local.predict_proba(X)
    assert np.allclose(by_url.predict_proba(X), expected, atol=1e-6)
    assert np.allclose(local.predict_proba(X_url), expected, atol=1e-6)

    bad = X_url.iloc[:3].copy()
    bad.iloc[1, 1] = bad.iloc[1, 1].replace("demo-", "gone-")
    with pytest.raises(ValueError, match=r"1 image\(s\) could not be read: row 1 .*HTTP 404"):
        local.predict_proba(bad)
    local.set_params(on_bad_image="blank")
    local.attach_module(local.net_.module_, "cpu")
    with pytest.warns(UserWarning, match="treated as missing"):
        blank = local.predict_proba(bad)
    without = local.predict_proba(bad.assign(image_path=[bad.iloc[0, 1], None, bad.iloc[2, 1]]))
    assert np.allclose(blank, without, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the good rows raise no warning
        assert np.allclose(local.predict_proba(X_url.iloc[[0, 2]]), blank[[0, 2]], atol=1e-6)
