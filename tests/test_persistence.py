"""Model files (joblib and the safe safetensors format), interruption and resuming."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import save_file
from skorch.callbacks import Callback

from mmsentiment import MultimodalSentimentClassifier

FAST = {"finetune": "frozen", "max_epochs": 6, "random_state": 0}


@pytest.fixture(scope="module")
def frozen(small):
    X, y = small
    return MultimodalSentimentClassifier(**FAST).fit(X, y)


@pytest.fixture(scope="module")
def tuned(small):
    X, y = small
    # On the CPU, where reloaded models predict bit for bit alike (tests/test_cuda.py
    # covers models trained on a GPU).
    return MultimodalSentimentClassifier(finetune="top", max_epochs=1, batch_size=12,
                                         random_state=0, validation_fraction=None,
                                         device="cpu").fit(X, y)


def test_safe_round_trip_frozen_references_encoders(frozen, small, tmp_path):
    X, _ = small
    path = frozen.save(tmp_path / "m.safetensors")
    assert path.stat().st_size < 5_000_000  # the head only: encoders are referenced
    loaded = MultimodalSentimentClassifier.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), frozen.predict_proba(X))
    assert loaded.get_params() == frozen.get_params()
    assert list(loaded.classes_) == list(frozen.classes_)
    assert list(loaded.feature_names_in_) == ["text", "image_path"]
    big = frozen.save(tmp_path / "full.safetensors", self_contained=True)
    assert big.stat().st_size > 50_000_000
    np.testing.assert_array_equal(MultimodalSentimentClassifier.load(big).predict_proba(X),
                                  frozen.predict_proba(X))


def test_safe_round_trip_finetuned_stores_encoders(tuned, small, tmp_path):
    X, _ = small
    path = tuned.save(tmp_path / "t.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        keys = list(fh.keys())
    assert any(k.startswith("text_encoder.") for k in keys)
    assert any(k.startswith("image_encoder.") for k in keys)
    loaded = MultimodalSentimentClassifier.load(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), tuned.predict_proba(X))


def test_joblib_round_trip_after_finetuning(tuned, small, tmp_path):
    X, _ = small
    joblib.dump(tuned, tmp_path / "t.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "t.joblib").predict_proba(X),
                                  tuned.predict_proba(X))


def test_same_seed_same_predictions_across_save_load(small, tmp_path):
    X, y = small
    on_cpu = {**FAST, "device": "cpu"}  # where a seed makes a fit repeatable
    a = MultimodalSentimentClassifier(**on_cpu).fit(X, y)
    b = MultimodalSentimentClassifier(**on_cpu).fit(X, y)
    b_loaded = MultimodalSentimentClassifier.load(b.save(tmp_path / "b.safetensors"))
    np.testing.assert_array_equal(a.predict_proba(X), b_loaded.predict_proba(X))


def test_incompatible_and_foreign_files(frozen, tmp_path):
    path = frozen.save(tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    save_file(tensors, str(tmp_path / "future.safetensors"),
              metadata={**meta, "format_version": "99", "mmsentiment_version": "9.0"})
    with pytest.raises(ValueError, match="format 99 .*mmsentiment 9.0.*reads format 1"):
        MultimodalSentimentClassifier.load(tmp_path / "future.safetensors")
    save_file(tensors, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an mmsentiment model"):
        MultimodalSentimentClassifier.load(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="neither a safetensors model file nor"):
        MultimodalSentimentClassifier.load(tmp_path / "junk.safetensors")
    config = json.loads(meta["config"])
    assert config["referenced_encoders"] == ["text_encoder", "image_encoder"]


def test_save_needs_a_fitted_model(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MultimodalSentimentClassifier().save(tmp_path / "x.safetensors")


class InterruptAt(Callback):
    """Raises KeyboardInterrupt (as Ctrl-C does) at a given batch of a given epoch."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch, self.seen = epoch, batch, 0

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.seen += 1
            if len(net.history) == self.epoch and self.seen >= self.batch:
                raise KeyboardInterrupt


def fit_with_interrupt(clf, X, y, epoch: int, batch: int):
    """Fit with a callback that interrupts it (the estimator's ``callbacks=``)."""
    clf.set_params(callbacks=[("interrupt", InterruptAt(epoch, batch))])
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    clf.set_params(callbacks=None)
    return clf


def test_ctrl_c_mid_epoch_leaves_usable_best_model(demo):
    X, y = demo
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=20, batch_size=16,
                                        random_state=0, patience=100)
    fit_with_interrupt(clf, X, y, epoch=4, batch=3)
    assert clf.interrupted_
    assert len(clf.history_) == 4  # stopped inside epoch 4
    best = int(np.argmin(clf.history_[:-1, "valid_loss"])) + 1
    assert best <= 3
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.isfinite(proba).all()
    assert clf.score(X, y) > 0.5


