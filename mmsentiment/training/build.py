"""Assembly of a training run: validation split, class weights, optimizer, schedule, callbacks."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from skorch.callbacks import Callback, EarlyStopping
from skorch.helper import predefined_split
from torch import nn

from ..inputs.dataset import Collate, PostDataset, batch_loader
from ..nn import MultimodalNet, layer_decay_groups
from ..precision import Precision
from .callbacks import EpochProgress, PredictedClasses
from .checkpoint import AtomicCheckpoint
from .net import SentimentNet, accelerated_net_class
from .schedules import BatchLRScheduler, make_schedule


def validation_split(y: np.ndarray, fraction: float | None, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified training and validation row numbers, each sorted.

    ``ceil(fraction * n)`` rows are held out. Where that cannot keep every class on both
    sides, a warning says so and every row trains (no validation, no early stopping).

    Parameters
    ----------
    y : ndarray of int
        Class indices.
    fraction : float or None
        Share held out; ``None`` holds out nothing.
    seed : int
        Seed of the split.

    Returns
    -------
    train_idx, valid_idx : ndarray

    Examples
    --------
    >>> train, valid = validation_split(np.array([0, 1] * 10), 0.1, seed=0)
    >>> len(train), len(valid)
    (18, 2)
    """
    index = np.arange(len(y))
    if fraction is None:
        return index, index[:0]
    n_classes = len(np.unique(y))
    n_valid = math.ceil(fraction * len(y))
    if np.bincount(y).min() < 2 or n_valid < n_classes or len(y) - n_valid < n_classes:
        warnings.warn(
            f"Too few samples ({len(y)}) for a stratified validation split of {fraction}; "
            "training on all of them for max_epochs without early stopping.",
            UserWarning, stacklevel=3,
        )
        return index, index[:0]
    train_idx, valid_idx = train_test_split(index, test_size=n_valid, stratify=y,
                                            random_state=seed)
    return np.sort(train_idx), np.sort(valid_idx)


