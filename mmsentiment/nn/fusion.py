"""Fusion heads: from the text's and the image's encodings to class logits.

Every head is a `FusionHead`, built as ``Head(text_dim, image_dim, n_classes)`` and called
as ``head(text, text_mask, image, image_mask)``: each modality arrives as a sequence
``(N, L, D)`` with a mask ``(N, L)`` of the positions to read. Heads over pooled vectors
(``sequences = False``) receive sequences of length one; heads that attend over tokens and
image regions (``sequences = True``) receive the encoders' token and patch sequences.
`FUSIONS` maps the names accepted by ``MultimodalSentimentClassifier(fusion=...)`` onto the
classes.
"""

from __future__ import annotations

import torch
from torch import nn


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` ``(N, L, D)`` over the positions where ``mask`` ``(N, L)`` is True.

    Rows without any marked position give zeros; a length-one sequence with its position
    marked gives the vector itself, exactly.

    Examples
    --------
    >>> x = torch.tensor([[[1.0], [3.0]], [[5.0], [7.0]]])
    >>> masked_mean(x, torch.tensor([[True, True], [True, False]])).ravel().tolist()
    [2.0, 5.0]
    """
    weights = mask.to(x.dtype)[..., None]
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class FusionHead(nn.Module):
    """Base of the fusion heads: the one call signature, and which inputs a head reads.

    Attributes
    ----------
    sequences : bool
        ``False``: the head reads one pooled vector per modality (a sequence of length one);
        ``True``: it reads token and image-region sequences.
    """

    sequences = False

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor,
                image_mask: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, n_classes)`` from ``(N, L, D)`` sequences and their masks."""
        raise NotImplementedError


class ConcatFusion(FusionHead):
    """Project each modality, concatenate, classify (the package default).

    Each modality's pooled vector gets ``Linear(dim, hidden)`` and GELU; the two projections
    are concatenated, dropped out and fed to one linear layer.

    Parameters
    ----------
    text_dim : int
        Size of the text vector.
    image_dim : int
        Size of the image vector.
    n_classes : int
        Number of output logits.
    hidden : int, default=256
        Size of each modality's projection.
    dropout : float, default=0.3
        Dropout rate before the classifier.

    Examples
    --------
    >>> head = ConcatFusion(384, 1280, 3)
    >>> one = torch.ones(4, 1, dtype=torch.bool)
    >>> head(torch.zeros(4, 1, 384), one, torch.zeros(4, 1, 1280), one).shape
    torch.Size([4, 3])
    """

    def __init__(self, text_dim: int, image_dim: int, n_classes: int,
                 hidden: int = 256, dropout: float = 0.3) -> None:
        super().__init__()
        self.text_proj = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU())
        self.image_proj = nn.Sequential(nn.Linear(image_dim, hidden), nn.GELU())
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, n_classes))

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor,
                image_mask: torch.Tensor) -> torch.Tensor:
        joint = torch.cat([self.text_proj(masked_mean(text, text_mask)),
                           self.image_proj(masked_mean(image, image_mask))], dim=1)
        return self.classifier(joint)


class PaperFusion(FusionHead):
    """The fusion of Toledo & Marcacini (2022), as in the authors' published code.

    ``Linear(dim, 32)`` + ReLU per modality, concatenation (64), one
    ``TransformerEncoderLayer(d_model=64, nhead=8, dropout=0.4)`` over a sequence of length one,
    then Dropout(0.5), ``Linear(64, 128)``, ReLU, Dropout(0.5), ``Linear(128, n_classes)``.
    Over a length-one sequence the attention can only mix a token with itself; the layer is kept
    to reproduce the published method faithfully.

    Parameters
    ----------
    text_dim, image_dim, n_classes : int
        As for `ConcatFusion`.

    Examples
    --------
    >>> text, image = torch.zeros(2, 1, 384), torch.zeros(2, 1, 1280)
    >>> mask = torch.ones(2, 1, dtype=torch.bool)  # one pooled position per modality
    >>> tuple(PaperFusion(384, 1280, 3)(text, mask, image, mask).shape)
    (2, 3)
    """

    def __init__(self, text_dim: int, image_dim: int, n_classes: int) -> None:
        super().__init__()
        self.text_proj = nn.Sequential(nn.Linear(text_dim, 32), nn.ReLU())
        self.image_proj = nn.Sequential(nn.Linear(image_dim, 32), nn.ReLU())
        self.encoder = nn.TransformerEncoderLayer(d_model=64, nhead=8, dropout=0.4,
                                                  batch_first=True)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, n_classes),
        )

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor,
                image_mask: torch.Tensor) -> torch.Tensor:
        joint = torch.cat([self.text_proj(masked_mean(text, text_mask)),
                           self.image_proj(masked_mean(image, image_mask))], dim=1)
        return self.classifier(self.encoder(joint.unsqueeze(1)).squeeze(1))


class AttentionFusion(FusionHead):
    """Cross-modal attention over text tokens and image patches.

    This head reads sequences (``sequences = True``): the text
    encoder's token vectors and the image encoder's patch vectors (the cells of its last
    feature map). Each is projected to ``hidden`` and tagged with a learned modality
    embedding; a learned summary token is put in front, and ``layers`` pre-norm transformer
    layers let every position attend to every other, across modalities. The classifier reads
    the summary token's output beside the mean of each modality's projected positions (the
    concat head's view, so nothing it sees is lost). Masked positions (padding, or a whole
    modality that is missing or hidden by modality dropout) are never attended to.

    Parameters
    ----------
    text_dim : int
        Size of a token vector.
    image_dim : int
        Size of a patch vector.
    n_classes : int
        Number of output logits.
    hidden : int, default=256
        Width of the attention layers.
    heads : int, default=4
        Attention heads.
    layers : int, default=1
        Transformer layers.
    dropout : float, default=0.1
        Dropout in the layers and before the classifier.

    Examples
    --------
    >>> head = AttentionFusion(384, 1280, 3)
    >>> text, image = torch.zeros(2, 5, 384), torch.zeros(2, 49, 1280)
    >>> text_mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    >>> head(text, text_mask, image, torch.ones(2, 49, dtype=torch.bool)).shape
    torch.Size([2, 3])
    """

    sequences = True

    def __init__(self, text_dim: int, image_dim: int, n_classes: int, hidden: int = 256,
                 heads: int = 4, layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.text_proj = nn.Linear(text_dim, hidden)
        self.image_proj = nn.Linear(image_dim, hidden)
        self.modality = nn.Parameter(torch.zeros(2, hidden))
        self.summary = nn.Parameter(torch.zeros(1, 1, hidden))
        nn.init.normal_(self.modality, std=0.02)
        nn.init.normal_(self.summary, std=0.02)
        layer = nn.TransformerEncoderLayer(hidden, heads, dim_feedforward=2 * hidden,
                                           dropout=dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        # The fast path's nested tensors would drop masked positions; none here is needed.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(3 * hidden, n_classes))

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor,
                image_mask: torch.Tensor) -> torch.Tensor:
        t = self.text_proj(text) + self.modality[0]
        i = self.image_proj(image) + self.modality[1]
        summary = self.summary.expand(len(t), -1, -1).to(t.dtype)
        sequence = torch.cat([summary, t, i], dim=1)
        keep = torch.cat([torch.ones_like(text_mask[:, :1]), text_mask, image_mask], dim=1)
        out = self.encoder(sequence, src_key_padding_mask=~keep)
        joint = torch.cat([self.norm(out[:, 0]), masked_mean(t, text_mask),
                           masked_mean(i, image_mask)], dim=1)
        return self.classifier(joint)


FUSIONS: dict[str, type[FusionHead]] = {"concat": ConcatFusion, "paper": PaperFusion,
                                       "attention": AttentionFusion}
