"""skorch callbacks of the classifier: progress bars, the interrupted-fit flag, the
count of predicted classes that tells a collapsed fit (`collapse_message`), and the
opt-in moving average of the weights (`WeightAveraging`)."""

from __future__ import annotations

import math

import numpy as np
import torch
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


class PredictedClasses(Callback):
    """Counts each epoch's predictions per class, recorded as ``predicted_counts`` in the
    history: on the hold-out where there is one, else on the training batches.

    Parameters
    ----------
    n_classes : int
        Outputs of the head.
    logit_offsets : array-like of shape (n_classes,), optional
        Subtracted from the logits before the count, as prediction does.
    """

    def __init__(self, n_classes: int, logit_offsets=None) -> None:
        self.n_classes = n_classes
        self.logit_offsets = logit_offsets

    def on_epoch_begin(self, net, **kwargs) -> None:
        self._counts = {True: np.zeros(self.n_classes, np.int64),
                        False: np.zeros(self.n_classes, np.int64)}

    def on_batch_end(self, net, training=False, y_pred=None, **kwargs) -> None:
        logits = getattr(y_pred, "logits", y_pred)
        if isinstance(logits, torch.Tensor) and logits.ndim == 2:
            scores = logits.detach().float().cpu().numpy()
            if self.logit_offsets is not None:
                scores = scores - np.asarray(self.logit_offsets)
            predicted = scores.argmax(axis=1)
            self._counts[training] += np.bincount(predicted, minlength=self.n_classes)

    def on_epoch_end(self, net, **kwargs) -> None:
        counts = self._counts[False] if self._counts[False].any() else self._counts[True]
        net.history.record("predicted_counts", counts.tolist())


def collapse_message(history, classes, class_count, epoch: int | None = None,
                     min_posts: int = 10) -> str | None:
    """What to tell the user when the kept epoch predicted a single class, else ``None``.

    The kept epoch is ``epoch`` (early stopping's best, whose weights it restored) where
    given, else the last epoch of lowest validation loss, else the last. A fit that predicts
    one class for every post of a hold-out (or of the training batches) of at least
    ``min_posts`` posts has collapsed onto it: typical of imbalanced labels, too few epochs
    or a learning rate that does not suit the data.

    Parameters
    ----------
    history : skorch.History
        The fit's history, with `PredictedClasses`' ``predicted_counts``.
    classes : ndarray
        The class labels, in the head's order.
    class_count : ndarray
        Training posts of each class.
    epoch : int, optional
        The kept epoch, counted from 1.
    min_posts : int, default=10
        Fewer predictions than this are too few to call a collapse.

    Returns
    -------
    str or None

    Examples
    --------
    >>> rows = [{"predicted_counts": [40, 0], "valid_loss_best": True}]
    >>> print(collapse_message(rows, np.array(["neg", "pos"]), np.array([300, 60])))
    The fitted model predicts 'neg' for all 40 posts of its hold-out or training batches \
(the kept epoch): it has collapsed onto one class ('neg' is 83 % of the training labels). Try \
logit_adjustment=1.0 (applies without a refit), class_weight="balanced", more epochs \
(max_epochs), or finetune="frozen" (a head on fixed features, quick to tune); check that \
the labels belong to their posts.
    """
    rows = list(history)
    if epoch is not None and 1 <= epoch <= len(rows) and "predicted_counts" in rows[epoch - 1]:
        row = rows[epoch - 1]
    else:
        rows = [r for r in rows if "predicted_counts" in r]
        if not rows:
            return None
        row = ([r for r in rows if r.get("valid_loss_best")] or rows)[-1]
    counts = np.asarray(row["predicted_counts"])
    if counts.sum() < min_posts or np.count_nonzero(counts) != 1:
        return None
    k = int(np.argmax(counts))
    label = np.asarray(classes).tolist()[k]
    share = 100 * class_count[k] / max(int(np.sum(class_count)), 1)
    if class_count[k] == np.max(class_count):
        advice = ('Try logit_adjustment=1.0 (applies without a refit), class_weight="balanced", '
                  "more epochs (max_epochs), or finetune=\"frozen\" (a head on fixed features, "
                  "quick to tune)")
    else:  # a rare class for every post: the adjustment has outweighed what the head learnt
        advice = ("Try a lower logit_adjustment, e.g. 0 (applies without a refit), more epochs "
                  "(max_epochs), or a higher learning rate (lr)")
    return (f"The fitted model predicts {label!r} for all {int(counts.sum())} posts of its "
            f"hold-out or training batches (the kept epoch): it has collapsed onto one class "
            f"({label!r} is {share:.0f} % of the training labels). {advice}; check that the "
            "labels belong to their posts.")


