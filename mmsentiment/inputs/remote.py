"""Images named by URL: downloaded over HTTP(S) or read through fsspec, within limits.

An image value that is a string starting with ``scheme://`` is a URL:

- ``http://`` and ``https://`` are downloaded with the standard library (no extra package),
  within `HTTP_TIMEOUT` seconds, following at most `MAX_REDIRECTS` redirects, and only to
  other ``http(s)`` URLs;
- any other scheme (``s3://``, ``gs://``, ``memory://``, ...) is read through
  `fsspec <https://filesystem-spec.readthedocs.io>`_, where fsspec and the scheme's backend
  package (``s3fs``, ``gcsfs``, ...) are installed;
- ``file://`` and ``local://`` are refused, as are chained fsspec URLs (``a::b://``): a
  local file is named by its plain path.

At most `mmsentiment.paths.MAX_FILE_BYTES` bytes are read (a larger image is refused after
reading no more than one byte beyond the limit, or before any byte where the size is
announced). A URL that cannot be read raises `RemoteImageError`, an ``OSError`` like a
missing file, so that ``on_bad_image`` treats it as any unreadable image.
"""

from __future__ import annotations

import http.client
import io
import re
import time
import urllib.error
import urllib.request
from typing import BinaryIO

from .. import paths
from ..version import __version__

URL_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
HTTP_SCHEMES = ("http", "https")
# Schemes that would read this machine's files: a local file is named by its path.
LOCAL_SCHEMES = ("file", "local")
# Seconds for connecting, for each read, and for the whole download.
HTTP_TIMEOUT = 30.0
MAX_REDIRECTS = 5
CHUNK_BYTES = 1 << 16


class RemoteImageError(OSError):
    """An image URL that could not be read: refused, unreachable, an HTTP error, a timeout,
    or more bytes than allowed."""


def url_scheme(value) -> str | None:
    """The scheme of a URL string, in lower case; ``None`` for anything else.

    Parameters
    ----------
    value : object
        An image value: a path, a URL, a PIL image, ...

    Returns
    -------
    scheme : str or None

    Examples
    --------
    >>> url_scheme("HTTPS://example.org/a.jpg"), url_scheme("s3://b/a.jpg"), url_scheme("a.jpg")
    ('https', 's3', None)
    """
    if not isinstance(value, str):
        return None
    match = URL_PATTERN.match(value.strip())
    return match.group(1).lower() if match else None


def is_url(value) -> bool:
    """Whether an image value is a URL (``scheme://...``) rather than a local path.

    Examples
    --------
    >>> is_url("http://example.org/a.jpg"), is_url("/data/a.jpg"), is_url(None)
    (True, False, False)
    """
    return url_scheme(value) is not None


def read_url(url: str, max_bytes: int | None = None, timeout: float | None = None) -> bytes:
    """The bytes an image URL names, at most ``max_bytes`` of them.

    Parameters
    ----------
    url : str
        An ``http(s)://`` URL, or a URL of an installed fsspec file system.
    max_bytes : int or None, default=None
        Largest size accepted; ``None`` for `mmsentiment.paths.MAX_FILE_BYTES`.
    timeout : float or None, default=None
        Seconds allowed for an HTTP download (connecting, each read, and the whole); ``None``
        for `HTTP_TIMEOUT`. fsspec file systems use their own timeouts.

    Returns
    -------
    data : bytes
        The content, never empty.

    Raises
    ------
    RemoteImageError
        For a refused scheme, an unknown or uninstalled fsspec protocol, an HTTP error
        status, a failed connection, a timeout, an empty body, or more than ``max_bytes``
        bytes.

    Examples
    --------
    >>> import fsspec
    >>> with fsspec.open("memory://docs/read_url.bin", "wb") as fh:
    ...     _ = fh.write(b"some bytes")
    >>> read_url("memory://docs/read_url.bin")
    b'some bytes'
    >>> try:
    ...     read_url("file:///etc/hostname")
    ... except RemoteImageError as exc:
    ...     print(exc)
    file:///etc/hostname: file:// URLs are not read; name a local file by its path
    """
    limit = paths.MAX_FILE_BYTES if max_bytes is None else int(max_bytes)
    scheme = url_scheme(url)
    if scheme is None:
        raise RemoteImageError(f"{url!r} is not a URL")
    if scheme in LOCAL_SCHEMES:
        raise RemoteImageError(f"{url}: {scheme}:// URLs are not read; name a local file by "
                               "its path")
    if scheme in HTTP_SCHEMES:
        data = _read_http(url.strip(), limit, HTTP_TIMEOUT if timeout is None else timeout)
    else:
        data = _read_fsspec(url.strip(), scheme, limit)
    if not data:
        raise RemoteImageError(f"{url}: the response is empty")
    return data


