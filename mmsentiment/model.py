"""The network trained by skorch: text encoder + image encoder + fusion head."""

from __future__ import annotations

import torch
from torch import nn

from .encoders import ImageEncoder, TextEncoder

FINETUNE_MODES = ("full", "top", "frozen")
TOP_TEXT_LAYERS = 2
TOP_IMAGE_STAGES = 3


class MultimodalNet(nn.Module):
    """Both encoders and a fusion head, jointly trainable end to end.

    ``forward`` takes either raw batches (token ids and uint8 pixels), which run through the
    encoders, or precomputed encoder outputs (``text_features`` / ``image_features``), which
    skip them; frozen-encoder fits use the second path so every image is encoded only once.

    Args:
        text_encoder: the text encoder module.
        image_encoder: the image encoder module.
        head: a fusion head from :mod:`mmsentiment.fusion`.
        finetune: ``"full"`` trains everything, ``"top"`` only the top transformer layers and
            image stages (plus the head), ``"frozen"`` only the head.
    """

    def __init__(self, text_encoder: TextEncoder, image_encoder: ImageEncoder,
                 head: nn.Module, finetune: str = "full") -> None:
        super().__init__()
        if finetune not in FINETUNE_MODES:
            raise ValueError(f"finetune must be one of {FINETUNE_MODES}, got {finetune!r}")
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.head = head
        self.finetune = finetune
        self._frozen: list[nn.Module] = []
        self._freeze()

    def _freeze(self) -> None:
        if self.finetune == "full":
            return
        if self.finetune == "frozen":
            frozen = [self.text_encoder, self.image_encoder]
        else:
            layers = self.text_encoder.transformer_layers()
            stages = self.image_encoder.top_layers()
            trainable = layers[-TOP_TEXT_LAYERS:] + stages[-TOP_IMAGE_STAGES:]
            for enc in (self.text_encoder, self.image_encoder):
                enc.requires_grad_(False)
            for module in trainable:
                module.requires_grad_(True)
            frozen = [m for m in layers[:-TOP_TEXT_LAYERS] + stages[:-TOP_IMAGE_STAGES]]
            frozen += [m for m in self.text_encoder.modules()
                       if isinstance(m, nn.Embedding)]
        for module in frozen:
            module.requires_grad_(False)
        # Plain list: the modules are registered already, this only remembers which to keep
        # in eval mode (no dropout, fixed batch-norm statistics) while the rest trains.
        object.__setattr__(self, "_frozen", frozen)

    def train(self, mode: bool = True) -> MultimodalNet:
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    def encode_text(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """Text vectors for a tokenized batch."""
        return self.text_encoder(input_ids, attention_mask, token_type_ids)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image vectors for a batch of uint8 pixels."""
        return self.image_encoder(pixels)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, pixels=None,
                text_features=None, image_features=None) -> torch.Tensor:
        if text_features is None:
            text_features = self.encode_text(input_ids, attention_mask, token_type_ids)
        if image_features is None:
            image_features = self.encode_image(pixels)
        return self.head(text_features, image_features)
