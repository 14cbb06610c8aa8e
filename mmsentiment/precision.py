"""Arithmetic precision of the forward pass, chosen once per fit as a `Precision` object.

``precision="auto"`` resolves on the device a fit or a prediction runs on
(`resolve_precision`): bfloat16 where the hardware computes it natively (a CPU with
AMX-BF16 or AVX512-BF16, a CUDA GPU that reports bfloat16 support), float32 elsewhere.
On the 2-core Xeon of docs/performance.md, bfloat16 autocast ran MiniLM's training step
1.3x, its inference 2.0x and EfficientNet-Lite0's inference 1.7x faster than float32, and
Lite0's training step 0.88x as fast; so a CPU training step that trains the whole image
CNN runs the text encoder alone in bfloat16 (a text-only `Precision`, applied where the
network calls its text encoder, through `text_autocast`) and the rest in float32.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass

import torch

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
NAMES = ("auto", *PRECISIONS)
# The dtype of the text encoder's forward inside a text-only Precision's autocast context.
_TEXT_DTYPE: ContextVar[torch.dtype | None] = ContextVar("mmsentiment_text_dtype",
                                                         default=None)


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
        encoder: ``"auto"`` then means bfloat16 for the text encoder alone on a CPU with
        `cpu_has_bf16` (oneDNN's bfloat16 convolution backward ran slower than float32,
        MiniLM's training step faster: docs/performance.md), float32 on other CPUs.

    Returns
    -------
    Precision
        bfloat16 for ``"auto"`` on a CPU with `cpu_has_bf16` (for the text encoder alone
        with ``trains_convnet``) or a CUDA device with bfloat16 support, float32 for
        ``"auto"`` elsewhere; other names as given.

    Examples
    --------
    >>> resolve_precision("32", "cpu").dtype is None
    True
    >>> resolve_precision("auto", "cpu").name in ("bf16", "32")
    True
    >>> p = resolve_precision("auto", "cpu", trains_convnet=True)
    >>> p.dtype is None or p.text_only
    True
    """
    if name != "auto":
        return Precision(name)
    kind = torch.device(device).type
    if kind == "cpu":
        if cpu_has_bf16():
            return Precision("bf16", text_only=trains_convnet)
        return Precision("32")
    native = kind == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    return Precision("bf16" if native else "32")  # CUDA: Ampere or newer


@dataclass(frozen=True)
class Precision:
    """One ``precision`` setting: float32, or mixed precision through ``torch.autocast``.

    The weights always stay float32; only the forward pass runs in ``dtype``. float16 needs
    loss scaling (`scales_loss`), bfloat16 keeps float32's exponent range and does not.

    Parameters
    ----------
    name : {"32", "bf16", "fp16"}
        The setting (``"auto"`` is resolved first, by `resolve_precision`).
    text_only : bool, default=False
        Whether ``dtype`` applies to the text encoder alone (`text_autocast`); the rest of
        the network then runs in float32.

    Examples
    --------
    >>> Precision("bf16").dtype, Precision("fp16").scales_loss, Precision("32").dtype
    (torch.bfloat16, True, None)
    >>> with Precision("bf16", text_only=True).autocast("cpu"):
    ...     with text_autocast("cpu") as dtype:
    ...         (torch.ones(2, 2) @ torch.ones(2, 2)).dtype, dtype
    (torch.bfloat16, torch.bfloat16)
    >>> torch.is_autocast_enabled("cpu")
    False
    """

    name: str
    text_only: bool = False

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {self.name!r}")
        if self.text_only and self.name != "bf16":
            raise ValueError("a text-only precision is bfloat16 (float16 would need its own "
                             "loss scaling)")

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, ``None`` for float32."""
        return PRECISIONS[self.name]

    @property
    def scales_loss(self) -> bool:
        """Whether training needs a gradient scaler (float16)."""
        return self.name == "fp16"

    def autocast(self, device_type: str):
        """A context that runs its forward pass in this precision on ``device_type`` (for a
        text-only precision: the text encoder's forward, where `text_autocast` wraps it)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        if self.text_only:
            return _text_scope(self.dtype)
        return torch.autocast(device_type, dtype=self.dtype)


@contextlib.contextmanager
def _text_scope(dtype: torch.dtype):
    token = _TEXT_DTYPE.set(dtype)
    try:
        yield
    finally:
        _TEXT_DTYPE.reset(token)


@contextlib.contextmanager
def text_autocast(device_type: str):
    """Autocast for the text encoder's forward inside a text-only `Precision.autocast`.

    Yields the dtype it casts to, or ``None`` (and changes nothing) outside such a context;
    the caller turns the encoder's outputs back into float32 where it is not ``None``.

    Parameters
    ----------
    device_type : str
        ``"cpu"`` or ``"cuda"``.
    """
    dtype = _TEXT_DTYPE.get()
    if dtype is None:
        yield None
        return
    with torch.autocast(device_type, dtype=dtype):
        yield dtype
