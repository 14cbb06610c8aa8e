"""The network trained by skorch: text encoder + image encoder + fusion head."""

from __future__ import annotations

import torch
from torch import nn

from .encoders import ImageEncoder, TextEncoder
from .fusion import AttentionFusion
from .net import autocast_dtype

FINETUNE_MODES = ("full", "top", "frozen")
# What finetune="top" trains. Text is the stronger modality on MVSA, and MiniLM's layers are
# cheap on short posts; the image side trains only its last block stage and head
# convolution, so its frozen lower part (run once per fit) does most of the image work.
# On MVSA dev, 4 + 1 reached 73.8 +- 1.4 % accuracy over seeds 0-2 (commit 540f562) against
# 72.4 +- 0.3 % for 2 + 2 (seeds 0-1, commit 0e819be) at about the same epoch time
# (docs/benchmarks.md, docs/performance.md).
TOP_TEXT_LAYERS = 4
TOP_IMAGE_BLOCKS = 1


def _none(present: torch.Tensor | None) -> bool:
    """Whether a presence mask says that no row of the batch has this modality."""
    return present is not None and not bool(present.any())


class MultimodalNet(nn.Module):
    """Both encoders and a fusion head, jointly trainable end to end.

    ``forward`` takes either raw batches (token ids and uint8 pixels), which run through the
    encoders, or precomputed encoder outputs (``text_features`` / ``image_features``), which
    skip them; frozen-encoder fits use the second path so every image is encoded only once.

    A row whose text or image is missing (``text_present`` / ``image_present`` False) gets a
    learned "missing" vector in place of that modality's encoding. In training, modality
    dropout hides the text of a ``modality_dropout`` share of the complete rows and the image
    of another such share, so that text-only and image-only predictions are meaningful.

    Args:
        text_encoder: the text encoder module.
        image_encoder: the image encoder module.
        head: a fusion head from `mmsentiment.fusion`.
        finetune: ``"full"`` trains everything; ``"top"`` only the top 4 transformer layers
            of the text encoder (`TOP_TEXT_LAYERS`), the last block stage and head
            convolution of the image encoder (`TOP_IMAGE_BLOCKS`), and the fusion head;
            ``"frozen"`` only the fusion head.
        modality_dropout: share of complete training rows whose text is hidden, and share
            whose image is hidden (at most 0.5).
        precision: ``"32"`` (float32), or ``"bf16"`` / ``"fp16"`` to run the forward pass
            under ``torch.autocast`` with that dtype; the weights stay float32.
        frozen_batchnorm: batch-norm layers normalise with their running statistics in
            training too (their scale and shift still train), so that a batch's update does
            not depend on how it is split into micro-batches.
        aux_classes: when above zero, one linear head per modality that predicts that
            modality's own label from its encoder vector (auxiliary targets, e.g. MVSA's
            ``text_label`` and ``image_label``). In training, a batch that carries such
            labels (``text_label`` / ``image_label``, -1 where unknown) then makes
            ``forward`` return ``(logits, text_logits, text_labels, image_logits,
            image_labels)``, the labels set to -1 for rows without that modality
            (`mmsentiment.net.SentimentNet.get_loss` adds their cross-entropies);
            otherwise, and always in evaluation, it returns the logits alone.
    """

    def __init__(self, text_encoder: TextEncoder, image_encoder: ImageEncoder,
                 head: nn.Module, finetune: str = "full", modality_dropout: float = 0.0,
                 precision: str = "32", frozen_batchnorm: bool = False,
                 aux_classes: int = 0) -> None:
        super().__init__()
        if finetune not in FINETUNE_MODES:
            raise ValueError(f"finetune must be one of {FINETUNE_MODES}, got {finetune!r}")
        if not 0.0 <= modality_dropout <= 0.5:
            raise ValueError(f"modality_dropout must be in [0, 0.5], got {modality_dropout!r}")
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.head = head
        self.finetune = finetune
        self.modality_dropout = modality_dropout
        autocast_dtype(precision)  # checks the name
        self.precision = precision
        self.frozen_batchnorm = frozen_batchnorm
        self.cache_keys: tuple[str, str] | None = None  # set by frozen fits (feature cache)
        self.missing_text = nn.Parameter(torch.zeros(text_encoder.dim))
        self.missing_image = nn.Parameter(torch.zeros(image_encoder.dim))
        if aux_classes:
            text_dim = text_encoder.token_dim if self.sequences else text_encoder.dim
            self.text_aux = nn.Linear(text_dim, aux_classes)
            self.image_aux = nn.Linear(image_encoder.dim, aux_classes)
        self._trainable: list[nn.Module] = []
        self._freeze()

    def _freeze(self) -> None:
        if self.finetune == "full":
            return
        self.text_encoder.requires_grad_(False)
        self.image_encoder.requires_grad_(False)
        if self.finetune == "top":
            trainable = (self.text_encoder.transformer_layers()[-TOP_TEXT_LAYERS:]
                         + self.image_encoder.top_modules(TOP_IMAGE_BLOCKS))
            for module in trainable:
                module.requires_grad_(True)
            # A plain list: these modules are registered already; it only remembers which
            # parts of the encoders train.
            object.__setattr__(self, "_trainable", trainable)

    @property
    def sequences(self) -> bool:
        """Whether the head attends over token and patch sequences (`AttentionFusion`)."""
        return bool(getattr(self.head, "sequences", False))

    @property
    def caches_image_lower(self) -> bool:
        """Whether ``"top"`` fits can compute the image encoder's frozen lower part once."""
        return self.finetune == "top" and self.image_encoder.splittable()

    def train(self, mode: bool = True) -> MultimodalNet:
        # Frozen encoder parts stay in eval mode (no dropout, fixed batch-norm statistics).
        super().train(mode)
        if self.finetune != "full":
            self.text_encoder.eval()
            self.image_encoder.eval()
            for module in self._trainable:
                module.train(mode)
        if getattr(self, "frozen_batchnorm", False):
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def encode_text(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """Text vectors for a tokenized batch."""
        return self.text_encoder(input_ids, attention_mask, token_type_ids)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image vectors for a batch of uint8 pixels."""
        return self.image_encoder(pixels)

    def forward(self, **batch):
        dtype = autocast_dtype(getattr(self, "precision", "32"))
        if dtype is None:
            return self._forward(**batch)
        with torch.autocast(self.missing_text.device.type, dtype=dtype):
            out = self._forward(**batch)
        if isinstance(out, tuple):  # logits and auxiliary (logits, labels) pairs
            return tuple(t.float() if t.is_floating_point() else t for t in out)
        return out.float()

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

    def _auxiliary_targets(self, text_label) -> bool:
        """Whether this pass trains the auxiliary heads (training, labels in the batch)."""
        return self.training and text_label is not None and hasattr(self, "text_aux")

    def _auxiliary(self, text_vector, image_vector, text_present, image_present, text_label,
                   image_label) -> tuple[torch.Tensor, ...]:
        """Each auxiliary head's logits on its encoder's vector, and the labels, -1 for rows
        without that modality (they have no such label)."""
        return (self.text_aux(text_vector), torch.where(text_present, text_label, -1),
                self.image_aux(image_vector), torch.where(image_present, image_label, -1))

    def _forward_sequences(self, input_ids=None, attention_mask=None, token_type_ids=None,
                           pixels=None, text_present=None, image_present=None,
                           image_lower=None, text_label=None, image_label=None):
        """The forward pass of a head over sequences: a missing or hidden modality has all
        of its positions masked; a batch without any text (or image) gets one masked
        position for it and skips that encoder."""
        reference = next(t for t in (input_ids, pixels, image_lower) if t is not None)
        n, device = len(reference), reference.device
        ones = torch.ones(n, dtype=torch.bool, device=device)
        text_present = ones if text_present is None else text_present
        image_present = ones if image_present is None else image_present
        blank = self.missing_text.new_zeros
        if _none(text_present):
            tokens = blank(n, 1, self.text_encoder.token_dim)
            token_mask = torch.zeros(n, 1, dtype=torch.bool, device=device)
        else:
            tokens, token_mask = self.text_encoder.tokens(input_ids, attention_mask,
                                                          token_type_ids)
        if _none(image_present):
            patches = blank(n, 1, self.image_encoder.dim)
        elif image_lower is not None:
            patches = self.image_encoder.upper_patches(image_lower.float(), TOP_IMAGE_BLOCKS)
        else:
            patches = self.image_encoder.patches(pixels)
        patch_mask = image_present[:, None].expand(-1, patches.shape[1])
        token_mask = token_mask & text_present[:, None]
        aux = None
        if self._auxiliary_targets(text_label):
            aux = self._auxiliary(AttentionFusion._mean(tokens, token_mask), patches.mean(1),
                                  text_present, image_present, text_label, image_label)
        shown_text, shown_image = self._drop_modalities(text_present, image_present)
        logits = self.head(tokens, token_mask & shown_text[:, None], patches,
                           patch_mask & shown_image[:, None])
        return logits if aux is None else (logits, *aux)

    def _forward(self, input_ids=None, attention_mask=None, token_type_ids=None, pixels=None,
                 text_features=None, image_features=None, text_present=None,
                 image_present=None, image_lower=None, text_label=None,
                 image_label=None):
        if self.sequences:
            if text_features is not None or image_features is not None:
                raise ValueError("a fusion head over sequences cannot use precomputed "
                                 "(pooled) encoder outputs")
            return self._forward_sequences(input_ids, attention_mask, token_type_ids, pixels,
                                           text_present, image_present, image_lower,
                                           text_label, image_label)
        # A batch without any text (or image) skips that encoder: training on texts alone
        # costs no image forward pass, and vice versa.
        if text_features is None and _none(text_present):
            text_features = self.missing_text.expand(len(text_present), -1)
        elif text_features is None:
            text_features = self.encode_text(input_ids, attention_mask, token_type_ids)
        if image_features is None and _none(image_present):
            image_features = self.missing_image.expand(len(image_present), -1)
        elif image_features is None and image_lower is not None:
            image_features = self.image_encoder.upper(image_lower.float(), TOP_IMAGE_BLOCKS)
        elif image_features is None:
            image_features = self.encode_image(pixels)
        n, device = len(text_features), text_features.device
        ones = torch.ones(n, dtype=torch.bool, device=device)
        text_present = ones if text_present is None else text_present
        image_present = ones if image_present is None else image_present
        aux = None
        if self._auxiliary_targets(text_label):
            aux = self._auxiliary(text_features, image_features, text_present, image_present,
                                  text_label, image_label)
        text_present, image_present = self._drop_modalities(text_present, image_present)
        text_features = torch.where(text_present[:, None], text_features,
                                    self.missing_text.to(text_features.dtype))
        image_features = torch.where(image_present[:, None], image_features,
                                     self.missing_image.to(image_features.dtype))
        logits = self.head(text_features, image_features)
        return logits if aux is None else (logits, *aux)

    def drop_auxiliary_heads(self) -> None:
        """Remove the auxiliary heads (after training: prediction never uses them)."""
        for name in ("text_aux", "image_aux"):
            if hasattr(self, name):
                delattr(self, name)


def layer_decay_groups(net: MultimodalNet, text_lr: float, image_lr: float,
                       decay: float) -> list[tuple[str, dict]]:
    """skorch ``optimizer__param_groups`` for layer-wise learning-rate decay.

    Each encoder is cut into depth units, lowest first: for the text encoder everything
    outside its transformer layers (the embeddings), then each layer; for a timm
    EfficientNet-style image encoder the stem, each block stage, then the head convolution
    (other image models: their children that hold weights). The top unit learns at the
    encoder's learning rate and each unit below at ``decay`` times the one above it.
    Patterns are matched in order and the first match wins, so each encoder's catch-all
    pattern (its lowest rate) comes last.

    >>> from mmsentiment.encoders import TextEncoder, ImageEncoder
    >>> from mmsentiment.fusion import ConcatFusion
    >>> t, i = TextEncoder("all-MiniLM-L6-v2"), ImageEncoder("tf_efficientnet_lite0")
    >>> groups = layer_decay_groups(MultimodalNet(t, i, ConcatFusion(t.dim, i.dim, 3)),
    ...                             1e-4, 1e-4, 0.5)
    >>> groups[0]
    ('text_encoder.model.0.model.encoder.layer.5.*', {'lr': 0.0001})
    >>> [g for g in groups if g[0] == "text_encoder.*"]
    [('text_encoder.*', {'lr': 1.5625e-06})]
    """
    names = {module: name for name, module in net.named_modules()}
    groups = []
    text_units = [[layer] for layer in net.text_encoder.transformer_layers()]
    image = net.image_encoder
    if image.splittable():
        image_units = ([[image.model.conv_stem, image.model.bn1]]
                       + [[stage] for stage in image.model.blocks]
                       + [[image.model.conv_head, image.model.bn2]])
    else:
        image_units = [[m] for m in image.model.children() if any(True for _ in m.parameters())]
    for prefix, units, lr, lowest_first in (("text_encoder", text_units, text_lr, False),
                                            ("image_encoder", image_units, image_lr, True)):
        # The text encoder's units are its layers; its remaining parameters (embeddings)
        # sit one unit below the lowest layer. The image units cover the whole trunk.
        depth = len(units) - (1 if lowest_first else 0)
        for k, unit in enumerate(reversed(units)):
            for module in unit:
                groups.append((f"{names[module]}.*", {"lr": lr * decay ** k}))
        groups.append((f"{prefix}.*", {"lr": lr * decay ** depth}))
    return groups
