"""The skorch net of the classifier: mixed precision and memory-bounded training steps."""

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


class SentimentNet(NeuralNetClassifier):
    """skorch's classifier with float16 loss scaling and micro-batches.

    **Loss scaling.** bfloat16 keeps float32's exponent range and needs no scaling; float16
    does, or small gradients underflow to zero. With ``scale_loss`` a
    ``torch.amp.GradScaler`` multiplies the loss before ``backward``, unscales the
    gradients before the optimizer step, and skips steps whose gradients overflowed.

    **Micro-batches.** With ``micro_batch_size`` smaller than the batch, each training batch
    runs forward and backward in chunks of that many posts, gradients accumulating, and the
    optimizer steps once per batch: each chunk's loss is weighted by its share of the batch
    (of its rows, or of its class weights), so the gradient is the whole batch's, while the
    activations kept for backward are those of one chunk. Layers that look across the
    batch (batch norm in training mode) would break that; the classifier freezes their
    statistics when it uses micro-batches. Dropout draws its masks chunk by chunk, so a
    chunked fit is the same in expectation, not bit for bit.

    Args:
        *args: passed to ``NeuralNetClassifier``.
        scale_loss: use a gradient scaler (``precision="fp16"``).
        micro_batch_size: posts per forward/backward chunk; ``None`` runs whole batches.
        **kwargs: passed to ``NeuralNetClassifier``.
    """

    def __init__(self, *args, scale_loss: bool = False, micro_batch_size: int | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scale_loss = scale_loss
        self.micro_batch_size = micro_batch_size

    def initialize(self):
        super().initialize()
        device_type = torch.device(self.device).type
        self.scaler_ = torch.amp.GradScaler(device_type, enabled=self.scale_loss)
        return self

    def _chunks(self, batch):
        Xi, yi = batch
        n, size = len(yi), self.micro_batch_size
        if not size or size >= n:
            return [(Xi, yi, 1.0)]
        # A chunk's mean loss is weighted by its share of the batch: its share of the rows,
        # or with class weights its share of the batch's total weight (the weighted mean
        # of CrossEntropyLoss divides by the weights' sum).
        weight = getattr(self.criterion_, "weight", None)
        total = weight[yi].sum() if weight is not None else n
        out = []
        for start in range(0, n, size):
            part = {k: v[start:start + size] for k, v in Xi.items()}
            target = yi[start:start + size]
            share = (weight[target].sum() if weight is not None else len(target)) / total
            out.append((part, target, share))
        return out

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        losses, preds = [], []
        for Xi, yi, share in self._chunks(batch):
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
            self.scaler_.scale(loss * share).backward()
            losses.append(loss.detach() * share)
            preds.append(y_pred.detach())
        return {"loss": torch.stack(losses).sum(), "y_pred": torch.cat(preds)}

    def _step_optimizer(self, step_fn):
        if not self.scale_loss:
            return super()._step_optimizer(step_fn)
        step_fn()
        for name in self._optimizers:
            self.scaler_.step(getattr(self, name + "_"))
        self.scaler_.update()
        return None