def test_checkpoint_resumes_an_interrupted_fit(demo, tmp_path):
    X, y = demo
    params = {"finetune": "frozen", "max_epochs": 6, "batch_size": 16, "random_state": 0,
              "patience": 100, "checkpoint_dir": tmp_path / "ckpt"}
    clf = fit_with_interrupt(MultimodalSentimentClassifier(**params), X, y, epoch=3, batch=2)
    assert clf.interrupted_
    assert (tmp_path / "ckpt" / "params.pt").is_file()
    resumed = MultimodalSentimentClassifier(**params).fit(X, y)
    epochs = resumed.history_[:, "epoch"]
    assert epochs[:2] == [1, 2] and epochs[-1] == 6 and len(epochs) == 6
    # The first two epochs are the interrupted fit's, read from the checkpoint.
    assert resumed.history_[:2, "dur"] == clf.history_[:2, "dur"]
    assert not resumed.interrupted_
    # A fit on other data does not resume from that checkpoint.
    other = MultimodalSentimentClassifier(**params).fit(X.iloc[:100], y[:100])
    assert len(other.history_) == 6 and other.history_[0, "epoch"] == 1


def test_a_checkpoint_from_before_the_fused_optimizer_resumes_in_float16(demo, tmp_path,
                                                                          monkeypatch):
    import mmsentiment.training.build as build

    X, y = demo
    params = {"finetune": "frozen", "max_epochs": 4, "batch_size": 16, "random_state": 0,
              "patience": 100, "precision": "fp16", "checkpoint_dir": tmp_path / "ckpt"}
    with monkeypatch.context() as patch:  # as AdamW ran before: its element-wise loop
        patch.setattr(build, "fused_optimizer", lambda device: None)
        clf = fit_with_interrupt(MultimodalSentimentClassifier(**params), X, y, epoch=3,
                                 batch=2)
    assert clf.interrupted_ and clf.net_.optimizer_.defaults["fused"] is None
    # The loss scaler of a float16 fit leaves unscaling to a fused optimizer: the loaded
    # parameter groups must not switch it back to the loop.
    resumed = MultimodalSentimentClassifier(**params).fit(X, y)
    assert resumed.history_[:, "epoch"] == [1, 2, 3, 4]
    assert all(group["fused"] for group in resumed.net_.optimizer_.param_groups)


def test_pickle_routes_the_net_through_torch_save(frozen):
    # torch.save/torch.load(map_location=...) can move every tensor of the net (module,
    # optimizer, callbacks) onto the CPU when a GPU-trained model is unpickled without a GPU.
    state = frozen.__getstate__()
    assert "net_" not in state and isinstance(state["_net_bytes"], bytes)
    clone = MultimodalSentimentClassifier.__new__(MultimodalSentimentClassifier)
    clone.__setstate__(state)
    assert str(clone.net_.device) == str(frozen.net_.device)
    early = dict(frozen.net_.callbacks_)["early_stopping"]
    assert early.best_model_weights_ is None  # no second copy of the weights in the pickle


@pytest.mark.parametrize("damage", ["truncate", "commit", "stamp"])
def test_a_damaged_checkpoint_is_moved_aside_and_the_fit_starts_over(demo, tmp_path, damage):
    X, y = demo
    folder = tmp_path / "ckpt"
    params = {"finetune": "frozen", "max_epochs": 4, "batch_size": 16, "random_state": 0,
              "patience": 100, "checkpoint_dir": folder}
    fit_with_interrupt(MultimodalSentimentClassifier(**params), X, y, epoch=3, batch=2)
    assert (folder / "commit.json").is_file()
    if damage == "truncate":  # as a crash in the middle of a write would leave it
        data = (folder / "optimizer.pt").read_bytes()
        (folder / "optimizer.pt").write_bytes(data[: len(data) // 2])
    elif damage == "commit":
        (folder / "commit.json").unlink()
    else:
        (folder / "fit.json").write_text('{"fingerprint": ')
    with pytest.warns(UserWarning, match="cannot be used"):
        clf = MultimodalSentimentClassifier(**params).fit(X, y)
    assert clf.history_[:, "epoch"] == [1, 2, 3, 4]  # started over, and finished
    assert any(folder.glob("broken-*/*.pt"))
    again = MultimodalSentimentClassifier(**params).fit(X, y)  # a finished fit: no warning
    assert len(again.history_) == 4


def test_pickles_hold_each_weight_once(frozen):
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(frozen, buffer)
    weights = sum(t.numel() * t.element_size()
                  for t in frozen.net_.module_.state_dict().values())
    assert len(buffer.getvalue()) < 1.15 * weights


def test_a_fit_with_a_seed_does_not_depend_on_earlier_fits(small):
    from mmsentiment.encoders.image import _pristine_state
    from mmsentiment.encoders.text import _load_pristine

    X, y = small
    params = {"finetune": "top", "max_epochs": 1, "batch_size": 12, "random_state": 0,
              "device": "cpu"}
    _pristine_state.cache_clear()
    _load_pristine.cache_clear()  # as in a fresh process: the encoders load from disk
    first = MultimodalSentimentClassifier(**params).fit(X, y).predict_proba(X)
    MultimodalSentimentClassifier(**{**params, "random_state": 5}).fit(X, y)
    later = MultimodalSentimentClassifier(**params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, later)


def test_a_pickle_from_before_newer_parameters_gets_their_old_behaviour(frozen, small):
    state = frozen.__getstate__()
    for name in ("gradient_checkpointing", "text_normalization", "logit_adjustment"):
        state.pop(name)  # as pickled by a version that did not have them
    old = MultimodalSentimentClassifier.__new__(MultimodalSentimentClassifier)
    old.__setstate__(state)
    params = old.get_params()
    assert params["gradient_checkpointing"] is False and params["text_normalization"] is None
    assert params["logit_adjustment"] == 0.0
    assert old.predict(small[0][:3]).shape == (3,)
