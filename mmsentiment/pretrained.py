"""Model folders in the Hugging Face hub's layout: `save_pretrained` and `from_pretrained`.

A model folder holds three files:

- ``model.safetensors``: the weights and, in the header, the checked config
  (`mmsentiment.persistence.save_model`): the only file that decides what loads;
- ``config.json``: a readable copy of that config, which must agree with it;
- ``README.md``: the model card (`mmsentiment.model_card`), never read when loading.

`from_pretrained` takes a local folder, or a hub repository id that it downloads with
``huggingface_hub.snapshot_download`` (those three files only). Loading is as safe as
`MultimodalSentimentClassifier.load`: no code from the folder runs, the weights file is
checked before anything is built, and a ``config.json`` that disagrees with it is refused.
Putting a folder on the hub is the user's step (``huggingface_hub.upload_folder``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .model_card import model_card
from .model_files import (
    MAX_HEADER_BYTES,
    write_atomically,
)
from .paths import open_regular_file
from .persistence import FORMAT, load_model, read_header, save_model

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
FOLDER_FILES = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)


def folder_config(metadata: dict) -> dict:
    """The content of ``config.json`` for a weights file's header metadata.

    Parameters
    ----------
    metadata : dict of str to str
        The metadata of a ``model.safetensors`` written by `save_model`.

    Returns
    -------
    dict
        ``library_name``, the format and version fields, and the config's own keys
        (``params``, ``classes``, ...), as JSON types.

    Raises
    ------
    ValueError
        Where the metadata holds no JSON config.
    """
    try:
        config = json.loads(metadata["config"])
    except (KeyError, TypeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"the weights file holds no readable config ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError("the weights file's config is not a JSON object")
    return {"library_name": "mmsentiment", "format": metadata.get("format"),
            "format_version": metadata.get("format_version"),
            "mmsentiment_version": metadata.get("mmsentiment_version"),
            "weights": WEIGHTS_NAME, **config}


def _weights_metadata(path: Path) -> dict:
    """The header metadata of a weights file (`mmsentiment.persistence.read_header`)."""
    return read_header(path)[0]


def _read_config_json(path: Path) -> dict:
    """Parse a folder's ``config.json`` (bounded in size; a JSON object)."""
    try:
        with open_regular_file(path, max_bytes=MAX_HEADER_BYTES) as fh:
            config = json.loads(fh.read().decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a JSON object")
    return config


def is_model_folder(directory) -> bool:
    """Whether ``directory`` holds an mmsentiment model (its ``config.json`` names the
    library, or its ``model.safetensors`` is an mmsentiment weights file).

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    bool

    Examples
    --------
    >>> import tempfile
    >>> is_model_folder(tempfile.mkdtemp())
    False
    """
    directory = Path(directory)
    try:
        if _read_config_json(directory / CONFIG_NAME).get("library_name") == "mmsentiment":
            return True
    except ValueError:
        pass  # no readable config.json: the weights file may still tell
    try:
        return _weights_metadata(directory / WEIGHTS_NAME).get("format") == FORMAT
    except ValueError:
        return False


def _prepare_folder(directory: Path, overwrite: bool) -> None:
    """Make ``directory`` or check that it may be written: new, empty, or a model folder."""
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{directory} is a file; save_pretrained writes a folder (save "
                              "writes a single .safetensors file)")
    if not directory.exists():
        directory.mkdir(parents=True)
        return
    if not any(directory.iterdir()):
        return
    if not is_model_folder(directory):
        raise FileExistsError(
            f"{directory} is not empty and holds no mmsentiment model; save_pretrained "
            "writes only into a new or empty folder, or over a model folder it wrote.")
    if not overwrite:
        raise FileExistsError(f"{directory} holds a model; pass overwrite=True to replace it")


def save_folder(clf, directory, dataset_name: str | None = None,
                description: str | None = None, metrics: dict | None = None,
                license: str | None = None, repo_id: str | None = None,
                self_contained: bool = False, overwrite: bool = True) -> Path:
    """Write a fitted classifier as a model folder (see `PretrainedMixin.save_pretrained`).

    Returns
    -------
    Path
        The folder.
    """
    card = model_card(clf, dataset_name=dataset_name, description=description,
                      metrics=metrics, license=license, repo_id=repo_id)
    directory = Path(directory)
    _prepare_folder(directory, overwrite)
    weights = save_model(clf, directory / WEIGHTS_NAME, self_contained=self_contained)
    # config.json is made from the file just written, so the two agree to the byte.
    config = json.dumps(folder_config(_weights_metadata(weights)), indent=2,
                        ensure_ascii=False) + "\n"
    write_atomically(directory / CONFIG_NAME,
                     lambda tmp: tmp.write_text(config, encoding="utf-8"))
    write_atomically(directory / CARD_NAME, lambda tmp: card.save(tmp))
    return directory


def _looks_like_path(source: str) -> bool:
    return (os.path.isabs(source) or source.startswith((".", "~")) or "\\" in source
            or source.count("/") > 1 or source.endswith(".safetensors"))


def resolve_folder(source, revision: str | None = None) -> Path:
    """The local folder of ``source``: a folder as it is, or a hub repository downloaded
    (``model.safetensors``, ``config.json`` and ``README.md`` only).

    Parameters
    ----------
    source : str or Path
        A local folder, or a repository id (``"owner/name"``) on the Hugging Face hub.
    revision : str, optional
        The hub revision (branch, tag or commit hash); ignored for a local folder.

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        For a local path that does not exist, or a repository that cannot be found (for
        instance offline, with ``HF_HUB_OFFLINE=1``, when it was never downloaded).
    ValueError
        For a file instead of a folder, or a string that is neither a folder nor a valid
        repository id.
    OSError
        For other failures of the download.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"from_pretrained takes a folder or a hub repository id, got "
                        f"{type(source).__name__}")
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path} is a file; from_pretrained takes a model folder (use "
                         "MultimodalSentimentClassifier.load for a single model file)")
    if not isinstance(source, str) or _looks_like_path(source):
        raise FileNotFoundError(f"{source}: no such model folder")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(source, revision=revision,
                                      allow_patterns=list(FOLDER_FILES)))
    except HFValidationError as exc:
        raise ValueError(f"{source!r} is neither a local folder nor a hub repository id "
                         f"({exc})") from exc
    except (FileNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise FileNotFoundError(
            f"{source!r} is not a local folder, and the hub repository of that name could "
            f"not be found or downloaded{offline}: {type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise OSError(f"{source!r} is not a local folder, and downloading it from the hub "
                      f"failed: {type(exc).__name__}: {exc}") from exc


def load_folder(source, estimator_class, device: str | None = None, cache_dir="auto",
                trust_encoders: bool = False, revision: str | None = None):
    """Load a model folder (see `PretrainedMixin.from_pretrained`).

    Returns
    -------
    MultimodalSentimentClassifier
    """
    folder = resolve_folder(source, revision=revision)
    weights, config_path = folder / WEIGHTS_NAME, folder / CONFIG_NAME
    for path in (weights, config_path):
        if not path.exists():
            raise ValueError(f"{folder} is not an mmsentiment model folder: it has no "
                             f"{path.name}")
    stated = _read_config_json(config_path)
    # Everything that is built comes from the weights file, checked by load_model.
    clf = load_model(weights, estimator_class, device=device, cache_dir=cache_dir,
                     trust_encoders=trust_encoders)
    expected = folder_config(_weights_metadata(weights))
    if stated != expected:
        keys = sorted(k for k in set(stated) | set(expected) if stated.get(k) != expected.get(k))
        raise ValueError(
            f"{config_path} disagrees with {WEIGHTS_NAME} (in {keys[:5]}): the folder was "
            "edited, or a save was interrupted. The weights file's config is the one that "
            "loads; save the model again, or restore config.json.")
    return clf


class PretrainedMixin:
    """`save_pretrained` / `from_pretrained`: model folders in the Hugging Face hub's layout."""

    def save_pretrained(self, directory, *, dataset_name: str | None = None,
                        description: str | None = None, metrics: dict | None = None,
                        license: str | None = None, repo_id: str | None = None,
                        self_contained: bool = False, overwrite: bool = True) -> Path:
        """Save the fitted model as a folder: ``model.safetensors``, ``config.json`` and a
        model card ``README.md``, ready for the Hugging Face hub.

        Parameters
        ----------
        directory : str or Path
            The folder: new, empty, or one that holds an mmsentiment model (then its three
            files are replaced; other files in it are left alone). A non-empty folder that
            holds no model is refused.
        dataset_name : str, optional
            The training data's name, stated in the card.
        description : str, optional
            A paragraph for the card (about the model, its data, its purpose).
        metrics : dict of str to number, optional
            Scores for the card, e.g. ``{"dev accuracy": 0.75}``. Without them, the card
            states the validation accuracy and loss of the restored epoch, measured on the
            posts held out of the training data.
        license : str, optional
            A license identifier for the card's front matter (e.g. ``"apache-2.0"``).
        repo_id : str, optional
            The hub repository meant for this folder, used in the card's loading example.
        self_contained : bool, default=False
            Store the weights of encoders that did not train too (as in `save`).
        overwrite : bool, default=True
            Replace the model in a model folder; ``False`` refuses one.

        Returns
        -------
        Path
            The folder.

        Raises
        ------
        FileExistsError
            For a file at ``directory``, a non-empty folder that holds no model, or a
            model folder when ``overwrite=False``.

        Notes
        -----
        Each file is written under a temporary name and renamed into place. A save
        interrupted between two files leaves a ``config.json`` that disagrees with the
        weights, which `from_pretrained` refuses rather than loading a mixture. The card is
        generated on every save, replacing the previous one. To publish the folder (this
        package does not upload anything itself)::

            from huggingface_hub import create_repo, upload_folder
            create_repo("you/mvsa-sentiment", exist_ok=True)
            upload_folder(repo_id="you/mvsa-sentiment", folder_path="mvsa-sentiment")

        Examples
        --------
        >>> import tempfile
        >>> from huggingface_hub import ModelCard
        >>> from mmsentiment import MultimodalSentimentClassifier, load_demo
        >>> X, y = load_demo(return_X_y=True)
        >>> clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2,
        ...                                     random_state=0).fit(X, y)
        >>> folder = clf.save_pretrained(tempfile.mkdtemp() + "/demo-model",
        ...                              dataset_name="mmsentiment demo posts")
        >>> sorted(p.name for p in folder.iterdir())
        ['README.md', 'config.json', 'model.safetensors']
        >>> ModelCard.load(folder / "README.md").data.library_name
        'mmsentiment'
        >>> loaded = MultimodalSentimentClassifier.from_pretrained(folder)
        >>> bool((loaded.predict_proba(X) == clf.predict_proba(X)).all())
        True
        """
        return save_folder(self, directory, dataset_name=dataset_name,
                           description=description, metrics=metrics, license=license,
                           repo_id=repo_id, self_contained=self_contained,
                           overwrite=overwrite)

    @classmethod
    def from_pretrained(cls, directory_or_repo_id, *, device: str | None = None,
                        cache_dir="auto", trust_encoders: bool = False,
                        revision: str | None = None):
        """Load a model folder written by `save_pretrained`, from disk or from the hub.

        Only ``model.safetensors`` decides what is built, with the checks of `load` (no
        code from the folder runs; a crafted or damaged file raises a ``ValueError``);
        ``config.json`` must agree with it, and the card is not read.

        Parameters
        ----------
        directory_or_repo_id : str or Path
            A local folder, or else a Hugging Face hub repository id (``"owner/name"``),
            downloaded with ``huggingface_hub.snapshot_download`` (its three model files
            only) into huggingface_hub's own cache.
        device : str, optional
            Overrides the saved ``device`` parameter (e.g. ``"cpu"``).
        cache_dir : "auto", str, Path or None, default="auto"
            The loaded model's feature cache, as in `load` (not the hub's download cache).
        trust_encoders : bool, default=False
            Accept encoders not installed offline (may contact the hub or read local files).
        revision : str, optional
            The hub revision to download (branch, tag or commit hash: a commit pins it).

        Returns
        -------
        MultimodalSentimentClassifier

        Raises
        ------
        ValueError
            For a folder that is not a model folder, a weights file that fails its checks,
            a ``config.json`` that disagrees with it, or a string that is neither a folder
            nor a repository id.
        FileNotFoundError
            For a missing local folder, or a repository that cannot be had (offline and
            never downloaded, or unknown to the hub).
        """
        return load_folder(directory_or_repo_id, cls, device=device, cache_dir=cache_dir,
                           trust_encoders=trust_encoders, revision=revision)
