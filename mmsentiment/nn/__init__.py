"""The network: encoders joined by a fusion head, what trains, and its parameter groups."""

from .finetune import FINETUNE_MODES, Finetune, get_finetune
from .fusion import (
    FUSIONS,
    AttentionFusion,
    ConcatFusion,
    FusionHead,
    PaperFusion,
    masked_mean,
)
from .model import AuxiliaryOutput, MultimodalNet, build_network
from .param_groups import layer_decay_groups

__all__ = [
    "FINETUNE_MODES",
    "FUSIONS",
    "AttentionFusion",
    "AuxiliaryOutput",
    "ConcatFusion",
    "Finetune",
    "FusionHead",
    "MultimodalNet",
    "PaperFusion",
    "build_network",
    "get_finetune",
    "layer_decay_groups",
    "masked_mean",
]
