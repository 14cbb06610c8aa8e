"""mmsentiment: multimodal (text + image) sentiment classification for scikit-learn users.

>>> from mmsentiment import MultimodalSentimentClassifier
>>> MultimodalSentimentClassifier().get_params()["image_encoder"]
'tf_efficientnet_lite0'
"""

from .classifier import MultimodalSentimentClassifier
from .datasets import load_demo, load_mvsa
from .embedders import ImageEmbedder, TextEmbedder
from .encoders import EncoderUnavailableError
from .explain import plot_modality_contributions
from .inputs.tweets import normalize_tweet
from .plots import plot_confusion_matrix, plot_learning_curve, plot_training_curves
from .training.callbacks import WeightAveraging
from .validation import ValidationReport, validate
from .version import __version__

__all__ = [
    "MultimodalSentimentClassifier",
    "TextEmbedder",
    "ImageEmbedder",
    "plot_training_curves",
    "plot_confusion_matrix",
    "plot_learning_curve",
    "plot_modality_contributions",
    "EncoderUnavailableError",
    "load_demo",
    "load_mvsa",
    "normalize_tweet",
    "validate",
    "ValidationReport",
    "WeightAveraging",
    "__version__",
]
