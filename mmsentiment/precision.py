"""Mixed precision: autocast in the network, loss scaling for float16 in training."""

from __future__ import annotations

import torch
from skorch import NeuralNetClassifier

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a ``precision`` setting (``None`` for full float32).

    >>> autocast_dtype("bf16"), autocast_dtype("32")
    (torch.bfloat16, None)
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    return PRECISIONS[precision]


class MixedPrecisionNet(NeuralNetClassifier):
    """skorch's classifier with gradient scaling where the network computes in float16.

    bfloat16 keeps float32's exponent range and needs no scaling; float16 does, or small
    gradients underflow to zero. The scaler multiplies the loss before ``backward``,
    unscales the gradients before the optimizer step, and skips steps whose gradients
    overflowed (``torch.amp.GradScaler``).

    Args:
        *args: passed to ``NeuralNetClassifier``.
        scale_loss: use a gradient scaler (``precision="fp16"``).
        **kwargs: passed to ``NeuralNetClassifier``.
    """

    def __init__(self, *args, scale_loss: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scale_loss = scale_loss

    def initialize(self):
        super().initialize()
        device_type = torch.device(self.device).type
        self.scaler_ = torch.amp.GradScaler(device_type, enabled=self.scale_loss)
        return self

    def train_step_single(self, batch, **fit_params):
        if not self.scale_loss:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = batch
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def _step_optimizer(self, step_fn):
        if not self.scale_loss:
            return super()._step_optimizer(step_fn)
        step_fn()
        for name in self._optimizers:
            self.scaler_.step(getattr(self, name + "_"))
        self.scaler_.update()
        return None
