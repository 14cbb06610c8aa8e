"""mmsentiment: multimodal (text + image) sentiment classification for scikit-learn users.

>>> from mmsentiment import MultimodalSentimentClassifier
>>> MultimodalSentimentClassifier().get_params()["image_encoder"]
'tf_efficientnet_lite0'
"""

from .classifier import MultimodalSentimentClassifier
from .datasets import load_demo, load_mvsa
from .encoders import EncoderUnavailableError
from .validation import ValidationReport, validate

__version__ = "0.1.0"

__all__ = [
    "MultimodalSentimentClassifier",
    "EncoderUnavailableError",
    "load_demo",
    "load_mvsa",
    "validate",
    "ValidationReport",
    "__version__",
]
