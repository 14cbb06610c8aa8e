"""skorch callbacks of the classifier: progress bars and the interrupted-fit flag."""

from __future__ import annotations

import math

from skorch.callbacks import Callback
from tqdm.auto import tqdm


class TrainingStatus(Callback):
    """Notes whether training ended inside an epoch, i.e. was interrupted by Ctrl-C.

    Attributes
    ----------
    interrupted : bool
        True from the start of an epoch until its end.
    """

    def __init__(self) -> None:
        self.interrupted = False

    def on_epoch_begin(self, net, **kwargs) -> None:
        self.interrupted = True

    def on_epoch_end(self, net, **kwargs) -> None:
        self.interrupted = False


class EpochProgress(Callback):
    """One tqdm bar per epoch over its training batches.

    While the epoch runs, the bar shows the running mean of the training loss; when it
    ends, the epoch's training loss and, where there is a validation split, the validation
    loss and accuracy.

    Parameters
    ----------
    max_epochs : int
        The planned number of epochs, shown as ``Epoch 2/3``.
    shards : int, default=1
        Processes that share each epoch's batches (accelerate); 1 otherwise.
    """

    def __init__(self, max_epochs: int, shards: int = 1) -> None:
        self.max_epochs = max_epochs
        self.shards = shards
        self.bar = None

    def on_epoch_begin(self, net, dataset_train=None, **kwargs) -> None:
        n = (math.ceil(math.ceil(len(dataset_train) / net.batch_size) / self.shards)
             if dataset_train is not None else None)
        self.bar = tqdm(total=n, desc=f"Epoch {len(net.history)}/{self.max_epochs}",
                        unit="batch", leave=True, dynamic_ncols=True)
        self._sum, self._count = 0.0, 0

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs) -> None:
        if not training or self.bar is None:
            return
        if loss is not None:
            self._sum += float(loss.detach())
            self._count += 1
            self.bar.set_postfix(loss=f"{self._sum / self._count:.4f}", refresh=False)
        self.bar.update(1)

    def on_epoch_end(self, net, **kwargs) -> None:
        if self.bar is None:
            return
        row = net.history[-1]
        shown = {"train_loss": row.get("train_loss"), "valid_loss": row.get("valid_loss"),
                 "valid_acc": row.get("valid_acc")}
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items() if v is not None})
        self.bar.close()
        self.bar = None

    def on_train_end(self, net, **kwargs) -> None:
        # An interrupted epoch leaves its bar open.
        if self.bar is not None:
            self.bar.close()
            self.bar = None
