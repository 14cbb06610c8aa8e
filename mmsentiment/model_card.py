"""The model card of a saved model folder: a ``README.md`` in the Hugging Face hub's layout.

The card is written from the fitted estimator by `model_card`: a YAML front matter that the
hub reads (``library_name: mmsentiment``, ``pipeline_tag``, ``tags``, ``metrics``,
``language``, ``base_model`` where the encoders have hub names) and a Markdown body: the
classes, the training data as far as the estimator knows it, the encoders and training
settings, the metrics, intended use and limits, how to load the model, and the package
version. `mmsentiment.pretrained` writes it beside the weights.

Nothing in a card is read back when a model loads: it describes the model, it does not
configure it.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import TYPE_CHECKING

from sklearn.utils.validation import check_is_fitted

from .encoders.registry import (
    OFFLINE_IMAGE_ENCODERS,
    OFFLINE_TEXT_ENCODERS,
    canonical_text_name,
)
from .persistence import trained_image_size
from .version import __version__

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

LIBRARY_NAME = "mmsentiment"
# The hub has no task for text + image classification; its closest is text classification.
PIPELINE_TAG = "text-classification"
TAGS = ["mmsentiment", "sentiment-analysis", "multimodal", "text-image", "scikit-learn",
        "skorch", "safetensors"]
# Metric names the hub knows, found in the names a caller gives its metrics.
HUB_METRICS = ("accuracy", "f1", "precision", "recall")
MAX_TEXT_CHARS = 10_000
FINETUNE_MEANING = {
    "full": "both encoders and the fusion head trained jointly",
    "top-image": "the whole text encoder, the image encoder's top layer group and the "
                 "fusion head trained; the image layers below run once per fit",
    "top": "the top layer groups of both encoders and the fusion head trained",
    "frozen": "encoders frozen (pretrained weights, referenced by name); only the fusion "
              "head trained",
}
SETTINGS = ("max_epochs", "batch_size", "lr", "text_encoder_lr", "image_encoder_lr",
            "weight_decay", "layer_decay", "warmup", "lr_schedule", "class_weight",
            "logit_adjustment", "label_smoothing", "modality_dropout", "text_normalization",
            "validation_fraction", "patience", "precision", "random_state")


def _md(value) -> str:
    """A value as one line of Markdown table text."""
    text = str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= 200 else text[:197] + "..."


def _py(text: str) -> str:
    """A string as a Python literal in double quotes."""
    return json.dumps(text, ensure_ascii=False)


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _check_text(name: str, value) -> None:
    if value is not None and not (isinstance(value, str) and len(value) <= MAX_TEXT_CHARS):
        raise TypeError(f"{name} must be a string of at most {MAX_TEXT_CHARS} characters, "
                        f"got {type(value).__name__}")


def check_metrics(metrics) -> dict[str, float]:
    """Check the metrics a caller states for the card: names and finite numbers.

    Parameters
    ----------
    metrics : dict of str to number, or None

    Returns
    -------
    dict

    Examples
    --------
    >>> check_metrics({"dev accuracy": 0.75})
    {'dev accuracy': 0.75}
    >>> check_metrics({"dev accuracy": "high"})
    Traceback (most recent call last):
    ...
    TypeError: metrics['dev accuracy'] must be a number, got str
    """
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict of names to numbers, got "
                        f"{type(metrics).__name__}")
    out = {}
    for name, value in metrics.items():
        if not (isinstance(name, str) and 0 < len(name) <= 100):
            raise TypeError(f"a metric name must be a string of 1 to 100 characters, got "
                            f"{name!r:.40}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"metrics[{name!r}] must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"metrics[{name!r}] is {value}, not a finite number")
        out[name] = value.item() if hasattr(value, "item") else value
    return out


def training_summary(clf) -> dict:
    """What the estimator's training history tells about its training run.

    Parameters
    ----------
    clf : MultimodalSentimentClassifier
        A fitted classifier.

    Returns
    -------
    dict
        ``epochs`` (epochs run), ``n_train`` and ``n_valid`` (posts trained on and held out,
        ``None`` where unknown), and ``best`` (the restored epoch's number, validation
        accuracy and loss; ``None`` without a validation split). A model loaded from a file
        has no history: every entry is then ``None`` or 0.
    """
    history = list(clf.net_.history)
    out = {"epochs": len(history), "n_train": None, "n_valid": None, "best": None}
    if not history or clf.device == "accelerate":  # each process logs its own shard
        return out
    batches = history[0].get("batches", [])
    out["n_train"] = sum(b.get("train_batch_size", 0) for b in batches) or None
    out["n_valid"] = sum(b.get("valid_batch_size", 0) for b in batches) or None
    scored = [e for e in history if "valid_loss" in e and "valid_acc" in e]
    if scored:
        early = dict(clf.net_.callbacks_).get("early_stopping")
        restored = getattr(early, "best_epoch_", None)
        best = next((e for e in scored if e["epoch"] == restored), None)
        best = best or min(scored, key=lambda e: e["valid_loss"])
        out["best"] = {"epoch": int(best["epoch"]), "accuracy": float(best["valid_acc"]),
                       "loss": float(best["valid_loss"])}
    return out


def _base_models(clf) -> list[str]:
    """Hub names of the encoders, for those whose installed weights have one."""
    out = []
    text = canonical_text_name(clf.text_encoder)
    if text in OFFLINE_TEXT_ENCODERS:
        out.append(f"sentence-transformers/{text}")
    if clf.image_encoder in OFFLINE_IMAGE_ENCODERS:
        out.append(f"timm/{clf.image_encoder}.in1k")
    return out


def _class_table(clf, n_posts) -> list[str]:
    counts = getattr(clf, "class_count_", None)
    if counts is None or len(counts) != len(clf.classes_):
        rows = ["| class |", "|---|", *(f"| {_md(c)} |" for c in clf.classes_)]
        seen = f"{n_posts} posts" if n_posts else "the training posts"
        return rows + ["", f"How {seen} were spread over the classes was not recorded."]
    rows = ["| class | training posts |", "|---|---|"]
    return rows + [f"| {_md(c)} | {int(n)} |" for c, n in zip(clf.classes_, counts)]


def _training_data(clf, summary, dataset_name, description) -> list[str]:
    named = _md(dataset_name) if dataset_name else "not named by whoever saved the model"
    lines = [f"- Data set: {named}."]
    if summary["n_train"]:
        held = summary["n_valid"] or 0
        lines.append(f"- Posts: {summary['n_train'] + held} ({summary['n_train']} trained "
                     f"on, {held} held out to choose the epoch).")
    elif not summary["epochs"]:
        lines.append("- Posts: not known (this model was loaded from a model file, which "
                     "keeps no training history).")
    if description:
        lines += ["", description.strip()]
    return lines


def _image_size(clf) -> str:
    size = clf.net_.module_.image_encoder.preprocessing.size
    pretrained = " (the encoder's pretrained size)" if trained_image_size(clf) is None else ""
    return f"{size} x {size} pixels{pretrained}"


def _settings(clf, summary) -> list[str]:
    params = clf.get_params()
    rows = ["| setting | value |", "|---|---|",
            f"| text encoder | `{_md(clf.text_encoder)}` (sentence-transformers) |",
            f"| image encoder | `{_md(clf.image_encoder)}` (timm) |",
            f"| image size | {_image_size(clf)} |",
            f"| finetune | `{_md(clf.finetune)}`: {FINETUNE_MEANING.get(clf.finetune, '')} |",
            f"| fusion | `{_md(clf.fusion)}` |",
            f"| epochs run | {summary['epochs'] or 'not known'} |"]
    rows += [f"| {name} | `{_md(params[name])}` |" for name in SETTINGS]
    if getattr(clf, "interrupted_", False):
        rows.append("| interrupted | yes: the weights are those of the best epoch before "
                    "the interruption |")
    return rows


def _evaluation(summary, metrics) -> list[str]:
    lines = []
    if metrics:
        lines += ["Stated by whoever saved the model:", "", "| metric | value |", "|---|---|"]
        lines += [f"| {_md(k)} | {_number(v)} |" for k, v in metrics.items()]
        lines.append("")
    best = summary["best"]
    if best is not None:
        held = f"the {summary['n_valid']} posts" if summary["n_valid"] else "the posts"
        lines.append(
            f"From the training history: validation accuracy {best['accuracy']:.4f} and "
            f"loss {best['loss']:.4f} at epoch {best['epoch']} of {summary['epochs']}, on "
            f"{held} held out of the training data. Those posts chose the epoch (early "
            "stopping), so these figures are optimistic: they are not a test result.")
    if not lines:
        lines.append("No metrics: none were given when the model was saved, and the "
                     "estimator holds no validation history.")
    return lines


def _usage(clf, repo_id) -> list[str]:
    source = repo_id or "path/to/this/folder"
    encoders = [canonical_text_name(clf.text_encoder) in OFFLINE_TEXT_ENCODERS,
                clf.image_encoder in OFFLINE_IMAGE_ENCODERS]
    trust = "" if all(encoders) else ", trust_encoders=True"
    lines = [
        "```python",
        "import pandas as pd",
        "from mmsentiment import MultimodalSentimentClassifier",
        "",
        f"clf = MultimodalSentimentClassifier.from_pretrained({_py(source)}{trust})",
        f"X = pd.DataFrame({{{_py(clf.text_column)}: [\"What a view from the top!\"],",
        f"                  {_py(clf.image_column)}: [\"photo.jpg\"]}})",
        "clf.predict(X), clf.predict_proba(X)  # probability columns follow clf.classes_",
        "```",
        "",
        f"This needs `pip install \"mmsentiment>={__version__}\"`. Loading runs no code from "
        "the folder: the loader checks `model.safetensors` (its config against a schema, its "
        "tensors against the network that config describes) and refuses a `config.json` "
        "that disagrees with it.",
    ]
    if not all(encoders):
        lines += ["", "This model names an encoder that is not one of mmsentiment's offline "
                  "encoders, so loading it may download that encoder or read a local path: "
                  "`trust_encoders=True` says you accept that."]
    return lines


LIMITS = """\
- Made for: the sentiment of short social-media posts that pair an English text with an
  image, such as tweets with photos (the MVSA benchmarks), in the classes above.
