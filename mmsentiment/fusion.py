"""Fusion heads: from one text vector and one image vector to class logits.

Each head is an ``nn.Module`` built as ``Head(text_dim, image_dim, n_classes)`` and called as
``head(text_vec, image_vec)``. `FUSIONS` maps the names accepted by
``MultimodalSentimentClassifier(fusion=...)`` onto the classes.
"""

from __future__ import annotations

import torch
from torch import nn


class ConcatFusion(nn.Module):
    """Project each modality, concatenate, classify (the package default).

    Each modality gets ``Linear(dim, hidden)`` and GELU; the two projections are concatenated,
    dropped out and fed to one linear layer. This head reached 76.2 % dev accuracy on
    MVSA-Single with both encoders fine-tuned (guide, section 3).

    Args:
        text_dim: size of the text vector.
        image_dim: size of the image vector.
        n_classes: number of output logits.
        hidden: size of each modality's projection.
        dropout: dropout rate before the classifier.

    Examples:
        >>> head = ConcatFusion(384, 1280, 3)
        >>> head(torch.zeros(4, 384), torch.zeros(4, 1280)).shape
        torch.Size([4, 3])
    """

    def __init__(self, text_dim: int, image_dim: int, n_classes: int,
                 hidden: int = 256, dropout: float = 0.3) -> None:
        super().__init__()
        self.text_proj = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU())
        self.image_proj = nn.Sequential(nn.Linear(image_dim, hidden), nn.GELU())
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, n_classes))

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        joint = torch.cat([self.text_proj(text), self.image_proj(image)], dim=1)
        return self.classifier(joint)


class PaperFusion(nn.Module):
    """The fusion of Toledo & Marcacini (2022), as in the authors' published code.

    ``Linear(dim, 32)`` + ReLU per modality, concatenation (64), one
    ``TransformerEncoderLayer(d_model=64, nhead=8, dropout=0.4)`` over a sequence of length one,
    then Dropout(0.5), ``Linear(64, 128)``, ReLU, Dropout(0.5), ``Linear(128, n_classes)``.
    Over a length-one sequence the attention can only mix a token with itself; the layer is kept
    to reproduce the published method faithfully.

    Examples:
        >>> head = PaperFusion(384, 1280, 3)
        >>> head(torch.zeros(2, 384), torch.zeros(2, 1280)).shape
        torch.Size([2, 3])
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

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        joint = torch.cat([self.text_proj(text), self.image_proj(image)], dim=1)
        return self.classifier(self.encoder(joint.unsqueeze(1)).squeeze(1))


FUSIONS: dict[str, type[nn.Module]] = {"concat": ConcatFusion, "paper": PaperFusion}
