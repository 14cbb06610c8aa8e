"""The HTTP server: a real uvicorn server in a thread, a real HTTP client."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from mmsentiment import MultimodalSentimentClassifier  # noqa: E402
from mmsentiment.cli import main  # noqa: E402
from mmsentiment.cli_files import load_model  # noqa: E402
from mmsentiment.serve import Refused, create_app, resolve_beneath  # noqa: E402


@contextlib.contextmanager
def running(app):
    """``app`` served by uvicorn on a free port of 127.0.0.1; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def model(small, tmp_path_factory):
    """A frozen model fitted on the small set, saved, and loaded back as the CLI does."""
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=1, random_state=0,
                                        verbose=0).fit(X, y)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    clf.save(path)
    return clf, path


@pytest.fixture(scope="module")
def root(small, tmp_path_factory):
    """An image root holding the small set's images, a file outside it and a link out."""
    X, _ = small
    base = tmp_path_factory.mktemp("serve")
    folder = base / "images"
    (folder / "sub").mkdir(parents=True)
    for path in X["image_path"]:
        shutil.copy(path, folder / Path(path).name)
    shutil.copy(X["image_path"][0], base / "secret.jpg")
    os.symlink(base / "secret.jpg", folder / "link-out.jpg")
    os.symlink(folder / Path(X["image_path"][1]).name, folder / "sub" / "link-in.jpg")
    return folder


@pytest.fixture(scope="module")
def server(model, root, http_folder):
    """A server with every image field enabled and small limits."""
    app = create_app(load_model(model[1]), image_root=root, allow_urls=True,
                     max_body_bytes=100_000, max_posts=40)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def closed_server(model):
    """A server with the defaults: no image_path, no image_url."""
    with running(create_app(model[0])) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def probabilities(answers, classes):
    return np.array([[a["probabilities"][str(c)] for c in classes] for a in answers])


def test_predictions_equal_predict_proba(server, model, small):
    clf, _ = model
    X, _ = small
    posts = [{"text": t, "image_path": Path(p).name} for t, p in zip(X["text"], X["image_path"])]
    posts[3] = {"text": X["text"][3]}  # no image
    posts[4] = {"image_path": Path(X["image_path"][4]).name}  # no text
    expected = clf.predict_proba(X.assign(
        text=[None if i == 4 else t for i, t in enumerate(X["text"])],
        image_path=[None if i == 3 else p for i, p in enumerate(X["image_path"])]))
    response = server.post("/predict", json=posts)
    assert response.status_code == 200, response.text
    answers = response.json()
    assert len(answers) == len(X)
    assert np.allclose(probabilities(answers, clf.classes_), expected, atol=1e-6, rtol=0)
    assert [a["label"] for a in answers] == list(clf.classes_[expected.argmax(axis=1)])
    assert server.post("/predict", json=[]).json() == []


def test_base64_and_url_images_equal_the_file(server, model, small, http_folder):
    clf, _ = model
    X, _ = small
    path = X["image_path"][5]
    expected = clf.predict_proba(X.iloc[[5]])
    folder, base = http_folder
    shutil.copy(path, folder / "served.jpg")
    data = base64.b64encode(Path(path).read_bytes()).decode()
    posts = [{"text": X["text"][5], "image_base64": data},
             {"text": X["text"][5], "image_base64": "data:image/jpeg;base64," + data},
             {"text": X["text"][5], "image_url": f"{base}/served.jpg"}]
    response = server.post("/predict", json=posts)
    assert response.status_code == 200, response.text
    for answer in response.json():
        assert np.allclose(probabilities([answer], clf.classes_), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name, reason", [
    ("../secret.jpg", "may not contain '..'"),
    ("sub/../../secret.jpg", "may not contain '..'"),
    ("ABSOLUTE", "not absolute"),
    ("link-out.jpg", "leads out of the server's image root"),
])
def test_paths_out_of_the_root_are_refused(server, root, name, reason):
    name = str(root.parent / "secret.jpg") if name == "ABSOLUTE" else name
    response = server.post("/predict", json=[{"text": "fine", "image_path": "sub/link-in.jpg"},
                                             {"text": "sly", "image_path": name}])
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert [d["post"] for d in detail] == [1] and reason in detail[0]["reason"]


def test_a_link_that_stays_inside_the_root_is_read(server, model, small):
    clf, _ = model
    X, _ = small
    answer = server.post("/predict", json=[{"text": X["text"][1],
                                            "image_path": "sub/link-in.jpg"}]).json()
    assert np.allclose(probabilities(answer, clf.classes_), clf.predict_proba(X.iloc[[1]]),
                       atol=1e-6, rtol=0)


def test_the_closed_server_refuses_paths_and_urls(closed_server, small, http_folder):
    X, _ = small
    _, base = http_folder
    response = closed_server.post("/predict", json=[
        {"text": "a", "image_path": Path(X["image_path"][0]).name},
        {"text": "b", "image_url": f"{base}/served.jpg"},
        {"text": "c"}])
    assert response.status_code == 403
    reasons = {d["post"]: d["reason"] for d in response.json()["detail"]}
    assert "--image-root" in reasons[0] and "--allow-urls" in reasons[1] and 2 not in reasons
    health = closed_server.get("/health").json()
    assert health["accepts"] == {"image_path": False, "image_url": False, "image_base64": True}


