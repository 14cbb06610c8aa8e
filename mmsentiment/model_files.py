"""Model files from strangers: what a file is, and whether its config can be trusted.

A model file may come from anyone, so nothing in it is believed before it is checked:

- its kind is told from its first bytes, never from its name (`file_format`): a pickle runs
  code when it is loaded, a safetensors file does not;
- a safetensors file's header is read only when its declared length is small
  (`MAX_HEADER_BYTES`);
- its JSON config must match a schema (`check_config`): known keys and types only, sizes
  bounded, encoder names limited to installed offline weights unless the caller trusts the
  file, and no folder to write to (``cache_dir`` and ``checkpoint_dir`` come from the caller).

Files are written through a temporary file renamed into place (`write_atomically`), so an
interrupted save never leaves a truncated model behind.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .encoders.registry import OFFLINE_IMAGE_ENCODERS, OFFLINE_TEXT_ENCODERS, canonical_text_name
from .paths import open_regular_file

MAX_HEADER_BYTES = 16 << 20
MAX_MODEL_BYTES = 64 << 30
MAX_CLASSES = 10_000
MAX_COUNT = 2 ** 53  # training posts of a class: exact in a float64
MAX_LABEL_CHARS = 1_000
ENCODERS = ("text_encoder", "image_encoder")
CONFIG_KEYS = {"params", "classes", "classes_dtype", "n_features_in", "feature_names_in",
               "referenced_encoders"}
# Written since the post-hoc logit adjustment (logit_adjustment); older files lack them.
OPTIONAL_CONFIG_KEYS = {"class_count", "class_prior"}
# Set by the caller, never by a file: where predictions write, what runs during training.
CALLER_PARAMS = ("cache_dir", "checkpoint_dir", "callbacks")
# The first bytes of a joblib pickle: a raw pickle (protocol 2 or later), or a compressed
# one (zlib, gzip, bz2, xz, lzma, lz4).
PICKLE_MAGIC = (b"\x80", b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00",
                b"\x04\x22\x4d\x18")
PICKLE_SUFFIXES = (".joblib", ".pkl")


def file_format(path) -> str:
    """Tell a model file's kind from its content.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    {"safetensors", "pickle"}

    Raises
    ------
    ValueError
        For a missing file, anything but a regular file, or a file of neither kind.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.bin"
    >>> _ = path.write_bytes(b"\\x80\\x04K\\x01.")
    >>> file_format(path)
    'pickle'
    """
    path = Path(path)
    try:
        with open_regular_file(path, max_bytes=MAX_MODEL_BYTES) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(9)
    except OSError as exc:
        raise ValueError(f"{path}: cannot open the model file ({exc.strerror})") from exc
    if len(head) == 9:
        (length,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and length <= size - 8:
            return "safetensors"
    if head.startswith(PICKLE_MAGIC):
        return "pickle"
    raise ValueError(f"{path} is neither a safetensors model file nor a joblib pickle")


def safetensors_header_length(path) -> int:
    """The declared length of a safetensors file's JSON header, checked against
    `MAX_HEADER_BYTES` before the header is read."""
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
    if length > MAX_HEADER_BYTES:
        raise ValueError(f"{path}: its header claims {length} bytes; a model's header is "
                         f"below {MAX_HEADER_BYTES} bytes")
    return length


def _fail(message: str):
    raise ValueError(f"model file config: {message}")


def _offline(param: str, name: str) -> bool:
    if param == "text_encoder":
        weights = OFFLINE_TEXT_ENCODERS.get(canonical_text_name(name))
    else:
        weights = OFFLINE_IMAGE_ENCODERS.get(name)
    return weights is not None and weights.path() is not None


def _check_value(name: str, value) -> None:
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, scalar):
        if isinstance(value, str) and len(value) > MAX_LABEL_CHARS:
            _fail(f"{name} is {len(value)} characters long")
        return
    if name == "class_weight" and isinstance(value, dict) and len(value) <= MAX_CLASSES and \
            all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
        return
    _fail(f"{name} holds a {type(value).__name__}, which no parameter of that name takes")


def check_config(text: str, param_names, trust_encoders: bool = False) -> dict:
    """Parse and check a model file's JSON config.

    Parameters
    ----------
    text : str
        The config as stored in the file's metadata.
    param_names : collection of str
        The estimator's parameter names.
    trust_encoders : bool, default=False
        Accept encoder names that are not installed offline (model-hub names, local
        folders, weights paths): loading them may contact the hub or read local files
        that the file names.

    Returns
    -------
    dict
        The config; its ``"params"`` lack `CALLER_PARAMS`, and ``"classes"`` is an array.

    Raises
    ------
    ValueError
        For anything outside the schema.
    """
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        _fail(f"not JSON ({exc})")
    if not isinstance(config, dict) or not CONFIG_KEYS <= set(config) <= CONFIG_KEYS | \
            OPTIONAL_CONFIG_KEYS:
        _fail(f"expected the keys {sorted(CONFIG_KEYS)} and optionally "
              f"{sorted(OPTIONAL_CONFIG_KEYS)}")
    params = config["params"]
    if not isinstance(params, dict) or not set(params) <= set(param_names):
        unknown = sorted(set(params) - set(param_names)) if isinstance(params, dict) else []
        _fail(f"params must be a mapping of estimator parameters (unknown: {unknown[:5]})")
    for name, value in params.items():
        _check_value(name, value)
    for name in ENCODERS:
        value = params.get(name)
        if not isinstance(value, str):
            _fail(f"{name} must be a name")
        if not trust_encoders and not _offline(name, value):
            _fail(f"{name}={value!r} is not installed offline; loading it could contact the "
                  "model hub or read local files. Pass trust_encoders=True (CLI: "
                  "--trust-encoders) for a file you trust.")
    device = params.get("device", "auto")
    if not (isinstance(device, str) and re.fullmatch(r"auto|cpu|cuda(:\d{1,3})?|accelerate",
                                                      device)):
        _fail(f"device must be auto, cpu, cuda, cuda:N or accelerate, got {str(device)[:20]!r}")
    config["params"] = {k: v for k, v in params.items() if k not in CALLER_PARAMS}
    config["classes"] = _classes(config["classes"], config["classes_dtype"])
    if type(config["n_features_in"]) is not int or config["n_features_in"] != 2:
        _fail("n_features_in must be 2 (a text and an image column)")
    names = config["feature_names_in"]
    if not (isinstance(names, list) and len(names) in (0, 2)
            and all(isinstance(n, str) and len(n) <= MAX_LABEL_CHARS for n in names)):
        _fail("feature_names_in must be empty or two column names")
    n_classes = len(config["classes"])
    counts = config.get("class_count", [])
    if not (isinstance(counts, list) and len(counts) in (0, n_classes)
            and all(type(c) is int and 0 <= c <= MAX_COUNT for c in counts)):
        _fail(f"class_count must list one count in [0, {MAX_COUNT}] per class")
    prior = config.get("class_prior", [])
    if not (isinstance(prior, list) and len(prior) in (0, n_classes)
            and all(type(p) in (int, float) and 0 <= p <= 1 for p in prior)
            and (not prior or abs(sum(prior) - 1) < 1e-6)):
        _fail("class_prior must list one share in [0, 1] per class, summing to 1")
    referenced = config["referenced_encoders"]
    if not (isinstance(referenced, list) and all(isinstance(r, str) for r in referenced)
            and set(referenced) <= set(ENCODERS) and len(set(referenced)) == len(referenced)):
        _fail(f"referenced_encoders must list some of {ENCODERS}")
    return config


def _classes(classes, dtype) -> np.ndarray:
    if not (isinstance(classes, list) and 2 <= len(classes) <= MAX_CLASSES):
        _fail(f"classes must be a list of 2 to {MAX_CLASSES} labels")
    for label in classes:
        if isinstance(label, bool) or not isinstance(label, (str, int, float)):
            _fail("a class label must be a string or a number")
        if isinstance(label, str) and len(label) > MAX_LABEL_CHARS:
            _fail(f"a class label is {len(label)} characters long")
    if dtype == "object":
        out = np.empty(len(classes), dtype=object)
        out[:] = classes
    else:
        try:
            kind = np.dtype(dtype) if isinstance(dtype, str) and len(dtype) <= 16 else None
        except TypeError:
            kind = None
        if kind is None or kind.kind not in "biufU" or kind.itemsize > 4 * MAX_LABEL_CHARS:
            _fail(f"classes_dtype {str(dtype)[:20]!r} is not a label type")
        try:
            out = np.asarray(classes, dtype=kind)
        except (ValueError, OverflowError) as exc:
            _fail(f"classes do not fit classes_dtype ({exc})")
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        _fail("a class label is not a finite number")
    if len(set(out.tolist())) != len(out):
        _fail("classes repeat")
    return out


def _link_new(tmp: str, path: Path) -> None:
    """Put ``tmp`` at ``path`` unless a file is there, even one that appeared meanwhile."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; pass --force (overwrite=True) to replace it") \
            from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise FileExistsError(f"{path} exists; pass --force (overwrite=True) to replace "
                                  "it") from None
        os.replace(tmp, path)


def write_atomically(path, write: Callable[[Path], None], overwrite: bool = True) -> Path:
    """Write ``path`` through a temporary file in its folder, renamed into place at the end.

    Parameters
    ----------
    path : str or Path
        The file to write.
    write : callable
        Writes the content to the path it is given.
    overwrite : bool, default=True
        Replace an existing file; ``False`` raises ``FileExistsError`` instead.

    Returns
    -------
    Path
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; pass --force (overwrite=True) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would have made it
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
