"""Saving and loading fitted classifiers: a safe safetensors file, and device-aware pickles.

One ``.safetensors`` file holds the fitted network's tensors; its header metadata holds the
estimator's parameters, the classes and the format version. Encoders that were not fine-tuned
(``finetune="frozen"``) are stored as a reference to their pretrained weights (name only),
unless ``self_contained=True`` asks for a copy. Loading checks the file before it builds
anything (`mmsentiment.model_files`) and needs its encoders installed offline, unless the
caller trusts the file.

A joblib pickle of the estimator runs code when it is loaded, like every pickle: load only
pickles you trust.
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

from .model_files import (
    CALLER_PARAMS,
    ENCODERS,
    check_config,
    file_format,
    safetensors_header_length,
    write_atomically,
)
from .nn import get_finetune
from .params import NETWORK_PARAMS, check_params
from .training import resolve_device
from .version import __version__

FORMAT = "mmsentiment"
FORMAT_VERSION = 1


def save_model(clf, path, self_contained: bool = False, overwrite: bool = True) -> Path:
    """Write a fitted classifier to ``path`` (see `MultimodalSentimentClassifier.save`).

    Parameters
    ----------
    clf : MultimodalSentimentClassifier
        A fitted classifier.
    path : str or Path
        The file to write.
    self_contained : bool, default=False
        Store the weights of encoders that did not train too.
    overwrite : bool, default=True
        Replace an existing file (else ``FileExistsError``). The file is written under a
        temporary name and renamed into place, so an interruption leaves no partial file.

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
        params = {k: v for k, v in clf.get_params().items() if k not in CALLER_PARAMS}
        # The size the network was trained at, whatever set_params said since (a model
        # that was loaded, not fitted, has its file's).
        params["image_size"] = trained_image_size(clf)
        params = json.loads(json.dumps(params, default=os.fspath))
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
        "class_count": np.asarray(getattr(clf, "class_count_", [])).astype(int).tolist(),
        "class_prior": np.asarray(getattr(clf, "class_prior_", []), dtype=float).tolist(),
    }
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "mmsentiment_version": __version__, "config": json.dumps(config)}
    return write_atomically(path, lambda tmp: save_file(state, str(tmp), metadata=metadata),
                            overwrite=overwrite)


def read_header(path: Path) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """A model file's header metadata and tensor shapes, read only after its kind and size
    checks (`mmsentiment.model_files`); no tensor is loaded.

    Raises
    ------
    ValueError
        For a pickle, an over-size header, or a file safetensors cannot read.
    """
    from safetensors import safe_open

    if file_format(path) != "safetensors":
        raise ValueError(f"{path} is a pickle, not a safetensors model file; a pickle runs "
                         "code when loaded: use joblib.load only for files you trust.")
    safetensors_header_length(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {},
                    {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()})
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable safetensors model file: {exc}") from exc