class WeightAveraging(Callback):
    """An exponential moving average of the trained weights, validated and kept in their place.

    After each optimizer step the average moves towards the weights: ``average +=
    (1 - d) * (weights - average)`` with ``d = min(decay, t / (t + 1))`` at the ``t``-th step
    (counted from 0), so it is the plain mean of all steps so far until ``t`` reaches
    ``1 / (1 - decay)`` and an exponential average over about that many steps after (with
    ``decay=0.99``: the last hundred). Where the fit has a hold-out, each epoch's validation
    runs on the average, so early stopping scores and keeps averaged weights; the next
    epoch trains on from the weights as they were. The fit ends with the average (of the
    epoch that early stopping keeps) in the model, also when Ctrl-C interrupts it.

    What is averaged: the parameters that train when the fit starts; buffers (batch-norm
    statistics) keep their latest values. Each fit (also each ``partial_fit`` or
    warm-started fit) starts a fresh average from the weights it is given, which are the
    previous fit's average. With a hold-out, the checkpoint of an epoch
    (``checkpoint_dir``) holds the averaged weights, without one the latest; a resumed fit
    continues from those with a fresh average, so it does not retrace the uninterrupted
    fit exactly. The average is released when the fit ends (it is not pickled with the
    model).

    Parameters
    ----------
    decay : float, default=0.99
        Weight of the old average at each step, in [0, 1); 0 keeps the latest weights.

    Examples
    --------
    >>> from mmsentiment import MultimodalSentimentClassifier, WeightAveraging
    >>> clf = MultimodalSentimentClassifier(callbacks=[WeightAveraging(0.99)])
    """

    def __init__(self, decay: float = 0.99) -> None:
        self.decay = decay

    def on_train_begin(self, net, **kwargs) -> None:
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {self.decay!r}")
        # The module's parameter objects: loading weights copies into them in place.
        self._trained = [p for p in net.module_.parameters() if p.requires_grad]
        self.average_ = [p.detach().clone() for p in self._trained]
        self.steps_, self._latest = 0, None

    def on_epoch_begin(self, net, **kwargs) -> None:
        if self._latest is not None:
            with torch.no_grad():
                for weight, latest in zip(self._trained, self._latest):
                    weight.copy_(latest)
            self._latest = None

    def on_batch_begin(self, net, training=False, **kwargs) -> None:
        if not training and self._latest is None:  # the first validation batch of an epoch
            latest = [p.detach().clone() for p in self._trained]
            self._load_average()
            self._latest = latest

    def on_batch_end(self, net, training=False, **kwargs) -> None:
        if training:
            d = min(self.decay, self.steps_ / (self.steps_ + 1))
            with torch.no_grad():
                for average, weight in zip(self.average_, self._trained):
                    average.lerp_(weight.detach(), 1.0 - d)
            self.steps_ += 1

    def on_train_end(self, net, **kwargs) -> None:
        if self._latest is None:  # no hold-out, or stopped while training: load it here
            self._load_average()
        self.average_ = self._latest = self._trained = None  # the model holds the average

    def _load_average(self) -> None:
        with torch.no_grad():
            for weight, average in zip(self._trained, self.average_):
                weight.copy_(average)
