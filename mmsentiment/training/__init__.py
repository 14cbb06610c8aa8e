"""Training: the skorch net, the assembly of a run, schedules, precision, devices, resume."""

from ..memory import release_free_memory
from ..precision import PRECISIONS, Precision, cpu_has_bf16, resolve_precision
from .build import build_net, class_weights, named_callbacks, validation_split
from .callbacks import (
    EpochProgress,
    PredictedClasses,
    TrainingStatus,
    WeightAveraging,
    collapse_message,
)
from .checkpoint import fit_fingerprint, mark_finished, resume
from .device import (
    device_name,
    make_accelerator,
    resolve_device,
    shared_seed,
)
from .net import SentimentNet, accelerated_net_class
from .schedules import LR_SCHEDULES, BatchLRScheduler, WarmupCosine, WarmupExponential

__all__ = [
    "LR_SCHEDULES",
    "PRECISIONS",
    "cpu_has_bf16",
    "resolve_precision",
    "BatchLRScheduler",
    "EpochProgress",
    "PredictedClasses",
    "Precision",
    "SentimentNet",
    "TrainingStatus",
    "WarmupCosine",
    "WarmupExponential",
    "WeightAveraging",
    "accelerated_net_class",
    "build_net",
    "class_weights",
    "collapse_message",
    "device_name",
    "fit_fingerprint",
    "make_accelerator",
    "mark_finished",
    "named_callbacks",
    "release_free_memory",
    "resolve_device",
    "resume",
    "shared_seed",
    "validation_split",
]