def class_weights(class_weight, classes: np.ndarray, y: np.ndarray | None
                  ) -> torch.Tensor | None:
    """Loss weights of the classes from an sklearn-style ``class_weight``.

    Parameters
    ----------
    class_weight : dict, "balanced" or None
        As in scikit-learn.
    classes : ndarray
        The class labels, in the order of the model's outputs.
    y : ndarray of int or None
        Class indices of the training rows (for ``"balanced"``).

    Returns
    -------
    Tensor or None

    Examples
    --------
    >>> class_weights({"neg": 2.0}, np.array(["neg", "pos"]), None).tolist()
    [2.0, 1.0]
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, str) and class_weight == "balanced":
        if y is None:
            return None
        weights = compute_class_weight("balanced", classes=np.arange(len(classes)), y=y)
    else:
        unknown = set(class_weight) - set(classes.tolist())
        if unknown:
            raise ValueError(f"class_weight names unknown classes {sorted(unknown)}.")
        weights = np.array([class_weight.get(c, 1.0) for c in classes])
    return torch.as_tensor(weights, dtype=torch.float32)


def named_callbacks(callbacks) -> list[tuple[str, Callback]]:
    """User callbacks as fresh ``(name, callback)`` pairs.

    They are copies: a fit never changes the estimator's parameter.

    Parameters
    ----------
    callbacks : list of Callback or (str, Callback), or None
        skorch callbacks, e.g. ``skorch.callbacks.TensorBoard``.

    Returns
    -------
    list of (str, Callback)
    """
    named = []
    for k, item in enumerate(callbacks or []):
        name, callback = item if isinstance(item, tuple) else (
            f"user_{k}_{type(item).__name__}", item)
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must hold skorch callbacks, got {type(callback).__name__}")
        named.append((name, copy.deepcopy(callback)))
    return named


def fused_optimizer(device) -> bool | None:
    """Whether AdamW should run its fused kernel on ``device``: one pass over each
    parameter instead of a loop of element-wise operations, the same update (on this
    project's CPU, a step over MiniLM's parameters took 30 ms instead of 144). ``None``
    (torch's own choice) on devices other than CUDA and, from torch 2.4 (the first with a
    fused CPU kernel), the CPU.

    Examples
    --------
    >>> fused_optimizer("cpu"), fused_optimizer("cuda:1"), fused_optimizer("mps")
    (True, True, None)
    """
    kind = torch.device(device).type
    cpu_kernel = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 4)
    return True if kind == "cuda" or (kind == "cpu" and cpu_kernel) else None


def build_net(module: MultimodalNet, *, n_classes: int, device: str, batch_size: int = 32,
              precision: Precision | None = None, train_precision: Precision | None = None,
              micro_batch_size: int | None = None,
              max_epochs: int = 1, n_train: int = 1, lr: float = 1e-3,
              text_encoder_lr: float = 1e-4, image_encoder_lr: float = 1e-4,
              weight_decay: float = 0.01, layer_decay: float = 1.0, warmup: float = 0.1,
              lr_schedule: str = "cosine", criterion_weight: torch.Tensor | None = None,
              label_smoothing: float = 0.0, auxiliary_weight: float = 0.0,
              valid: PostDataset | None = None, patience: int = 2,
              checkpoint_dir=None, callbacks: list[tuple[str, Callback]] | None = None,
              verbose: int = 0, accelerator=None, logit_offsets=None) -> SentimentNet:
    """The skorch net that trains (or, with the defaults, only predicts with) ``module``.

    AdamW over the parameter groups of `mmsentiment.nn.layer_decay_groups`, a warm-up
    schedule stepped per batch (`mmsentiment.training.schedules`), cross-entropy with
    class weights and label smoothing, and the callbacks in this order: the schedule, the
    count of predicted classes (`PredictedClasses`), the user's ``callbacks``, the progress
    bars, the checkpoint, then early stopping (it ends training by raising in
    ``on_epoch_end``, so the others must see the epoch end first).

    Parameters
    ----------
    module : MultimodalNet
        The network.
    n_classes : int
        Number of classes (outputs of the head).
    device : str
        Where it runs (ignored with an ``accelerator``).
    batch_size, max_epochs, lr, weight_decay, patience, verbose
        As the classifier's parameters of the same names (``verbose > 1`` shows skorch's
        table).
    precision : Precision, optional
        Arithmetic of the forward pass.
    train_precision : Precision, optional
        Arithmetic of the training steps, where it differs from ``precision``.
    micro_batch_size : int or None
        Posts per forward/backward chunk.
    n_train : int
        Training rows (sets the schedule's length).
    text_encoder_lr, image_encoder_lr, layer_decay
        Learning rates of the encoders' top groups and their decay per group.
    warmup, lr_schedule
        The schedule (`make_schedule`).
    criterion_weight : Tensor, optional
        Class weights of the loss.
    label_smoothing, auxiliary_weight : float
        Loss settings.
    valid : PostDataset, optional
        Validation rows: early stopping on their loss, best weights restored.
    checkpoint_dir : str or Path, optional
        Where each epoch is saved.
    callbacks : list of (str, Callback), optional
        Further skorch callbacks (`named_callbacks`).
    accelerator : accelerate.Accelerator, optional
        Data parallelism (`mmsentiment.training.device.make_accelerator`).
    logit_offsets : array-like of shape (n_classes,), optional
        What prediction subtracts from the logits (the classifier's ``logit_adjustment``),
        so that `PredictedClasses` counts the classes prediction will give.

    Returns
    -------
    SentimentNet
    """
    batches = math.ceil(n_train / batch_size)
    if accelerator is not None:  # each process takes every N-th batch
        batches = math.ceil(batches / accelerator.num_processes)
    schedule = make_schedule(lr_schedule, batches, max_epochs, warmup)
    callback_list: list[tuple[str, Callback]] = [("lr_schedule", BatchLRScheduler(
        policy=torch.optim.lr_scheduler.LambdaLR, step_every="batch", lr_lambda=schedule)),
        ("predicted_classes", PredictedClasses(n_classes, logit_offsets))]
    callback_list += callbacks or []
    if verbose > 0 and (accelerator is None or accelerator.is_main_process):
        shards = accelerator.num_processes if accelerator is not None else 1
        callback_list.append(("progress", EpochProgress(max_epochs, shards)))
    if checkpoint_dir is not None:
        callback_list.append(("checkpoint", AtomicCheckpoint(
            monitor=None, dirname=str(Path(checkpoint_dir)), f_params="params.pt",
            f_optimizer="optimizer.pt", f_criterion="criterion.pt",
            f_history="history.json", load_best=False)))
    if valid is not None:
        callback_list.append(("early_stopping", EarlyStopping(
            monitor="valid_loss", patience=patience, load_best=True)))
    tokenizer, max_length = module.text_encoder.tokenizer, module.text_encoder.max_length
    net_class, placement = SentimentNet, {"device": device}
    if accelerator is not None:
        net_class = accelerated_net_class()
        placement = {"accelerator": accelerator, "device": None,
                     "unwrap_after_train": False}  # the classifier unwraps after training
    return net_class(
        module,
        precision=precision,
        train_precision=train_precision,
        micro_batch_size=micro_batch_size,
        auxiliary_weight=auxiliary_weight,
        criterion=nn.CrossEntropyLoss,
        criterion__weight=criterion_weight,
        criterion__label_smoothing=label_smoothing,
        classes=list(range(n_classes)),
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=weight_decay,
        optimizer__fused=fused_optimizer(accelerator.device if accelerator else device),
        optimizer__param_groups=layer_decay_groups(module, text_encoder_lr,
                                                   image_encoder_lr, layer_decay),
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train=batch_loader,
        iterator_train__shuffle=True,
        iterator_train__collate_fn=Collate(tokenizer, max_length, flip=True),
        iterator_valid=batch_loader,
        iterator_valid__collate_fn=Collate(tokenizer, max_length),
        train_split=predefined_split(valid) if valid is not None else None,
        callbacks=callback_list,
        verbose=int(verbose > 1),
        **placement,
    )
