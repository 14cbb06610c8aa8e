"""From user input to batches.

Columns, image decoding, the feature cache, datasets, and the pipelines that choose what is
computed once per fit.
"""

from .columns import (
    check_sample_weight,
    extract_columns,
    is_missing,
    is_missing_image,
    label_indices,
    training_columns,
)
from .dataset import Collate, PostDataset, batch_loader
from .images import IMAGE_POLICIES, handle_image_failures, load_image, load_images
from .pipelines import (
    LowerActivations,
    PooledFeatures,
    RawImages,
    make_pipeline,
    predict_chunks,
)

__all__ = [
    "IMAGE_POLICIES",
    "Collate",
    "LowerActivations",
    "PooledFeatures",
    "PostDataset",
    "RawImages",
    "batch_loader",
    "check_sample_weight",
    "extract_columns",
    "handle_image_failures",
    "is_missing",
    "is_missing_image",
    "label_indices",
    "load_image",
    "load_images",
    "make_pipeline",
    "predict_chunks",
    "training_columns",
]