- Not made for: long documents, other languages, images unlike those in the training data,
  and any decision about people (hiring, credit, policing, moderation of a person's
  account). Its outputs are guesses about the tone of a post, not facts about its author.
- It inherits the biases of its pretrained encoders (a sentence-transformers model trained
  on web text, an image model trained on ImageNet) and of the people who labelled its
  training posts; sarcasm, irony and slang are frequent sources of error.
- A post with a missing text or image is still classified, from the other part alone.
- Check its accuracy on your own posts before relying on it."""


def model_card(clf, dataset_name: str | None = None, description: str | None = None,
               metrics: dict | None = None, license: str | None = None,
               repo_id: str | None = None) -> ModelCard:
    """The model card of a fitted classifier.

    Parameters
    ----------
    clf : MultimodalSentimentClassifier
        A fitted classifier.
    dataset_name : str, optional
        The name of the training data, stated in the card.
    description : str, optional
        A paragraph about the model or its data, put in the card as it is.
    metrics : dict of str to number, optional
        Scores to state, e.g. ``{"dev accuracy": 0.75}``. Without them, the card gives the
        validation accuracy and loss of the restored epoch (held out of the training data),
        where the estimator has them.
    license : str, optional
        A license identifier for the front matter (e.g. ``"apache-2.0"``); none by default.
    repo_id : str, optional
        The hub repository meant to hold the model (``"owner/name"``), used in the loading
        example of the card.

    Returns
    -------
    huggingface_hub.ModelCard

    See Also
    --------
    mmsentiment.pretrained.PretrainedMixin.save_pretrained : writes this card beside the
        weights (its example shows the card of a fitted model).
    """
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.utils import validate_repo_id

    check_is_fitted(clf, "net_")
    for name, value in (("dataset_name", dataset_name), ("description", description),
                        ("license", license)):
        _check_text(name, value)
    if repo_id is not None:
        validate_repo_id(repo_id)  # a ValueError for a malformed id
    metrics = check_metrics(metrics)
    summary = training_summary(clf)
    named = " ".join([*metrics, "accuracy" if summary["best"] else ""]).lower()
    data = ModelCardData(
        language="en", license=license, library_name=LIBRARY_NAME, pipeline_tag=PIPELINE_TAG,
        tags=list(TAGS), base_model=_base_models(clf) or None,
        metrics=[m for m in HUB_METRICS if m in named] or None)
    n_posts = (summary["n_train"] or 0) + (summary["n_valid"] or 0)
    classes = ", ".join(f"`{_md(c)}`" for c in clf.classes_)
    body = [
        f"# Multimodal sentiment classifier: {_md(clf.text_encoder)} + "
        f"{_md(clf.image_encoder)}",
        "",
        f"A text + image sentiment classifier made with mmsentiment {__version__}: it "
        f"assigns a post (a text and an image) to one of {len(clf.classes_)} classes, "
        f"{classes}. A pretrained sentence-transformers text encoder and a pretrained timm "
        "image encoder feed a fusion head, trained as a scikit-learn estimator through "
        "skorch (the method of Toledo & Marcacini, *Transfer Learning with Joint "
        "Fine-Tuning for Multimodal Sentiment Analysis*, arXiv 2210.05790).",
        "", "## How to use", "", *_usage(clf, repo_id),
        "", "## Classes", "", *_class_table(clf, n_posts),
        "", "## Training data", "", *_training_data(clf, summary, dataset_name, description),
        "", "## Model and training settings", "", *_settings(clf, summary),
        "", "## Evaluation", "", *_evaluation(summary, metrics),
        "", "## Intended use and limits", "", LIMITS,
        "", "## Files", "",
        "- `model.safetensors`: the weights, with the config that loading checks and uses.",
        "- `config.json`: a readable copy of that config; `from_pretrained` refuses a folder "
        "where it disagrees with the weights file.",
        "- `README.md`: this card, written by `save_pretrained`; nothing in it is read when "
        "the model loads.",
        "", f"Written by mmsentiment {__version__}.", "",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
