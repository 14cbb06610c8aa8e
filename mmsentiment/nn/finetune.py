"""What a fit trains besides the fusion head: the ``finetune`` choice, made once as an object."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Finetune:
    """One ``finetune`` setting: how many of each encoder's top layer groups train.

    Each encoder reports its own layer groups, lowest first (`TextEncoder.layer_groups`:
    embeddings, then each transformer layer; `ImageEncoder.layer_groups`: timm's coarse
    groups, e.g. stem, block stages, head), so a setting means the same for any model.

    Parameters
    ----------
    name : str
        The setting's name.
    text_groups : int or None
        Top groups of the text encoder that train; ``None``: all of it.
    image_groups : int or None
        Top groups of the image encoder that train; ``None``: all of it.
    micro_batch_size : int or None
        What ``micro_batch_size="auto"`` means under this setting: chunks of 4 where
        encoder activations dominate memory, whole batches where the trained part is small.

    Examples
    --------
    >>> get_finetune("top").trains_encoders, get_finetune("frozen").trains_encoders
    (True, False)
    """

    name: str
    text_groups: int | None
    image_groups: int | None
    micro_batch_size: int | None

    @property
    def trains_encoders(self) -> bool:
        """Whether any encoder weight trains (else encoder outputs can be cached)."""
        return self.text_groups != 0 or self.image_groups != 0

    @property
    def trains_everything(self) -> bool:
        """Whether both whole encoders train (joint fine-tuning)."""
        return self.text_groups is None and self.image_groups is None

    def resolve_micro_batch_size(self, setting: int | str | None) -> int | None:
        """The micro-batch size that a ``micro_batch_size`` setting means here ("auto":
        this setting's own)."""
        return self.micro_batch_size if setting == "auto" else setting

    def trainable_names(self, encoder: nn.Module, groups: int | None) -> set[str]:
        """The parameter names of ``encoder`` that train when its top ``groups`` do."""
        if groups is None:
            return {name for name, _ in encoder.named_parameters()}
        if groups == 0:
            return set()
        return {name for group in encoder.layer_groups()[-groups:] for name in group}

    def apply(self, text_encoder: nn.Module, image_encoder: nn.Module) -> None:
        """Set ``requires_grad`` on both encoders' parameters to this setting, and cut the
        image encoder's trunk (`ImageEncoder.top_groups`) below the groups that train."""
        if self.image_groups and hasattr(image_encoder, "top_groups"):
            image_encoder.top_groups = self.image_groups
        for encoder, groups in ((text_encoder, self.text_groups),
                                (image_encoder, self.image_groups)):
            trainable = self.trainable_names(encoder, groups)
            for name, parameter in encoder.named_parameters():
                parameter.requires_grad_(name in trainable)


# "top": text carries most of the signal on MVSA and MiniLM's layers are cheap on short
# posts, so 4 text layers train; the image side trains its top group only (for EfficientNet
# the last block stage and head convolution), so the frozen part below it runs once per fit.
# "top-image": the whole text encoder trains, the image side as in "top"; the image encoder's
# forward and backward were about 85 % of a full epoch's time (docs/performance.md).
FINETUNE_MODES: dict[str, Finetune] = {
    "full": Finetune("full", None, None, micro_batch_size=4),
    "top-image": Finetune("top-image", None, 1, micro_batch_size=None),
    "top": Finetune("top", 4, 1, micro_batch_size=None),
    "frozen": Finetune("frozen", 0, 0, micro_batch_size=None),
}


def get_finetune(finetune: str | Finetune) -> Finetune:
    """The `Finetune` named ``finetune`` (a `Finetune` passes through).

    Examples
    --------
    >>> get_finetune("top").text_groups
    4
    """
    if isinstance(finetune, Finetune):
        return finetune
    if finetune not in FINETUNE_MODES:
        raise ValueError(f"finetune must be one of {tuple(FINETUNE_MODES)}, got {finetune!r}")
    return FINETUNE_MODES[finetune]
