"""Arithmetic precision of the forward pass, chosen once per fit as a `Precision` object."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """One ``precision`` setting: float32, or mixed precision through ``torch.autocast``.

    The weights always stay float32; only the forward pass runs in ``dtype``. float16 needs
    loss scaling (`scales_loss`), bfloat16 keeps float32's exponent range and does not.

    Parameters
    ----------
    name : {"32", "bf16", "fp16"}
        The setting.

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
