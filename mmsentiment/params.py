"""Checks of the estimator's parameters, run at the start of every fit (as scikit-learn
estimators check theirs in ``fit``, never in ``__init__``)."""

from __future__ import annotations

import os

from torch import nn

from .encoders.onnx import BACKENDS
from .inputs import IMAGE_POLICIES
from .inputs.tweets import TEXT_NORMALIZATIONS
from .nn import FUSIONS, get_finetune
from .precision import NAMES as PRECISION_NAMES
from .training import LR_SCHEDULES, named_callbacks

# The largest image_size: 4.6 times Lite0's 224 pixels, 21 times its pixels per image (a
# bound for files from elsewhere, whose parameters are checked before anything is built).
MAX_IMAGE_SIZE = 1024
NETWORK_PARAMS = ("text_encoder", "image_encoder", "fusion", "finetune", "image_size")


def check_warm_start(est) -> bool:
    """Whether this fit continues the fitted network (``warm_start``); records the
    parameters that shape the network for the next warm start to compare.

    Raises
    ------
    ValueError
        On a warm start after a change of encoder, fusion head or ``finetune``: the fitted
        network cannot follow it.
    """
    current = {name: getattr(est, name) for name in NETWORK_PARAMS}
    if not (est.warm_start and hasattr(est, "net_")):
        est.network_params_ = current
        return False
    before = getattr(est, "network_params_", current)
    # A model fitted before image_size existed has no entry for it: it was None then.
    changed = [n for n in NETWORK_PARAMS if before.get(n) is not current[n]
               and before.get(n) != current[n]]
    if changed:
        raise ValueError(f"warm_start=True continues the fitted network, which cannot follow "
                         f"a change of {changed}; fit with warm_start=False.")
    return True


def check_params(est) -> None:
    """Raise a ``ValueError`` (or ``TypeError``) naming the first invalid parameter of ``est``.

    Parameters
    ----------
    est : MultimodalSentimentClassifier
        The estimator.

    Examples
    --------
    >>> from mmsentiment import MultimodalSentimentClassifier
    >>> check_params(MultimodalSentimentClassifier(fusion="sum"))
    Traceback (most recent call last):
    ...
    ValueError: fusion must be one of ['attention', 'concat', 'paper'], got 'sum'
    """
    if est.fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {sorted(FUSIONS)}, got {est.fusion!r}")
    finetune = get_finetune(est.finetune)
    if FUSIONS[est.fusion].sequences and not finetune.trains_encoders:
        raise ValueError(f'fusion="{est.fusion}" attends over token and patch sequences; '
                         f'finetune="{est.finetune}" caches pooled vectors only. Use '
                         'finetune="top" (the cheapest) or "full".')
    for name in ("max_epochs", "batch_size"):
        value = getattr(est, name)
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    n_jobs = est.n_jobs
    if n_jobs is not None and not (isinstance(n_jobs, int) and not isinstance(n_jobs, bool)
                                   and n_jobs != 0):
        raise ValueError(f"n_jobs must be None or a non-zero int, got {n_jobs!r}")
    for name in ("warm_start", "gradient_checkpointing"):
        if not isinstance(getattr(est, name), bool):
            raise ValueError(f"{name} must be True or False, got {getattr(est, name)!r}")
    size = est.image_size
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool)
                                 and 32 <= size <= MAX_IMAGE_SIZE):
        raise ValueError(f"image_size must be None or an int from 32 to {MAX_IMAGE_SIZE}, "
                         f"got {size!r}")
    if est.inference_backend not in BACKENDS:
        raise ValueError(f"inference_backend must be one of {BACKENDS}, got "
                         f"{est.inference_backend!r}")
    mbs = est.micro_batch_size
    if mbs not in (None, "auto") and not (isinstance(mbs, int) and mbs >= 1):
        raise ValueError(
            f"micro_batch_size must be a positive int, None or 'auto', got {mbs!r}")
    if est.lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"lr_schedule must be one of {LR_SCHEDULES}, got {est.lr_schedule!r}")
    vf = est.validation_fraction
    if vf is not None and not 0 < vf < 1:
        raise ValueError(f"validation_fraction must be in (0, 1) or None, got {vf!r}")
    for name, ok, interval in (("layer_decay", lambda v: 0 < v <= 1, "(0, 1]"),
                               ("label_smoothing", lambda v: 0 <= v < 1, "[0, 1)"),
                               ("modality_dropout", lambda v: 0 <= v <= 0.5, "[0, 0.5]")):
        if not ok(getattr(est, name)):
            raise ValueError(f"{name} must be in {interval}, got {getattr(est, name)!r}")
    for name in ("lr", "text_encoder_lr", "image_encoder_lr", "weight_decay", "logit_adjustment"):
        value = getattr(est, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 <= value < float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if isinstance(est.warmup, bool) or not isinstance(est.warmup, (int, float)) or \
            not 0 <= est.warmup <= 1:
        raise ValueError(f"warmup must be in [0, 1], got {est.warmup!r}")
    if isinstance(est.patience, bool) or not isinstance(est.patience, int) or est.patience < 1:
        raise ValueError(f"patience must be a positive int, got {est.patience!r}")
    if not est.auxiliary_weight >= 0:
        raise ValueError(f"auxiliary_weight must be >= 0, got {est.auxiliary_weight!r}")
    if est.precision not in PRECISION_NAMES:
        raise ValueError(f"precision must be one of {PRECISION_NAMES}, got {est.precision!r}")
    if est.text_normalization not in TEXT_NORMALIZATIONS:
        raise ValueError(f"text_normalization must be one of {list(TEXT_NORMALIZATIONS)}, "
                         f"got {est.text_normalization!r}")
    if est.on_bad_image not in IMAGE_POLICIES:
        raise ValueError(
            f"on_bad_image must be one of {IMAGE_POLICIES}, got {est.on_bad_image!r}")
    for param in ("text_encoder", "image_encoder"):
        value = getattr(est, param)
        if not isinstance(value, (str, os.PathLike, nn.Module)):
            raise TypeError(f"{param} must be a model name, a path or a torch.nn.Module, "
                            f"got {type(value).__name__}")
    named_callbacks(est.callbacks)  # checks the types
    if est.device == "accelerate" and est.checkpoint_dir is not None:
        raise ValueError('checkpoint_dir is not supported with device="accelerate" (the '
                         "processes would each write and resume the same checkpoint).")