def test_only_http_urls_and_one_image_field(server, root):
    response = server.post("/predict", json=[
        {"text": "a", "image_url": f"file://{root}/link-in.jpg"},
        {"text": "b", "image_path": "x.jpg", "image_base64": "AAAA"}])
    reasons = {d["post"]: d["reason"] for d in response.json()["detail"]}
    assert response.status_code == 403
    assert "http:// or https://" in reasons[0] and "one image field at most" in reasons[1]


def test_bad_images_follow_the_policy(server, model, http_folder, small):
    clf, path = model
    X, _ = small
    _, base = http_folder
    posts = [{"text": "fine", "image_path": "missing.jpg"},
             {"text": "fine", "image_url": f"{base}/nope.jpg"},
             {"text": "fine", "image_base64": base64.b64encode(b"not an image").decode()},
             {"text": "fine", "image_base64": "@@@"},
             {"text": X["text"][0], "image_path": Path(X["image_path"][0]).name}]
    response = server.post("/predict", json=posts)
    assert response.status_code == 422
    reasons = {d["post"]: d["reason"] for d in response.json()["detail"]}
    assert sorted(reasons) == [0, 1, 2, 3]
    assert "FileNotFoundError" in reasons[0] and "<image root>" in reasons[0]
    assert str(Path(path).parent) not in str(reasons)
    assert "HTTP 404" in reasons[1] and "UnidentifiedImageError" in reasons[2]
    assert "not valid base64" in reasons[3]
    with running(create_app(clf, on_bad_image="blank", allow_urls=True)) as url:
        answers = httpx.post(f"{url}/predict", json=posts[1:4], timeout=60).json()
    text_only = clf.predict_proba(pd.DataFrame({"text": ["fine"], "image_path": [None]}))
    assert np.allclose(probabilities(answers, clf.classes_), text_only, atol=1e-6, rtol=0)
    assert "HTTP 404" in answers[0]["image_error"]


def test_size_limits(server, model):
    response = server.post("/predict", content=b"[" + b" " * 150_000 + b"]",
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and "above the limit of 100000" in response.text

    def chunks():  # no Content-Length: the limit applies while reading
        for _ in range(20):
            yield b" " * 10_000

    response = server.post("/predict", content=chunks(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and "more bytes" in response.text
    response = server.post("/predict", json=[{"text": "x"}] * 41)
    assert response.status_code == 413 and "41 posts" in response.text
    assert server.post("/predict", json=[{"text": "x"}] * 40).status_code == 200

    big = base64.b64encode(b"\0" * 60_000).decode()  # refused before it is decoded
    with running(create_app(model[0], max_image_bytes=50_000)) as url:
        response = httpx.post(f"{url}/predict", json=[{"text": "x", "image_base64": big}],
                              timeout=60)
    assert response.status_code == 422
    assert "would exceed 50000 bytes" in response.json()["detail"][0]["reason"]


def test_bad_json_and_bad_fields(server):
    response = server.post("/predict", content=b"[{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and "json_invalid" in response.text
    assert server.post("/predict", json={"text": "not a list"}).status_code == 422
    assert server.post("/predict", json=[{"txt": "typo"}]).status_code == 422
    assert server.post("/predict", json=[{"text": 3}]).status_code == 422


def test_health(server, model):
    clf, _ = model
    health = server.get("/health").json()
    assert health["status"] == "ok" and health["classes"] == list(clf.classes_)
    assert health["accepts"]["image_path"] and health["accepts"]["image_url"]
    assert health["max_posts"] == 40 and health["max_body_bytes"] == 100_000


def test_resolve_beneath_refuses_each_escape(tmp_path):
    root = tmp_path.resolve()
    for name in ["", "/etc/passwd", "C:\\x.jpg", "\\\\host\\share\\x.jpg", "a/../b.jpg",
                 "..\\x.jpg", "bad\0name"]:
        with pytest.raises(Refused):
            resolve_beneath(root, name)
    assert resolve_beneath(root, "a b/c.jpg") == root / "a b" / "c.jpg"


def test_cli_serve_without_fastapi_names_the_extra(monkeypatch, model, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi now fails
    assert main(["serve", str(model[1])]) == 1
    err = capsys.readouterr().err
    assert 'pip install "mmsentiment[serve]"' in err and "Traceback" not in err


def test_cli_serve_parses_its_options(monkeypatch, model, root):
    seen = {}
    monkeypatch.setattr("mmsentiment.serve.run",
                        lambda app, host, port: seen.update(app=app, host=host, port=port))
    assert main(["serve", str(model[1]), "--port", "8123", "--image-root", str(root),
                 "--allow-urls", "--max-posts", "7", "--device", "cpu"]) == 0
    assert seen["port"] == 8123 and seen["host"] == "127.0.0.1"
    with running(seen["app"]) as url:
        health = httpx.get(f"{url}/health").json()
    assert health["max_posts"] == 7 and health["accepts"]["image_url"]
