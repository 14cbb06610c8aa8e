"""An HTTP server for a fitted model: ``POST /predict`` and ``GET /health`` (FastAPI).

`create_app` builds the application around a fitted classifier; ``mmsentiment serve``
(`serve_command`) loads a model file and runs it with uvicorn. Both need the ``serve``
extra: ``pip install "mmsentiment[serve]"``.

What a request may make the server read is what the operator offered, nothing more:

- ``image_base64``: always accepted, at most ``max_image_bytes`` once decoded;
- ``image_path``: only with ``image_root``, as a relative path that stays beneath it once
  every symbolic link is resolved (no absolute paths, no ``..``);
- ``image_url``: only with ``allow_urls``, and only ``http(s)://``
  (`mmsentiment.inputs.remote.read_url`, at most ``max_image_bytes``).

A post that asks for more is refused (403) before any image of the request is read.
Images that cannot be read follow ``on_bad_image``: ``"raise"`` answers 422 naming every such
post and its reason; ``"blank"`` predicts those posts without their image and says why in
their ``image_error``. Bodies over ``max_body_bytes`` are refused (413) after reading at most
``max_body_bytes`` bytes (none where the ``Content-Length`` says so), and so are requests
of more than ``max_posts`` posts.
"""

# No "from __future__ import annotations": FastAPI reads the endpoints' annotations, whose
# classes are made inside create_app.

import base64
import binascii
import json
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath, PureWindowsPath

import pandas as pd

from . import paths
from .inputs.images import IMAGE_POLICIES, load_images
from .inputs.remote import HTTP_SCHEMES, RemoteImageError, read_url, url_scheme
from .version import __version__

DEFAULT_MAX_BODY_BYTES = 16 << 20
DEFAULT_MAX_POSTS = 256
INSTALL_HINT = 'pip install "mmsentiment[serve]" (FastAPI and uvicorn)'
IMAGE_FIELDS = ("image_path", "image_url", "image_base64")


class Refused(Exception):
    """A post asks for an image the server does not offer (answered 403)."""


class BadImage(Exception):
    """A post's image cannot be read (``on_bad_image`` applies)."""


def require_fastapi():
    """FastAPI and pydantic, checking that uvicorn is there too.

    Raises
    ------
    ImportError
        Naming the extra to install, where any of them is missing.
    """
    try:
        import fastapi
        import pydantic
        import uvicorn  # noqa: F401 - checked here, used by serve_command
    except ImportError as exc:
        raise ImportError(f"serving needs the 'serve' extra: {INSTALL_HINT} ({exc})") from None
    return fastapi, pydantic


# ---------------------------------------------------------------------------- images
def resolve_beneath(root: Path, name: str) -> Path:
    """The file that a relative ``image_path`` names beneath ``root``.

    Parameters
    ----------
    root : pathlib.Path
        The image root, already resolved.
    name : str
        The path a request gave.

    Returns
    -------
    path : pathlib.Path
        The resolved path (every symbolic link followed); it may not exist.

    Raises
    ------
    Refused
        For an empty or absolute path, one with a ``..`` part, or one that leads out of
        ``root`` through a symbolic link.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()).resolve()
    >>> resolve_beneath(root, "a/b.jpg") == root / "a" / "b.jpg"
    True
    >>> resolve_beneath(root, "../etc/passwd")
    Traceback (most recent call last):
    ...
    mmsentiment.serve.Refused: image_path may not contain '..'
    """
    if not name or "\0" in name:
        raise Refused("image_path is empty or holds a NUL character")
    windows = PureWindowsPath(name)  # "C:x" and "\\x" are refused on every system
    if PurePosixPath(name).is_absolute() or windows.drive or windows.root:
        raise Refused("image_path must be relative to the server's image root, not absolute")
    if ".." in PurePosixPath(name).parts or ".." in windows.parts:
        raise Refused("image_path may not contain '..'")
    try:
        path = (root / name).resolve()
    except (OSError, RuntimeError) as exc:  # a loop of symbolic links
        raise Refused(f"image_path cannot be resolved ({exc})") from None
    if not path.is_relative_to(root):
        raise Refused("image_path leads out of the server's image root (a symbolic link)")
    return path


