"""Resuming an interrupted fit from the checkpoint that skorch wrote after each epoch.

A fit with ``checkpoint_dir`` writes ``fit.json`` there: a fingerprint of the estimator's
parameters and of the data. A later fit with the same fingerprint whose predecessor did not
finish loads the checkpoint (weights, optimizer, history) and runs the epochs left; the
learning-rate schedule resumes at the batch where it stopped
(`mmsentiment.training.schedules.BatchLRScheduler`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from skorch.callbacks import Checkpoint
from torch import nn

from ..hashing import fingerprint as fingerprint_values
from ..hashing import image_key, module_code
from ..model_files import MAX_MODEL_BYTES, write_atomically
from ..paths import open_regular_file

STAMP = "fit.json"
COMMIT = "commit.json"


def _describe(value) -> str:
    """A parameter as text (a module by its code and weights)."""
    if isinstance(value, nn.Module):
        return fingerprint_values(module_code(value), *value.state_dict().values())
    return str(value)


def fit_fingerprint(params: dict, texts: list, images: list, y, columns=()) -> str:
    """A hash of the parameters and the data.

    ``verbose``, ``device`` and ``callbacks`` (loggers and other observers) are left out:
    a fit resumed with other ones continues the same training.

    Parameters
    ----------
    params : dict
        The estimator's ``get_params()``.
    texts, images : list
        The posts (images by content, not path).
    y : array-like
        The labels.
    columns : iterable of Tensor, default=()
        Further per-post training columns (sample weights, auxiliary labels).

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    # Settings that do not change what is learned (gradient checkpointing recomputes the
    # same activations; the inference backend runs only in prediction) leave the
    # fingerprint alone.
    kept = {k: v for k, v in params.items()
            if k not in ("verbose", "device", "callbacks", "gradient_checkpointing",
                         "inference_backend")}
    if kept.get("image_size", 0) is None:  # the pretrained size: as checkpoints before it
        del kept["image_size"]
    digest.update(json.dumps(kept, sort_keys=True, default=_describe).encode())
    for text, image, label in zip(texts, images, y):
        content = image_key(image) if image is not None else None
        digest.update(repr((text, content, label)).encode())
    for labels in columns:
        digest.update(labels.numpy().tobytes())
    return digest.hexdigest()


class AtomicCheckpoint(Checkpoint):
    """skorch's ``Checkpoint``, written so that a reader never sees half an epoch.

    Each epoch's files go to a staging folder first, are renamed into place, and
    ``commit.json`` (the epoch and each file's SHA-256) is written last, itself through a
    temporary file. A checkpoint without a commit, or whose files do not match it, is not
    loaded (`resume`). Files that could not be written leave the previous commit in place.
    """

    def save_model(self, net):
        final = Path(self.dirname)
        try:
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=final))
        except OSError as exc:
            warnings.warn(f"Could not write the checkpoint of epoch {len(net.history)} to "
                          f"{final} ({exc}); training goes on.", UserWarning, stacklevel=2)
            return
        self.dirname = str(staging)
        try:
            super().save_model(net)
        finally:
            self.dirname = str(final)
        files = {p.name: _sha256(p) for p in staging.iterdir()}
        wanted = {f for f in (self.f_params, self.f_optimizer, self.f_criterion,
                              self.f_history) if isinstance(f, str)}
        if not wanted <= set(files):  # skorch reports failed writes and goes on; so do we
            warnings.warn(f"Could not write the checkpoint of epoch {len(net.history)} to "
                          f"{final}; the previous one stays.", UserWarning, stacklevel=2)
            shutil.rmtree(staging, ignore_errors=True)
            return
        (final / COMMIT).unlink(missing_ok=True)  # no commit while files are replaced
        for name in files:
            os.replace(staging / name, final / name)
        staging.rmdir()
        commit = json.dumps({"epoch": len(net.history), "files": files})
        write_atomically(final / COMMIT, lambda tmp: tmp.write_text(commit))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular_file(path, max_bytes=MAX_MODEL_BYTES) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _committed(folder: Path, names: set[str]) -> bool:
    """Whether the checkpoint in ``folder`` has a commit that lists exactly the files
    ``names`` and whose files all match it."""
    commit = json.loads((folder / COMMIT).read_text())
    files = commit.get("files") if isinstance(commit, dict) else None
    if not isinstance(files, dict) or set(files) != names:
        return False
    return all(_sha256(folder / name) == digest for name, digest in files.items())


def _move_aside(folder: Path, reason: str) -> None:
    """Move a checkpoint that cannot be used into ``folder/broken-<time>``, and say so."""
    aside = folder / f"broken-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file():
            os.replace(path, aside / path.name)
    warnings.warn(f"The checkpoint in {folder} cannot be used ({reason}); it was moved to "
                  f"{aside} and the fit starts over.", UserWarning, stacklevel=3)


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
    if stamp.is_file() and any(folder.glob("*.pt")):
        try:
            previous = json.loads(stamp.read_text())
            ours = previous.get("fingerprint") == fingerprint and not previous.get("finished")
            files = {"params.pt", "optimizer.pt", "criterion.pt", "history.json"}
            if ours and not _committed(folder, files):
                raise ValueError("its files do not match its commit")
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
            _move_aside(folder, f"{type(exc).__name__}: {exc}")
            ours = False
        if ours:
            done = _load(net, folder)
    write_atomically(stamp, lambda tmp: tmp.write_text(json.dumps({"fingerprint": fingerprint})))
    if done and verbose:
        print(f"Resuming from {folder}: {done} of {max_epochs} epochs done.")
    return max(0, max_epochs - done) if done else 0


def _load(net, folder: Path) -> int:
    """Load the checkpoint into ``net``; on failure restore ``net`` and move the files aside.
    Returns the epochs loaded."""
    net.initialize()
    before = copy.deepcopy(net.module_.state_dict())
    try:
        net.load_params(checkpoint=dict(net.callbacks_)["checkpoint"])
    except Exception as exc:  # noqa: BLE001 - torch and skorch raise many types for a
        # damaged file; each means the same: this checkpoint cannot be resumed.
        net.module_.load_state_dict(before)
        net.initialize_optimizer()
        net.initialize_history()
        _move_aside(folder, f"{type(exc).__name__}: {exc}")
        return 0
    # The saved parameter groups carry the kernel choice of the fit that wrote them (not
    # fused, before AdamW ran fused here); keep this optimizer's, which the loss scaler
    # of float16 fits was set up for.
    optimizer = getattr(net.optimizer_, "optimizer", net.optimizer_)  # accelerate wraps it
    for group in optimizer.param_groups:
        group["fused"] = optimizer.defaults.get("fused")
    return len(net.history)


def mark_finished(folder) -> None:
    """Record in ``fit.json`` that the fit finished, so no later fit resumes from it."""
    stamp = Path(folder) / STAMP
    text = json.dumps({**json.loads(stamp.read_text()), "finished": True})
    write_atomically(stamp, lambda tmp: tmp.write_text(text))