def load_model(path, estimator_class, device: str | None = None, cache_dir="auto",
               trust_encoders: bool = False):
    """Read a classifier written by `save_model`; executes no code from the file.

    Everything in the file is checked before use (`mmsentiment.model_files.check_config`,
    the estimator's own parameter checks, tensor names and shapes against the network the
    config describes); any problem raises a ``ValueError``.

    Parameters
    ----------
    path : str or Path
        The file.
    estimator_class : type
        The class to build (`MultimodalSentimentClassifier`).
    device : str, optional
        Overrides the saved ``device`` parameter.
    cache_dir : "auto", str, Path or None, default="auto"
        The loaded model's feature cache (never taken from the file).
    trust_encoders : bool, default=False
        Accept encoder names that are not installed offline (this may contact the model hub
        or read local files that the file names).

    Returns
    -------
    MultimodalSentimentClassifier
    """
    path = Path(path)
    metadata, shapes = read_header(path)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is a safetensors file but not an mmsentiment model.")
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ValueError(
            f"{path} uses model-file format {str(version)[:20]} (written by mmsentiment "
            f"{str(metadata.get('mmsentiment_version'))[:20]}); this mmsentiment reads format "
            f"{FORMAT_VERSION}. Load it with the version that wrote it and refit or re-save."
        )
    names = estimator_class().get_params()
    config = check_config(metadata.get("config", ""), names, trust_encoders=trust_encoders)
    # A file from before the logit adjustment predicts as it did then (no prior kept).
    params = {"logit_adjustment": 0.0, **config["params"], "cache_dir": cache_dir}
    if device is not None:
        params["device"] = device
    clf = estimator_class(**params)
    try:
        check_params(clf)
    except TypeError as exc:
        raise ValueError(f"model file config: {exc}") from exc
    referenced = tuple(config["referenced_encoders"])
    if referenced and get_finetune(clf.finetune).trains_encoders:
        raise ValueError(f"{path} leaves out trained encoder weights ({list(referenced)}).")
    clf.classes_ = config["classes"]
    if config.get("class_count"):
        clf.class_count_ = np.asarray(config["class_count"], dtype=np.int64)
    if config.get("class_prior"):
        clf.class_prior_ = np.asarray(config["class_prior"], dtype=np.float64)
    clf.n_features_in_ = config["n_features_in"]
    if config["feature_names_in"]:
        clf.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
    module = clf.build_module(len(clf.classes_))
    # What shaped the network, for warm starts and a later save (as fit records it).
    clf.network_params_ = {name: getattr(clf, name) for name in NETWORK_PARAMS}
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = [k for k in expected if k not in shapes and not k.startswith(referenced)]
    unexpected = [k for k in shapes if k not in expected or k.startswith(referenced)]
    wrong = [k for k in shapes if k in expected and shapes[k] != expected[k]]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path} does not match the network its config describes (missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}).")
    module.load_state_dict(load_file(str(path), device="cpu"), strict=False)
    wanted = params.get("device", "auto")
    wanted = "auto" if wanted == "accelerate" else wanted
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
        torch.save(state.pop("net_"), buffer, pickle_protocol=4)  # bytes stored as they are
        state["_net_bytes"] = buffer.getvalue()
    modules = {k: state.pop(k) for k in ENCODERS if isinstance(state.get(k), torch.nn.Module)}
    if modules:
        buffer = io.BytesIO()
        torch.save(modules, buffer, pickle_protocol=4)
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


def trained_image_size(clf) -> int | None:
    """The ``image_size`` the fitted network of ``clf`` was trained at (``None``: the
    encoder's pretrained size), whatever ``set_params`` said since its fit."""
    fitted = getattr(clf, "network_params_", None)
    return fitted.get("image_size") if fitted is not None else clf.image_size


class PersistenceMixin:
    """`save` / `load` (safetensors) and device-aware pickling for the classifier."""

    def __getstate__(self) -> dict:
        return pickle_state(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        # Pickles from before these parameters predict as they did then (ONNX Runtime's
        # image encoder gives torch's outputs to 1e-4 of their scale: it may run).
        self.__dict__.update({"logit_adjustment": 0.0, "text_normalization": None,
                              "gradient_checkpointing": False, "inference_backend": "auto",
                              "image_size": None})
        self.__dict__.update(unpickle_state(state))

    def save(self, path, self_contained: bool = False, overwrite: bool = True) -> Path:
        """Save the fitted model as one safetensors file (weights + JSON config), which runs
        no code when loaded; encoders that did not train are stored by name.

        Parameters
        ----------
        path : str or Path
            Where to write, conventionally ending in ``.safetensors``.
        self_contained : bool, default=False
            Store frozen encoders' weights as well.
        overwrite : bool, default=True
            Replace an existing file (written under a temporary name, then renamed).

        Returns
        -------
        Path
        """
        return save_model(self, path, self_contained=self_contained, overwrite=overwrite)

    @classmethod
    def load(cls, path, device: str | None = None, cache_dir="auto",
             trust_encoders: bool = False) -> PersistenceMixin:
        """Load a model written by `save`: no code from the file runs, and a crafted, damaged
        or other-version file raises a ``ValueError`` (`mmsentiment.model_files`).

        Parameters
        ----------
        path : str or Path
            The file.
        device : str, optional
            Overrides the saved ``device`` parameter (e.g. ``"cpu"``).
        cache_dir : "auto", str, Path or None, default="auto"
            The loaded model's feature cache (a file never chooses where to write).
        trust_encoders : bool, default=False
            Accept encoders not installed offline (may contact the hub or read local files).
        """
        return load_model(path, cls, device=device, cache_dir=cache_dir,
                          trust_encoders=trust_encoders)