def open_image_file(image, max_bytes: int | None = None) -> BinaryIO:
    """A binary file for an image value: a URL's bytes in memory, or a local file.

    Parameters
    ----------
    image : str or path-like
        A URL (`read_url`) or a local path (`mmsentiment.paths.open_regular_file`).
    max_bytes : int or None, default=None
        Largest size accepted; ``None`` for `mmsentiment.paths.MAX_FILE_BYTES`.

    Returns
    -------
    file object
        Opened for binary reading; close it (or use it in a ``with`` block).

    Raises
    ------
    RemoteImageError
        Where a URL cannot be read.
    OSError, ValueError
        Where a local file cannot be opened or is refused (`open_regular_file`).
    """
    if is_url(image):
        return io.BytesIO(read_url(image, max_bytes))
    return paths.open_regular_file(
        image, paths.MAX_FILE_BYTES if max_bytes is None else max_bytes)


class _HTTPRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects to ``http(s)`` URLs only (urllib also follows them to ``ftp://``), and few."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if url_scheme(newurl) not in HTTP_SCHEMES:
            raise RemoteImageError(f"{req.full_url}: redirected to {newurl!r}, which is not "
                                   "an http(s) URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    """An opener for http(s) alone: no ``file:``, ``ftp:`` or ``data:`` handlers."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(),
                    urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), _HTTPRedirects(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _too_large(url: str, limit: int, size: int | None = None) -> RemoteImageError:
    amount = f"{size} bytes" if size is not None else "more bytes"
    return RemoteImageError(f"{url}: {amount}, above the limit of {limit}")


def _read_http(url: str, limit: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": f"mmsentiment/{__version__}"})
    try:
        with _opener().open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length", "").strip()
            if length.isdigit() and int(length) > limit:
                raise _too_large(url, limit, int(length))
            chunks, total = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise RemoteImageError(f"{url}: the download took more than {timeout} s")
                # read1: one receive at most, so that a server dripping bytes cannot keep
                # read() waiting past the deadline (each byte resets the socket timeout).
                block = response.read1(min(CHUNK_BYTES, limit + 1 - total))
                if not block:
                    break
                chunks.append(block)
                total += len(block)
                if total > limit:
                    raise _too_large(url, limit)
    except RemoteImageError:
        raise
    except urllib.error.HTTPError as exc:
        raise RemoteImageError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise RemoteImageError(f"{url}: no answer within {timeout} s") from None
        raise RemoteImageError(f"{url}: cannot connect ({reason})") from None
    except TimeoutError:
        raise RemoteImageError(f"{url}: no answer within {timeout} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise RemoteImageError(f"{url}: the download failed ({type(exc).__name__}: "
                               f"{exc})") from None
    return b"".join(chunks)


def _read_fsspec(url: str, scheme: str, limit: int) -> bytes:
    if "::" in url:
        raise RemoteImageError(f"{url}: chained fsspec URLs are not read")
    try:
        import fsspec
    except ImportError:
        raise RemoteImageError(f"{url}: reading {scheme}:// URLs needs fsspec "
                               "(pip install fsspec)") from None
    try:
        fsspec.get_filesystem_class(scheme)
    except ValueError:
        raise RemoteImageError(f"{url}: fsspec knows no protocol {scheme!r}") from None
    except ImportError as exc:
        raise RemoteImageError(f"{url}: reading {scheme}:// URLs needs a package that is "
                               f"not installed ({exc})") from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
        size = fs.size(path)
        if size is not None and size > limit:
            raise _too_large(url, limit, size)
        with fs.open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except RemoteImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - each backend raises its own kinds (botocore,
        # google.api_core, aiohttp, ...); all mean the same here: this image cannot be read.
        raise RemoteImageError(f"{url}: {type(exc).__name__}: {exc}") from None
    if len(data) > limit:
        raise _too_large(url, limit)
    return data
