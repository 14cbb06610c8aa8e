"""The network that skorch trains: text encoder + image encoder + fusion head."""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from torch import nn

from ..encoders import ImageEncoder, TextEncoder
from ..encoders.text import TOKEN_COLUMNS
from ..precision import text_autocast
from .finetune import Finetune, get_finetune
from .fusion import FUSIONS, FusionHead, masked_mean


class AuxiliaryOutput(NamedTuple):
    """What `MultimodalNet` returns in training when a batch carries per-modality labels.

    Attributes
    ----------
    logits : Tensor
        The fused class logits ``(N, n_classes)``.
    auxiliary : tuple of (Tensor, Tensor)
        For the text and then the image: the auxiliary head's logits and the labels, -1
        where unknown or where the post lacks that modality.
    """

    logits: torch.Tensor
    auxiliary: tuple[tuple[torch.Tensor, torch.Tensor], ...]


def _none(present: torch.Tensor) -> bool:
    """Whether a presence mask says that no row of the batch has this modality."""
    return not bool(present.any())


class MultimodalNet(nn.Module):
    """Both encoders and a fusion head, jointly trainable end to end.

    ``forward`` takes a batch as named inputs: for each modality either raw inputs (token
    ids; uint8 ``pixels``), which run through the encoder, or precomputed outputs
    (``text_features`` / ``image_features``: pooled vectors; ``image_lower``: the image
    encoder's activations below its top group), which skip all or part of it. Each
    modality reaches the head as a sequence with a mask (`mmsentiment.nn.fusion`): a
    pooled vector is a sequence of length one.

    A row whose text or image is missing (``text_present`` / ``image_present`` False) is
    masked out of a sequence head's input; a pooled head gets a learned "missing" vector in
    its place. In training, modality dropout hides the text of a ``modality_dropout`` share
    of the complete rows and the image of another such share, so that text-only and
    image-only predictions are meaningful. A batch without any text (or image) skips that
    encoder.

    Parameters
    ----------
    text_encoder : TextEncoder
        The text encoder module.
    image_encoder : ImageEncoder
        The image encoder module.
    head : FusionHead
        A fusion head from `mmsentiment.nn.fusion`.
    finetune : str or Finetune, default="full"
        Which encoder layer groups train (`mmsentiment.nn.finetune`); frozen parts stay
        in evaluation mode (no dropout, fixed batch-norm statistics).
    modality_dropout : float, default=0.0
        Share of complete training rows whose text is hidden, and share whose image is
        hidden (at most 0.5).
    frozen_batchnorm : bool, default=False
        Batch-norm layers normalise with their running statistics in training too (their
        scale and shift still train), so that a batch's update does not depend on how it is
        split into micro-batches.
    aux_classes : int, default=0
        When above zero, one linear head per modality that predicts that modality's own
        label from its encoding (auxiliary targets, e.g. MVSA's ``text_label`` and
        ``image_label``). In training, a batch that carries ``text_label`` /
        ``image_label`` then makes ``forward`` return an `AuxiliaryOutput`; otherwise, and
        always in evaluation, it returns the logits alone.
    """

    def __init__(self, text_encoder: TextEncoder, image_encoder: ImageEncoder,
                 head: FusionHead, finetune: str | Finetune = "full",
                 modality_dropout: float = 0.0, frozen_batchnorm: bool = False,
                 aux_classes: int = 0) -> None:
        super().__init__()
        if not 0.0 <= modality_dropout <= 0.5:
            raise ValueError(f"modality_dropout must be in [0, 0.5], got {modality_dropout!r}")
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.head = head
        self.finetune = get_finetune(finetune)
        self.modality_dropout = modality_dropout
        self.frozen_batchnorm = frozen_batchnorm
        self.sequences = bool(head.sequences)
        self.missing_text = nn.Parameter(torch.zeros(text_encoder.dim))
        self.missing_image = nn.Parameter(torch.zeros(image_encoder.dim))
        if aux_classes:
            text_dim = text_encoder.token_dim if self.sequences else text_encoder.dim
            self.text_aux = nn.Linear(text_dim, aux_classes)
            self.image_aux = nn.Linear(image_encoder.dim, aux_classes)
        self.finetune.apply(text_encoder, image_encoder)

    def train(self, mode: bool = True) -> MultimodalNet:
        """Set training mode; frozen encoder parts stay in evaluation mode."""
        super().train(mode)
        if not self.finetune.trains_everything:
            for encoder in (self.text_encoder, self.image_encoder):
                _train_trainable(encoder, mode)
        if self.frozen_batchnorm:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, text_present: torch.Tensor, image_present: torch.Tensor,
                text_label: torch.Tensor | None = None,
                image_label: torch.Tensor | None = None, **inputs: torch.Tensor):
        """Class logits for a batch (an `AuxiliaryOutput` in training with labels)."""
        text, text_mask = self._encode_text(inputs, text_present)
        image, image_mask = self._encode_image(inputs, image_present)
        auxiliary = None
        if self.training and text_label is not None and hasattr(self, "text_aux"):
            auxiliary = ((self.text_aux(masked_mean(text, text_mask & text_present[:, None])),
                          torch.where(text_present, text_label, -1)),
                         (self.image_aux(image.mean(1)),
                          torch.where(image_present, image_label, -1)))
        shown_text, shown_image = self._drop_modalities(text_present, image_present)
        if self.sequences:
            text_mask = text_mask & shown_text[:, None]
            image_mask = image_mask & shown_image[:, None]
        else:  # a pooled head reads the learned "missing" vector in place of an absent one
            text = torch.where(shown_text[:, None, None], text,
                               self.missing_text.to(text.dtype))
            image = torch.where(shown_image[:, None, None], image,
                                self.missing_image.to(image.dtype))
            text_mask = image_mask = torch.ones_like(shown_text)[:, None]
        logits = self.head(text, text_mask, image, image_mask)
        return logits if auxiliary is None else AuxiliaryOutput(logits, auxiliary)

    def _encode_text(self, inputs: dict, present: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The text as ``(N, L, D)`` with its mask of real tokens."""
        n, device = len(present), present.device
        if "text_features" in inputs:
            return inputs["text_features"][:, None], torch.ones(n, 1, dtype=torch.bool,
                                                                device=device)
        if _none(present):  # no text in the batch: skip the encoder
            dim = self.text_encoder.token_dim if self.sequences else self.text_encoder.dim
            vector = self.missing_text if not self.sequences else self.missing_text.new_zeros(dim)
            return vector.expand(n, 1, dim), torch.zeros(n, 1, dtype=torch.bool, device=device)
        tokens = {k: inputs[k] for k in TOKEN_COLUMNS if k in inputs}
        # A text-only precision (`mmsentiment.precision`) runs this encoder alone in its dtype.
        with text_autocast(device.type) as dtype:
            if self.sequences:
                vectors, mask = self.text_encoder.tokens(**tokens)
            else:
                vectors = self.text_encoder(**tokens)[:, None]
                mask = torch.ones(n, 1, dtype=torch.bool, device=device)
        return (vectors.float() if dtype is not None else vectors), mask

    def _encode_image(self, inputs: dict, present: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """The image as ``(N, L, D)`` with its mask (False for rows without an image)."""
        if "image_features" in inputs:
            return inputs["image_features"][:, None], present[:, None]
        if _none(present):  # no image in the batch: skip the encoder
            vector = self.missing_image if not self.sequences else \
                self.missing_image.new_zeros(self.image_encoder.dim)
            return vector.expand(len(present), 1, -1), present[:, None]
        encoder = self.image_encoder
        if "image_lower" in inputs:
            lower = inputs["image_lower"].float()
            image = encoder.upper_patches(lower) if self.sequences else \
                encoder.upper(lower)[:, None]
        else:
            image = encoder.patches(inputs["pixels"]) if self.sequences else \
                encoder(inputs["pixels"])[:, None]
        return image, present[:, None].expand(-1, image.shape[1])

    def _drop_modalities(self, text_present: torch.Tensor, image_present: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Modality dropout (training only): hide the text of a ``modality_dropout`` share
        of the complete rows and the image of another such share."""
        if not (self.training and self.modality_dropout > 0):
            return text_present, image_present
        both = text_present & image_present
        draw = torch.rand(len(both), device=both.device)
        p = self.modality_dropout
        return (text_present & ~(both & (draw < p)),
                image_present & ~(both & (draw >= p) & (draw < 2 * p)))

    def drop_auxiliary_heads(self) -> None:
        """Remove the auxiliary heads (after training: prediction never uses them)."""
        for name in ("text_aux", "image_aux"):
            if hasattr(self, name):
                delattr(self, name)


def _train_trainable(encoder: nn.Module, mode: bool) -> None:
    """Training mode for the parts of ``encoder`` whose parameters all train, evaluation
    mode elsewhere; a module without parameters follows the module that holds it."""
    training: dict[str, bool] = {}
    for name, module in encoder.named_modules():
        parameters = list(module.parameters())
        if parameters:
            on = all(p.requires_grad for p in parameters)
        else:
            on = training.get(name.rpartition(".")[0], False)
        training[name] = on
        module.training = mode and on


def build_network(text_encoder, image_encoder, fusion: str, n_classes: int, *,
                  finetune: str | Finetune = "full", modality_dropout: float = 0.0,
                  frozen_batchnorm: bool = False, auxiliary: bool = False,
                  gradient_checkpointing: bool = False, image_size: int | None = None,
                  seed: int | None = None) -> MultimodalNet:
    """Load both encoders and join them with a new fusion head.

    Parameters
    ----------
    text_encoder : str, path or SentenceTransformer
        See `TextEncoder`.
    image_encoder : str, path or torch.nn.Module
        See `ImageEncoder`.
    fusion : str
        A name of `mmsentiment.nn.fusion.FUSIONS`.
    n_classes : int
        Outputs of the head.
    finetune, modality_dropout, frozen_batchnorm
        As `MultimodalNet`.
    auxiliary : bool, default=False
        Add one auxiliary head per modality.
    gradient_checkpointing : bool, default=False
        Let the text encoder recompute its activations in training's backward pass
        (`TextEncoder.set_gradient_checkpointing`).
    image_size : int, optional
        Side of the image encoder's square input in pixels (`ImageEncoder`'s ``size``);
        ``None``: its pretrained size.
    seed : int, optional
        Seeds torch's global generator once the encoders are loaded, before the head is
        initialised: loading may draw random numbers or not (a first load in a process
        builds the model, later ones copy a cached one), so the head's initial weights
        depend on the seed alone.

    Returns
    -------
    MultimodalNet
    """
    name = lambda v: v if isinstance(v, nn.Module) else os.fspath(v)  # noqa: E731
    text = TextEncoder(name(text_encoder))
    if gradient_checkpointing:
        text.set_gradient_checkpointing(True)
    image = ImageEncoder(name(image_encoder), size=image_size)
    if seed is not None:
        torch.manual_seed(seed)
    head_class = FUSIONS[fusion]
    head = head_class(text.token_dim if head_class.sequences else text.dim, image.dim,
                      n_classes)
    return MultimodalNet(text, image, head, finetune=finetune,
                         modality_dropout=modality_dropout, frozen_batchnorm=frozen_batchnorm,
                         aux_classes=n_classes if auxiliary else 0)
