"""Arithmetic precision of the forward pass, chosen once per fit as a `Precision` object.

``precision="auto"`` resolves on the device a fit or a prediction runs on
(`resolve_precision`): bfloat16 where the hardware computes it natively (a CPU with
AMX-BF16 or AVX512-BF16, a CUDA GPU that reports bfloat16 support), float32 elsewhere.
On the 2-core Xeon of docs/performance.md, bfloat16 autocast ran MiniLM's training step
1.3x, its inference 2.0x and EfficientNet-Lite0's inference 1.7x faster than float32, and
Lite0's training step 0.88x as fast (so a CPU fit that trains it whole stays float32).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
NAMES = ("auto", *PRECISIONS)


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AMX-BF16 tiles or AVX512-BF16).

    Read from PyTorch's own CPU checks (the ones its oneDNN kernels dispatch on).

    Returns
    -------
    bool
    """
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(name: str, device: str, trains_convnet: bool = False) -> Precision:
    """The `Precision` that ``name`` means on ``device`` (``"auto"`` resolved there).

    Parameters
    ----------
    name : {"auto", "32", "bf16", "fp16"}
        The ``precision`` setting.
    device : str
        A torch device name (``"cpu"``, ``"cuda:0"``, ``"mps"``).
    trains_convnet : bool, default=False
        Whether the precision is for training steps that train a whole convolutional image
        encoder: ``"auto"`` then means float32 on a CPU, where oneDNN's bfloat16
        convolution backward ran slower than float32 (docs/performance.md).

    Returns
    -------
    Precision
        bfloat16 for ``"auto"`` on a CPU with `cpu_has_bf16` (except for ``trains_convnet``)
        or a CUDA device with bfloat16 support, float32 for ``"auto"`` elsewhere; other
        names as given.

    Examples
    --------
    >>> resolve_precision("32", "cpu").dtype is None
    True
    >>> resolve_precision("auto", "cpu").name in ("bf16", "32")
    True
    """
    if name != "auto":
        return Precision(name)
    kind = torch.device(device).type
    if kind == "cpu":
        native = cpu_has_bf16() and not trains_convnet
    elif kind == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)  # Ampere or newer
    else:
        native = False
    return Precision("bf16" if native else "32")


@dataclass(frozen=True)
class Precision:
    """One ``precision`` setting: float32, or mixed precision through ``torch.autocast``.

    The weights always stay float32; only the forward pass runs in ``dtype``. float16 needs
    loss scaling (`scales_loss`), bfloat16 keeps float32's exponent range and does not.

    Parameters
    ----------
    name : {"32", "bf16", "fp16"}
        The setting (``"auto"`` is resolved first, by `resolve_precision`).

    Examples
    --------
    >>> Precision("bf16").dtype, Precision("fp16").scales_loss, Precision("32").dtype
    (torch.bfloat16, True, None)
    """

    name: str

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {self.name!r}")

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, ``None`` for float32."""
        return PRECISIONS[self.name]

    @property
    def scales_loss(self) -> bool:
        """Whether training needs a gradient scaler (float16)."""
        return self.name == "fp16"

    def autocast(self, device_type: str):
        """A context that runs its forward pass in this precision on ``device_type``."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=self.dtype)
