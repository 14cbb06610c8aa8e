"""Pretrained encoders (text: sentence-transformers; images: timm) and where their weights live."""

from .image import ImageEncoder, ImagePreprocessing
from .registry import (
    OFFLINE_IMAGE_ENCODERS,
    OFFLINE_TEXT_ENCODERS,
    EncoderUnavailableError,
)
from .text import TextEncoder

__all__ = [
    "ImageEncoder",
    "ImagePreprocessing",
    "TextEncoder",
    "EncoderUnavailableError",
    "OFFLINE_TEXT_ENCODERS",
    "OFFLINE_IMAGE_ENCODERS",
]
