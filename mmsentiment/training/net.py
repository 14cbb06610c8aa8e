"""The skorch net of the classifier: mixed precision, auxiliary losses and micro-batches."""

from __future__ import annotations

import contextlib

import torch
from skorch import NeuralNetClassifier

from ..encoders.text import trim_padding
from ..memory import release_free_memory
from ..nn.model import AuxiliaryOutput
from ..precision import Precision


class SentimentNet(NeuralNetClassifier):
    """skorch's classifier with mixed precision, auxiliary losses and micro-batches.

    **Mixed precision.** Every forward pass (training, validation, prediction) runs under
    the `Precision`'s autocast, and its outputs are cast back to float32. float16 also
    scales the loss with a ``torch.amp.GradScaler``: it multiplies the loss before
    ``backward``, unscales the gradients before the optimizer step, and skips steps whose
    gradients overflowed.

    **Auxiliary losses.** When the module returns an `AuxiliaryOutput` (training with
    per-modality labels), the loss adds ``auxiliary_weight`` times each modality's
    cross-entropy against its own labels.

    **Micro-batches.** With ``micro_batch_size`` smaller than the batch, each training batch
    runs forward and backward in chunks of that many posts, gradients accumulating, and the
    optimizer steps once per batch: each chunk's loss is weighted by its share of the batch
    (of its rows, or of its class weights), so the gradient is the whole batch's, while the
    activations kept for backward are those of one chunk. Layers that look across the
    batch (batch norm in training mode) would break that; the module freezes their
    statistics when micro-batches are used. Dropout draws its masks chunk by chunk, so a
    chunked fit is the same in expectation, not bit for bit. Each chunk drops the token
    positions that none of its own texts needs (`trim_padding`): the batch is padded to
    its longest text, a chunk of 4 rarely holds it. Validation during fit runs in
    chunks of the same size (the outputs equal the whole batch's up to float rounding),
    prediction in whole batches, and each epoch ends by handing freed heap memory back to
    the system.

    Parameters
    ----------
    *args
        Passed to ``NeuralNetClassifier``.
    precision : Precision, optional
        Arithmetic of the forward pass; float32 when ``None``.
    train_precision : Precision, optional
        Arithmetic of the training steps' forward pass, where it differs from
        ``precision`` (which then covers validation and prediction).
    micro_batch_size : int or None, default=None
        Posts per forward/backward chunk; ``None`` runs whole batches.
    auxiliary_weight : float, default=0.0
        Weight of each auxiliary cross-entropy in the training loss.
    **kwargs
        Passed to ``NeuralNetClassifier``.
    """

    def __init__(self, *args, precision: Precision | None = None,
                 train_precision: Precision | None = None,
                 micro_batch_size: int | None = None, auxiliary_weight: float = 0.0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.precision = precision
        self.train_precision = train_precision
        self.micro_batch_size = micro_batch_size
        self.auxiliary_weight = auxiliary_weight

    def get_loss(self, y_pred, y_true, *args, **kwargs):
        """The criterion's loss, plus the auxiliary cross-entropies of an `AuxiliaryOutput`.

        Each auxiliary cross-entropy leaves out the rows labelled -1, uses the criterion's
        label smoothing, and counts ``auxiliary_weight`` times. A batch with a
        ``sample_weight`` column (``fit(..., sample_weight=)``) weighs each row's
        cross-entropy by it: the sum of sample weight x class weight x loss over the sum of
        sample weight x class weight (torch's weighted mean where every sample weight is 1).
        """
        X = kwargs.get("X")
        sample = X.get("sample_weight") if isinstance(X, dict) else None
        logits = y_pred.logits if isinstance(y_pred, AuxiliaryOutput) else y_pred
        if sample is not None:
            y_true = y_true.to(logits.device)
            per_row = torch.nn.functional.cross_entropy(
                logits, y_true, weight=getattr(self.criterion_, "weight", None),
                reduction="none", label_smoothing=getattr(self.criterion_, "label_smoothing",
                                                          0.0))
            rows = self._row_weights(X, y_true)
            loss = (per_row * sample.to(per_row)).sum() / rows.sum().clamp_min(1e-12)
        else:
            loss = super().get_loss(logits, y_true, *args, **kwargs)
        if not isinstance(y_pred, AuxiliaryOutput):
            return loss
        smoothing = getattr(self.criterion_, "label_smoothing", 0.0)
        for aux_logits, labels in y_pred.auxiliary:
            if bool((labels >= 0).any()):
                loss = loss + self.auxiliary_weight * torch.nn.functional.cross_entropy(
                    aux_logits, labels, ignore_index=-1, label_smoothing=smoothing)
        return loss

    def initialize(self):
        super().initialize()
        self._share_tensors_when_pickled()
        self._initialize_scaler(torch.device(self.device).type)
        return self

    def _share_tensors_when_pickled(self) -> None:
        """Pickle the module given at construction and the callbacks (the schedule holds
        the optimizer, hence every parameter) together with the fitted module, so that each
        tensor is stored once and all are mapped onto the CPU alike where no GPU is."""
        extra = [name for name in ("module", "callbacks")
                 if name not in self.cuda_dependent_attributes_]
        self.cuda_dependent_attributes_ = [*self.cuda_dependent_attributes_, *extra]

    def _precision(self, training: bool = False) -> Precision:
        chosen = getattr(self, "train_precision", None) if training else None
        chosen = chosen or self.precision
        return chosen if chosen is not None else Precision("32")

    def _initialize_scaler(self, device_type: str) -> None:
        self.scaler_ = torch.amp.GradScaler(device_type,
                                            enabled=self._precision(True).scales_loss)

    def _forward_in_precision(self, x, **fit_params):
        """One forward pass of the module under this net's precision, outputs in float32."""
        precision = self._precision(training=torch.is_grad_enabled() and self.module_.training)
        if precision.dtype is None:
            return super().infer(x, **fit_params)
        device_type = next(self.module_.parameters()).device.type
        with precision.autocast(device_type):
            out = super().infer(x, **fit_params)
        if isinstance(out, AuxiliaryOutput):
            return AuxiliaryOutput(out.logits.float(), tuple(
                (logits.float(), labels) for logits, labels in out.auxiliary))
        return out.float()

    def _chunk_context(self, last: bool):
        """Context of one micro-batch's forward and backward (see `AcceleratedSentimentNet`)."""
        return contextlib.nullcontext()

    def _chunks(self, batch):
        Xi, yi = batch
        n, size = len(yi), self.micro_batch_size
        if not size or size >= n:
            return [(Xi, yi, 1.0)]
        # A chunk's mean loss is weighted by its share of the batch: its share of the rows,
        # or with class weights its share of the batch's total weight (the weighted mean
        # of CrossEntropyLoss divides by the weights' sum).
        row_weight = self._row_weights(Xi, yi)
        total = row_weight.sum() if row_weight is not None else n
        out = []
        for start in range(0, n, size):
            part = trim_padding({k: v[start:start + size] for k, v in Xi.items()})
            target = yi[start:start + size]
            share = (row_weight[start:start + size].sum() if row_weight is not None
                     else len(target)) / total
            out.append((part, target, share))
        return out

    def _row_weights(self, Xi, yi) -> torch.Tensor | None:
        """Each row's weight in the batch's mean loss: its class weight times its sample
        weight (``None`` where both are absent: every row counts once)."""
        weight = getattr(self.criterion_, "weight", None)
        sample = Xi.get("sample_weight") if isinstance(Xi, dict) else None
        if weight is None and sample is None:
            return None
        rows = weight[yi] if weight is not None else torch.ones(len(yi), device=yi.device)
        return rows * sample.to(rows) if sample is not None else rows

    def infer(self, x, **fit_params):
        size = self.micro_batch_size
        n = len(next(iter(x.values()))) if isinstance(x, dict) and x else 0
        chunked = getattr(self, "fitting_", False) and not torch.is_grad_enabled()
        if not chunked or not size or n <= size:
            return self._forward_in_precision(x, **fit_params)
        # Validation during fit: no activations are kept, but one forward pass over a whole
        # batch would still hold its largest feature maps at once, above the training peak.
        return torch.cat([self._forward_in_precision(
            trim_padding({k: v[start:start + size] for k, v in x.items()}), **fit_params)
            for start in range(0, n, size)])

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.fitting_ = True

    def on_train_end(self, net, **kwargs):
        super().on_train_end(net, **kwargs)
        self.fitting_ = False

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        release_free_memory()

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        losses, preds = [], []
        chunks = self._chunks(batch)
        for k, (Xi, yi, share) in enumerate(chunks):
            with self._chunk_context(last=k == len(chunks) - 1):
                y_pred = self.infer(Xi, **fit_params)
                loss = self.get_loss(y_pred, yi, X=Xi, training=True)
                self.scaler_.scale(loss * share).backward()
            losses.append(loss.detach() * share)
            logits = y_pred.logits if isinstance(y_pred, AuxiliaryOutput) else y_pred
            preds.append(logits.detach())
        return {"loss": torch.stack(losses).sum(), "y_pred": torch.cat(preds)}

    def _step_optimizer(self, step_fn):
        if not self._precision(training=True).scales_loss:
            return super()._step_optimizer(step_fn)
        step_fn()
        for name in self._optimizers:
            self.scaler_.step(getattr(self, name + "_"))
        self.scaler_.update()
        return None


def accelerated_net_class():
    """`SentimentNet` with skorch's ``AccelerateMixin`` (imported only when asked for).

    What changes under accelerate (``device="accelerate"``, run by ``accelerate launch``):

    - the module is wrapped for data parallelism (``DistributedDataParallel`` across
      processes) and placed on each process's device by the accelerator;
    - training batches are sharded: each process draws every N-th batch of the same
      shuffled order, so ``batch_size`` is per process;
    - micro-batches accumulate gradients locally and synchronise them once per batch
      (``no_sync`` for all chunks but the last);
    - validation and prediction run unsharded on every process, and the epoch's training
      and validation losses are averaged across processes before the callbacks read
      them, so early stopping takes the same decision in every process;
    - mixed precision stays the classifier's own (``precision=``), as without accelerate.

    Returns
    -------
    net_class : type
        ``AcceleratedSentimentNet``, a subclass of `SentimentNet`.
    """
    from skorch.callbacks import LRScheduler
    from skorch.hf import AccelerateMixin
    from skorch.utils import to_tensor

    class AcceleratedSentimentNet(AccelerateMixin, SentimentNet):
        train_step_single = SentimentNet.train_step_single
        _step_optimizer = SentimentNet._step_optimizer
        evaluation_step = SentimentNet.evaluation_step

        def _initialize_accelerator(self):
            # As skorch's, minus wrapping the criterion: a loss without parameters cannot be
            # wrapped in DistributedDataParallel; it only moves (its class weights).
            if self._wrapped_with_accelerator:
                return self
            self.criterion_ = self.criterion_.to(self.accelerator.device)
            with self._current_init_context("module"):
                self.module_ = self.accelerator.prepare(self.module_)
            with self._current_init_context("optimizer"):
                self.optimizer_ = self.accelerator.prepare(self.optimizer_)
            for _, callback in self.callbacks_:
                if isinstance(callback, LRScheduler):
                    callback.policy_ = self.accelerator.prepare(callback.policy_)
            self._wrapped_with_accelerator = True
            return self

        def initialize(self):
            AccelerateMixin.initialize(self)
            self._initialize_scaler(self.accelerator.device.type)
            return self

        def _chunk_context(self, last: bool):
            return contextlib.nullcontext() if last else self.accelerator.no_sync(self.module_)

        def infer(self, x, **fit_params):
            # Unsharded (validation) batches do not pass through the accelerator's loader,
            # which is what moves batches to the device.
            return SentimentNet.infer(self, to_tensor(x, device=self.accelerator.device),
                                      **fit_params)

        def get_loss(self, y_pred, y_true, *args, **kwargs):
            y_true = to_tensor(y_true, device=self.accelerator.device)
            return SentimentNet.get_loss(self, y_pred, y_true, *args, **kwargs)

        def on_epoch_end(self, net, **kwargs):
            # Losses averaged over the processes before any callback reads them, so that
            # early stopping takes one decision everywhere, whatever float noise the
            # devices add to the (identical) validation passes.
            for key in ("train_loss", "valid_loss"):
                if key in self.history[-1]:
                    value = torch.tensor(float(self.history[-1, key]),
                                         device=self.accelerator.device)
                    self.history.record(key, float(self.accelerator.reduce(value, "mean")))
            SentimentNet.on_epoch_end(self, net, **kwargs)

        def get_iterator(self, dataset, training=False):
            iterator = SentimentNet.get_iterator(self, dataset, training=training)
            return self.accelerator.prepare(iterator) if training else iterator

    return AcceleratedSentimentNet
