"""Fingerprints: content hashes of texts and images, and short hashes of models and settings.

They name the feature cache's entries and folders (`mmsentiment.inputs.cache`), encoders'
identities (`TextEncoder.cache_key`, `ImageEncoder.cache_key`) and fits to resume
(`mmsentiment.training.checkpoint`).
"""

from __future__ import annotations

import hashlib
import inspect

import torch
from PIL import Image

# Bump when decoding, cropping or the stored layout changes: old cache entries are then
# ignored (every fingerprint changes).
CACHE_LAYOUT_VERSION = 1


def text_key(text: str) -> str:
    """Content hash of a text.

    Parameters
    ----------
    text : str
        The text.

    Returns
    -------
    key : str
        The SHA-256 hex digest of its UTF-8 bytes.

    Examples
    --------
    >>> text_key("hello")[:12]
    '2cf24dba5fb0'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def image_key(image) -> str | None:
    """Content hash of an image: its file's bytes, or a PIL image's mode, size and pixels.

    A URL is keyed by the bytes it serves when asked (read through
    `mmsentiment.inputs.remote.read_url`), never by the URL itself: an image replaced at
    the same URL gets a new key, and the same image at two URLs shares one.

    Parameters
    ----------
    image : str, path-like or PIL.Image.Image
        An image file, a URL, or a PIL image (of which palette, transparency and EXIF
        orientation count too).

    Returns
    -------
    key : str or None
        The SHA-256 hex digest, or ``None`` when a file or URL cannot be read (the decoder
        then reports why).
    """
    from .inputs.remote import open_image_file  # not at the top: inputs imports this module

    digest = hashlib.sha256()
    if isinstance(image, Image.Image):
        # Everything decoding looks at: pixels, palette, transparency, EXIF orientation.
        digest.update(f"{image.mode}{image.size}{image.info.get('transparency')}".encode())
        digest.update(f"{image.getexif().get(0x0112)}{image.getpalette()}".encode())
        digest.update(image.tobytes())
        return digest.hexdigest()
    try:
        with open_image_file(image) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except (OSError, ValueError):  # the decoder reports why
        return None
    return digest.hexdigest()


def slug(name: str) -> str:
    """A file-name-safe short form of an encoder name (its last 60 characters at most).

    Examples
    --------
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
    """What stands for a module object's code in its fingerprint.

    That is its ``repr`` (layers and their settings), and the qualified name and source of
    every class inside it. A class without a source file (defined in an interactive session,
    or compiled) is represented by its name alone; two such classes of the same name with
    different ``forward`` methods would then share cache entries.

    Parameters
    ----------
    module : torch.nn.Module
        The module.

    Returns
    -------
    code : str
        The text to fingerprint.

    Examples
    --------
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