def _decode_base64(text: str, limit: int) -> bytes:
    if text.startswith("data:"):  # a data URL: data:image/png;base64,....
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise BadImage("a data URL must be base64-encoded (data:...;base64,...)")
    text = "".join(text.split())
    if len(text) > 4 * (limit // 3 + 1):  # refused before decoding a byte
        raise BadImage(f"the decoded image would exceed {limit} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadImage(f"image_base64 is not valid base64 ({exc})") from None
    if not data:
        raise BadImage("image_base64 is empty")
    if len(data) > limit:
        raise BadImage(f"the decoded image has {len(data)} bytes, above the limit of {limit}")
    return data


class _Images:
    """What the server offers: turns each post's image field into a local file to decode."""

    def __init__(self, root: Path | None, allow_urls: bool, max_image_bytes: int) -> None:
        self.root, self.allow_urls, self.max_image_bytes = root, allow_urls, max_image_bytes

    def check(self, post) -> tuple[str, str] | None:
        """``(field, value)`` of the post's image, or None; `Refused` for what is not offered."""
        given = [(f, getattr(post, f)) for f in IMAGE_FIELDS if getattr(post, f) is not None]
        if len(given) > 1:
            raise Refused(f"a post has one image field at most; got {[f for f, _ in given]}")
        if not given:
            return None
        field, value = given[0]
        if field == "image_path":
            if self.root is None:
                raise Refused("image_path is not accepted: the server was started without "
                              "--image-root")
            return field, str(resolve_beneath(self.root, value))
        if field == "image_url":
            if not self.allow_urls:
                raise Refused("image_url is not accepted: the server was started without "
                              "--allow-urls")
            if url_scheme(value) not in HTTP_SCHEMES:
                raise Refused("image_url must be an http:// or https:// URL")
        return field, value

    def fetch(self, field: str, value: str, folder: str, i: int) -> str:
        """A local file holding the image (`BadImage` where it cannot be had)."""
        if field == "image_path":
            size = os.stat(value).st_size if os.path.isfile(value) else 0
            if size > self.max_image_bytes:
                raise BadImage(f"{size} bytes, above the limit of {self.max_image_bytes} "
                               "(--max-image-bytes)")
            return value
        if field == "image_url":
            try:
                data = read_url(value, max_bytes=self.max_image_bytes)
            except RemoteImageError as exc:
                raise BadImage(str(exc)) from None
        else:
            data = _decode_base64(value, self.max_image_bytes)
        path = os.path.join(folder, f"post-{i}")
        with open(path, "wb") as fh:
            fh.write(data)
        return path

    def shown(self, reason: str) -> str:
        """A reason without the server's own folders."""
        if self.root is not None:
            reason = reason.replace(str(self.root), "<image root>")
        return reason.replace(tempfile.gettempdir(), "<upload>")


# ---------------------------------------------------------------------------- body limit
class BodyLimit:
    """ASGI middleware: answer 413 to a request whose body exceeds ``max_bytes``.

    A ``Content-Length`` above the limit is answered before any of the body is read; a body
    without one is read until it passes the limit, and no further.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, int(length))
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send, None)
                return
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send, length: int | None) -> None:
        size = f"{length} bytes" if length is not None else "more bytes"
        payload = json.dumps({"detail": f"the request body has {size}, above the limit of "
                                        f"{self.max_bytes} (--max-body-bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


# ---------------------------------------------------------------------------- the app
def _post_model(pydantic):
    class Post(pydantic.BaseModel):
        """One post: a text, and at most one image field (none for a post without one)."""

        model_config = pydantic.ConfigDict(extra="forbid")
        text: str | None = None
        image_path: str | None = None
        image_url: str | None = None
        image_base64: str | None = None

    return Post


def _plain(value):
    """A class label as JSON has it (numpy scalars become Python ones)."""
    return value.item() if hasattr(value, "item") else value


def create_app(clf, *, image_root=None, allow_urls: bool = False, on_bad_image: str = "raise",
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_posts: int = DEFAULT_MAX_POSTS, max_image_bytes: int | None = None):
    """The FastAPI application serving a fitted classifier.

    Parameters
    ----------
    clf : MultimodalSentimentClassifier
        A fitted model (predictions run one request at a time).
    image_root : str, path-like or None, default=None
        The folder that ``image_path`` fields are read beneath; ``None`` refuses them.
    allow_urls : bool, default=False
        Download ``image_url`` fields (``http(s)://`` only). Clients then make the server
        fetch any URL it can reach, its own network's included.
    on_bad_image : {"raise", "blank"}, default="raise"
        Images that cannot be read: answer 422 naming the posts, or predict those posts
        without their image (their entry then holds ``image_error``).
    max_body_bytes : int, default=16 MiB
        Largest request body; a larger one is answered 413.
    max_posts : int, default=256
        Most posts per request; more are answered 413.
    max_image_bytes : int or None, default=None
        Largest image (a file, a download or decoded base64); ``None`` for
        `mmsentiment.paths.MAX_FILE_BYTES`. Pixels are bounded by
        ``PIL.Image.MAX_IMAGE_PIXELS``.

    Returns
    -------
    fastapi.FastAPI
        Run it with uvicorn, or test it with any HTTP client.

    Raises
    ------
    ImportError
        Where FastAPI is not installed (the ``serve`` extra).
    ValueError
        For an unknown ``on_bad_image``, limits below 1, or an ``image_root`` that is not
        a folder.
    """
    from sklearn.utils.validation import check_is_fitted

    fastapi, pydantic = require_fastapi()
    check_is_fitted(clf, "net_")
    if on_bad_image not in IMAGE_POLICIES:
        raise ValueError(f"on_bad_image must be one of {IMAGE_POLICIES}, got {on_bad_image!r}")
    limit = paths.MAX_FILE_BYTES if max_image_bytes is None else int(max_image_bytes)
    if min(max_body_bytes, max_posts, limit) < 1:
        raise ValueError("max_body_bytes, max_posts and max_image_bytes must be at least 1")
    root = None
    if image_root is not None:
        root = Path(image_root).expanduser().resolve()
        if not root.is_dir():
            raise ValueError(f"image_root {image_root} is not a folder")
    images = _Images(root, allow_urls, limit)
    Post = _post_model(pydantic)  # noqa: N806 - a class
    lock = threading.Lock()
    classes = [_plain(c) for c in clf.classes_]
    columns = list(getattr(clf, "feature_names_in_", [clf.text_column, clf.image_column]))
    prep = clf.net_.module_.image_encoder.preprocessing

    app = fastapi.FastAPI(title="mmsentiment", version=__version__,
                          description="Text + image sentiment of posts, from a fitted "
                                      "MultimodalSentimentClassifier.")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.get("/health")
    def health() -> dict:
        """The model's classes and encoders, and what the server accepts."""
        return {"status": "ok", "version": __version__, "classes": classes,
                "text_encoder": str(clf.text_encoder), "image_encoder": str(clf.image_encoder),
                "accepts": {"image_path": root is not None, "image_url": allow_urls,
                            "image_base64": True},
                "on_bad_image": on_bad_image, "max_posts": max_posts,
                "max_body_bytes": max_body_bytes, "max_image_bytes": limit}

    @app.post("/predict")
    def predict(posts: list[Post]) -> list[dict]:
        """The label and class probabilities of each post, in order."""
        if len(posts) > max_posts:
            raise fastapi.HTTPException(413, f"{len(posts)} posts, above the limit of "
                                             f"{max_posts} per request (--max-posts)")
        wanted, refused = {}, []
        for i, post in enumerate(posts):
            try:
                wanted[i] = images.check(post)
            except Refused as exc:
                refused.append({"post": i, "reason": str(exc)})
        if refused:  # nothing of the request is read
            raise fastapi.HTTPException(403, refused)
        with tempfile.TemporaryDirectory(prefix="mmsentiment-serve-") as folder:
            sources, failures = _read_images(images, wanted, folder, prep)
            if failures and on_bad_image == "raise":
                raise fastapi.HTTPException(422, [{"post": i, "reason": images.shown(r)}
                                                  for i, r in sorted(failures.items())])
            if not posts:
                return []
            X = pd.DataFrame({clf.text_column: [p.text for p in posts],
                              clf.image_column: [sources.get(i) for i in range(len(posts))]})
            try:
                with lock:
                    proba = clf.predict_proba(X[columns])
            except ValueError as exc:  # texts that are not valid Unicode, ...
                raise fastapi.HTTPException(422, str(exc)) from None
        answers = []
        for i, row in enumerate(proba):
            answer = {"label": classes[int(row.argmax())],
                      "probabilities": {str(c): float(p) for c, p in zip(classes, row)}}
            if i in failures:
                answer["image_error"] = images.shown(failures[i])
            answers.append(answer)
        return answers

    return app


def _read_images(images: _Images, wanted: dict, folder: str, prep
                 ) -> tuple[dict[int, str], dict[int, str]]:
    """Each post's image as a local file that decodes, and each failure's reason, by post.

    Images are fetched in threads, then decoded once as the model will (`load_images`),
    so that every unreadable image is named with its post before the model runs.
    """
    fetched, failures = {}, {}

    def fetch(item):
        i, (field, value) = item
        try:
            fetched[i] = images.fetch(field, value, folder, i)
        except BadImage as exc:
            failures[i] = f"{field}: {exc}"

    todo = [(i, w) for i, w in wanted.items() if w is not None]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fetch, todo))
    order = sorted(fetched)
    _, ok, failed = load_images([fetched[i] for i in order], prep)
    for j, _, reason in failed:
        failures[order[j]] = f"{wanted[order[j]][0]}: {reason}"
    sources = {i: fetched[i] for j, i in enumerate(order) if ok[j]}
    return sources, failures


def run(app, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``app`` with uvicorn until interrupted (Ctrl-C stops it gracefully)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")
