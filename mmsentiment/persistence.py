"""Saving and loading fitted classifiers: a safe safetensors file, and device-aware pickles.

One ``.safetensors`` file holds the fitted network's tensors; its header metadata holds the
estimator's parameters, the classes and the format version. Encoders that were not fine-tuned
(``finetune="frozen"``) are stored as a reference to their pretrained weights (name only),
unless ``self_contained=True`` asks for a copy. Loading needs those encoders to be resolvable
(installed, local or downloadable), as when fitting.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from skorch.exceptions import DeviceWarning

from .nn import get_finetune
from .params import check_params
from .training import resolve_device
from .version import __version__

FORMAT = "mmsentiment"
FORMAT_VERSION = 1
ENCODERS = ("text_encoder", "image_encoder")


def save_model(clf, path, self_contained: bool = False) -> Path:
    """Write a fitted classifier to ``path`` (see `MultimodalSentimentClassifier.save`).

    Parameters
    ----------
    clf : MultimodalSentimentClassifier
        A fitted classifier.
    path : str or Path
        The file to write.
    self_contained : bool, default=False
        Store the weights of encoders that did not train too.

    Returns
    -------
    Path
    """
    from sklearn.utils.validation import check_is_fitted


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
    trains = get_finetune(clf.finetune).trains_encoders
    referenced = [] if self_contained or trains else list(ENCODERS)
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


def load_model(path, estimator_class, device: str | None = None):
    """Read a classifier written by `save_model`; executes no code from the file.

    Parameters
    ----------
    path : str or Path
        The file.
    estimator_class : type
        The class to build (`MultimodalSentimentClassifier`).
    device : str, optional
        Overrides the saved ``device`` parameter.

    Returns
    -------
    MultimodalSentimentClassifier
    """
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
    clf = estimator_class(**params)
    check_params(clf)
    dtype = config["classes_dtype"]
    clf.classes_ = np.asarray(config["classes"], dtype=None if dtype == "object" else dtype)
    if dtype == "object":
        clf.classes_ = clf.classes_.astype(object)
    clf.n_features_in_ = config["n_features_in"]
    if config["feature_names_in"]:
        clf.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
    module = clf.build_module(len(clf.classes_))
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
    clf.interrupted_ = False
    return clf.attach_module(module, target)


def pickle_state(state: dict) -> dict:
    """An estimator's ``__dict__`` ready for pickling.

    The fitted net, and encoder parameters given as module objects, go through
    ``torch.save``, so that every tensor in them (module, optimizer, callbacks) can be
    mapped onto the CPU when a GPU-trained model is unpickled on a machine without one.

    Parameters
    ----------
    state : dict
        The estimator's attributes.

    Returns
    -------
    dict
    """
    state = state.copy()
    if "net_" in state:
        buffer = io.BytesIO()
        state["_net_device"] = str(state["net_"].device)
        torch.save(state.pop("net_"), buffer)
        state["_net_bytes"] = buffer.getvalue()
    modules = {k: state.pop(k) for k in ENCODERS if isinstance(state.get(k), torch.nn.Module)}
    if modules:
        buffer = io.BytesIO()
        torch.save(modules, buffer)
        state["_module_bytes"] = buffer.getvalue()
    return state


def unpickle_state(state: dict) -> dict:
    """The inverse of `pickle_state`: tensors onto the CPU where no GPU is visible.

    Parameters
    ----------
    state : dict
        What `pickle_state` returned.

    Returns
    -------
    dict
    """
    state = state.copy()
    net_bytes = state.pop("_net_bytes", None)
    module_bytes = state.pop("_module_bytes", None)
    trained_on = state.pop("_net_device", "")
    gpu = torch.cuda.is_available()
    location = None if gpu else "cpu"
    try:
        if module_bytes is not None:
            state.update(torch.load(io.BytesIO(module_bytes), weights_only=False,
                                    map_location=location))
        if net_bytes is not None:
            moved = not gpu and trained_on.startswith("cuda")
            with warnings.catch_warnings():
                if moved:  # skorch's two DeviceWarnings say less than the one below
                    warnings.simplefilter("ignore", DeviceWarning)
                state["net_"] = torch.load(io.BytesIO(net_bytes), weights_only=False,
                                           map_location=location)
            if moved:
                warnings.warn("This model was trained on a GPU; no GPU is visible, so it "
                              "predicts on the CPU.", UserWarning, stacklevel=3)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ValueError(
            f"This pickle was written by an mmsentiment version with another internal "
            f"layout ({exc}); load it with that version and save it with "
            "MultimodalSentimentClassifier.save, which this version reads.") from exc
    return state
