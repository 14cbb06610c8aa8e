"""Resuming an interrupted fit from the checkpoint that skorch wrote after each epoch.

A fit with ``checkpoint_dir`` writes ``fit.json`` there: a fingerprint of the estimator's
parameters and of the data. A later fit with the same fingerprint whose predecessor did not
finish loads the checkpoint (weights, optimizer, history) and runs the epochs left; the
learning-rate schedule resumes at the batch where it stopped
(`mmsentiment.training.schedules.BatchLRScheduler`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from torch import nn

from ..hashing import fingerprint as fingerprint_values
from ..hashing import image_key, module_code

STAMP = "fit.json"


def _describe(value) -> str:
    """A parameter as text (a module by its code and weights)."""
    if isinstance(value, nn.Module):
        return fingerprint_values(module_code(value), *value.state_dict().values())
    return str(value)


def fit_fingerprint(params: dict, texts: list, images: list, y, aux=None) -> str:
    """A hash of the parameters (``verbose`` and ``device`` left out) and the data.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params()``.
    texts, images : list
        The posts (images by content, not path).
    y : array-like
        The labels.
    aux : tuple of Tensor, optional
        Auxiliary label columns.

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    kept = {k: v for k, v in params.items() if k not in ("verbose", "device")}
    digest.update(json.dumps(kept, sort_keys=True, default=_describe).encode())
    for text, image, label in zip(texts, images, y):
        content = image_key(image) if image is not None else None
        digest.update(repr((text, content, label)).encode())
    for labels in aux or ():
        digest.update(labels.numpy().tobytes())
    return digest.hexdigest()


def resume(net, folder, fingerprint: str, max_epochs: int, verbose: int = 0) -> int:
    """Load the checkpoint of an unfinished fit with this fingerprint into ``net``.

    Writes the fingerprint to ``fit.json`` for the fit about to run.

    Parameters
    ----------
    net : SentimentNet
        The net built with a ``"checkpoint"`` callback (`build_net`).
    folder : str or Path
        The checkpoint folder.
    fingerprint : str
        `fit_fingerprint` of this fit.
    max_epochs : int
        Planned epochs.
    verbose : int, default=0
        Say when a fit resumes.

    Returns
    -------
    int
        Epochs left to run after the loaded ones; 0 when nothing was loaded.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / STAMP
    done = 0
    if stamp.is_file() and (folder / "params.pt").is_file():
        previous = json.loads(stamp.read_text())
        if previous.get("fingerprint") == fingerprint and not previous.get("finished"):
            net.initialize()
            net.load_params(checkpoint=dict(net.callbacks_)["checkpoint"])
            done = len(net.history)
    stamp.write_text(json.dumps({"fingerprint": fingerprint}))
    if done and verbose:
        print(f"Resuming from {folder}: {done} of {max_epochs} epochs done.")
    return max(0, max_epochs - done) if done else 0


def mark_finished(folder) -> None:
    """Record in ``fit.json`` that the fit finished, so no later fit resumes from it."""
    stamp = Path(folder) / STAMP
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "finished": True}))
