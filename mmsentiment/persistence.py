"""A safe model file: safetensors weights plus a JSON config, no code run on load.

One ``.safetensors`` file holds the fitted network's tensors; its header metadata holds the
estimator's parameters, the classes and the format version. Encoders that were not fine-tuned
(``finetune="frozen"``) are stored as a reference to their pretrained weights (name only),
unless ``self_contained=True`` asks for a copy. Loading needs those encoders to be resolvable
(installed, local or downloadable), as when fitting.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT = "mmsentiment"
FORMAT_VERSION = 1
ENCODERS = ("text_encoder", "image_encoder")


def save_model(clf, path, self_contained: bool = False) -> Path:
    """Write a fitted classifier to ``path`` (see `MultimodalSentimentClassifier.save`)."""
    from sklearn.utils.validation import check_is_fitted

    from . import __version__

    check_is_fitted(clf, "net_")
    modules = [name for name in ENCODERS if isinstance(getattr(clf, name), torch.nn.Module)]
    if modules:
        raise TypeError(
            f"{' and '.join(modules)} is a module object, which a safetensors model file "
            "cannot describe (loading runs no code); save this model with joblib.dump."
        )
    classes = clf.classes_.tolist()
    try:
        json.dumps(classes)
        params = json.loads(json.dumps(clf.get_params(), default=os.fspath))
    except TypeError as exc:
        raise TypeError(
            f"The classes or parameters cannot be written as JSON ({exc}); use joblib for "
            "this model, or use string or integer labels."
        ) from exc
    referenced = [] if self_contained or clf.finetune != "frozen" else list(ENCODERS)
    state = {
        name: tensor.detach().to("cpu").contiguous()
        for name, tensor in clf.net_.module_.state_dict().items()
        if name.split(".")[0] not in referenced
    }
    config = {
        "params": params,
        "classes": classes,
        "classes_dtype": clf.classes_.dtype.str if clf.classes_.dtype != object else "object",
        "n_features_in": int(clf.n_features_in_),
        "feature_names_in": getattr(clf, "feature_names_in_", np.array([])).tolist(),
        "referenced_encoders": referenced,
    }
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "mmsentiment_version": __version__, "config": json.dumps(config)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)
    return path


def load_model(path, device: str | None = None):
    """Read a classifier written by `save_model`; executes no code from the file."""
    from .classifier import MultimodalSentimentClassifier, resolve_device

    path = Path(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable safetensors model file: {exc}") from exc
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is a safetensors file but not an mmsentiment model.")
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ValueError(
            f"{path} uses model-file format {version} (written by mmsentiment "
            f"{metadata.get('mmsentiment_version')}); this mmsentiment reads format "
            f"{FORMAT_VERSION}. Load it with the version that wrote it and refit or re-save."
        )
    config = json.loads(metadata["config"])
    params = config["params"]
    if device is not None:
        params["device"] = device
    clf = MultimodalSentimentClassifier(**params)
    dtype = config["classes_dtype"]
    clf.classes_ = np.asarray(config["classes"], dtype=None if dtype == "object" else dtype)
    if dtype == "object":
        clf.classes_ = clf.classes_.astype(object)
    clf.n_features_in_ = config["n_features_in"]
    if config["feature_names_in"]:
        clf.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
    module = clf._build_module(len(clf.classes_))
    state = load_file(str(path), device="cpu")
    result = module.load_state_dict(state, strict=False)
    referenced = tuple(config["referenced_encoders"])
    missing = [k for k in result.missing_keys if not k.startswith(referenced)]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path} does not match the network its config describes (missing "
            f"{missing[:3]}, unexpected {result.unexpected_keys[:3]})."
        )
    wanted = params["device"]
    # A model saved on a GPU machine predicts on the CPU where no GPU is visible.
    target = "cpu" if wanted != "cpu" and not torch.cuda.is_available() else \
        resolve_device(wanted)
    clf.net_ = clf._build_net(module, None, 1, None, target)
    clf.net_.initialize()
    clf.interrupted_ = False
    return clf
