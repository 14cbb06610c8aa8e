"""Model files from strangers: formats told by content, configs checked, no code, no network,
no writes; crafted headers end in one clear ValueError."""

from __future__ import annotations

import json
import os
import pickle
import socket
import struct

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.cli import main
from mmsentiment.model_files import file_format


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
    """A frozen model saved as safetensors: (path, tensors, metadata, X)."""
    X, y = small
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, cache_dir=None,
                                        random_state=0).fit(X, y)
    path = clf.save(tmp_path_factory.mktemp("model") / "model.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
    return path, load_file(str(path)), metadata, clf


def _write(tmp_path, tensors, metadata, name="crafted.safetensors"):
    path = tmp_path / name
    save_file(tensors, str(path), metadata=metadata)
    return path


def _with_config(saved, tmp_path, edit):
    _, tensors, metadata, _ = saved
    config = json.loads(metadata["config"])
    edit(config)
    return _write(tmp_path, tensors, {**metadata, "config": json.dumps(config)})


class Evil:
    """A pickle that, once loaded, would create the file ``marker``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_format_is_told_by_content_and_pickles_are_refused(saved, tmp_path, small, capsys):
    path, *_ = saved
    disguised = tmp_path / "MODEL.SAFETENSORS.bin"
    disguised.write_bytes(path.read_bytes())
    assert file_format(disguised) == "safetensors"
    crafted = tmp_path / "model.bin"
    marker = tmp_path / "pwned"
    crafted.write_bytes(pickle.dumps(Evil(marker)))
    assert file_format(crafted) == "pickle"
    X, _ = small
    data = tmp_path / "posts.csv"
    X.to_csv(data, index=False)
    code = main(["predict", str(crafted), str(data), "-o", str(tmp_path / "out.csv")])
    assert code == 1 and "--allow-pickle" in capsys.readouterr().err
    assert not marker.exists()
    with pytest.raises(ValueError, match="is a pickle"):
        MultimodalSentimentClassifier.load(crafted)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="neither a safetensors model file nor"):
        file_format(text)
    with pytest.raises(ValueError, match="not a regular file"):
        file_format(tmp_path)


def test_a_trusted_pickle_loads_with_the_flag(saved, tmp_path, small, capsys):
    *_, clf = saved
    X, _ = small
    model = tmp_path / "m.joblib"
    joblib.dump(clf, model)
    data = tmp_path / "posts.csv"
    X.to_csv(data, index=False)
    out = tmp_path / "out.csv"
    assert main(["predict", str(model), str(data), "-o", str(out), "--allow-pickle"]) == 0
    assert out.is_file()


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["params"].update(text_encoder="some-org/evil-model"), "not installed offline"),
    (lambda c: c["params"].update(image_encoder="tf_efficientnet_lite0@../weights/evil.pth"),
     "not installed offline"),
    (lambda c: c.update(classes_dtype="<U200000000"), "not a label type"),
    (lambda c: c.update(classes=[f"c{i}" for i in range(100_000)]), "2 to 10000 labels"),
    (lambda c: c.update(referenced_encoders=["head"]), "referenced_encoders"),
    (lambda c: c["params"].update(fusion="nope"), "fusion must be one of"),
    (lambda c: c["params"].update(batch_size=0), "batch_size must be a positive int"),
    (lambda c: c["params"].update(modality_dropout=7), "modality_dropout must be in"),
    (lambda c: c["params"].update(shell="rm -rf /"), "unknown"),
    (lambda c: c.update(classes=["a", "a", "b"]), "classes repeat"),
    (lambda c: c.update(referenced_encoders=[{"a": 1}]), "referenced_encoders"),
    (lambda c: c.update(referenced_encoders=[[1]]), "referenced_encoders"),
    (lambda c: c.update(classes=[float("nan"), float("nan")], classes_dtype="<f8"),
     "not a finite number"),
    (lambda c: c.update(n_features_in=2.0), "n_features_in"),
    (lambda c: c["params"].update(device="meta"), "device must be"),
    (lambda c: c["params"].update(lr=float("inf")), "lr must be a finite number"),
    (lambda c: c["params"].update(patience=0), "patience must be a positive int"),
])
def test_crafted_configs_are_refused(saved, tmp_path, edit, match):
    path = _with_config(saved, tmp_path, edit)
    with pytest.raises(ValueError, match=match):
        MultimodalSentimentClassifier.load(path)


def test_referenced_encoders_cannot_drop_trained_weights(saved, tmp_path):
    def edit(config):
        config["params"]["finetune"] = "full"

    with pytest.raises(ValueError, match="leaves out trained encoder weights"):
        MultimodalSentimentClassifier.load(_with_config(saved, tmp_path, edit))


def test_folders_to_write_never_come_from_the_file(saved, tmp_path):
    def edit(config):
        config["params"].update(cache_dir=str(tmp_path / "evil-cache"),
                                checkpoint_dir=str(tmp_path / "evil-ckpt"), callbacks="x")

    clf = MultimodalSentimentClassifier.load(_with_config(saved, tmp_path, edit))
    assert clf.cache_dir == "auto" and clf.checkpoint_dir is None and clf.callbacks is None
    assert MultimodalSentimentClassifier.load(saved[0], cache_dir=None).cache_dir is None


def test_tensor_shapes_are_checked_against_the_config(saved, tmp_path):
    _, tensors, metadata, _ = saved
    config = json.loads(metadata["config"])
    config["classes"] = ["a", "b", "c", "d"]
    config["classes_dtype"] = "<U1"
    config.pop("class_count"), config.pop("class_prior")  # else their length is refused first
    path = _write(tmp_path, tensors, {**metadata, "config": json.dumps(config)})
    with pytest.raises(ValueError, match="wrong shape"):
        MultimodalSentimentClassifier.load(path)


def test_a_huge_header_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.safetensors"
    claimed = (16 << 20) + 1  # within the file, above the header limit
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", claimed) + b"{")
        fh.truncate(claimed + 64)  # a sparse file: large on paper, nothing written
    assert file_format(path) == "safetensors"
    with pytest.raises(ValueError, match="its header claims"):
        MultimodalSentimentClassifier.load(path)


def test_written_files_get_the_usual_permissions(saved, tmp_path):
    *_, clf = saved
    path = clf.save(tmp_path / "m.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(FileExistsError):
        clf.save(path, overwrite=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=8)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(["config", "params", "metadata", "bytes"]),
       key=st.text(max_size=12), value=json_values, drop=st.booleans(),
       offset=st.integers(min_value=0, max_value=10_000), byte=st.integers(0, 255))
def test_random_header_edits_end_in_a_value_error(saved, tmp_path, monkeypatch, target, key,
                                                  value, drop, offset, byte):
    _, tensors, metadata, _ = saved
    config = json.loads(metadata["config"])
    params = config["params"]
    meta = dict(metadata)
    if target == "config":  # replace or drop a real key, or add an unknown one
        key = sorted(config)[len(key) % len(config)] if len(key) % 3 else key
        config.pop(key, None) if drop else config.__setitem__(key, value)
    elif target == "params":
        key = sorted(params)[len(key) % len(params)]
        params.pop(key) if drop else params.__setitem__(key, value)
    meta["config"] = json.dumps(config)
    if target == "metadata":
        meta[sorted(meta)[len(key) % len(meta)]] = json.dumps(value)
    folder = tmp_path / f"case-{offset}-{byte}"
    folder.mkdir(exist_ok=True)
    path = _write(folder, tensors, meta)
    if target == "bytes":
        data = bytearray(path.read_bytes())
        (length,) = struct.unpack("<Q", data[:8])
        data[8 + offset % length] = byte
        path.write_bytes(bytes(data))
    connections = []

    def no_network(*args, **kwargs):
        connections.append(args)
        raise OSError("network use in a test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    cache = tmp_path / "cache"
    before = sorted(p.name for p in folder.iterdir())
    try:
        clf = MultimodalSentimentClassifier.load(path, cache_dir=cache)
    except ValueError:
        clf = None
    assert connections == []
    assert sorted(p.name for p in folder.iterdir()) == before and not cache.exists()
    if clf is not None:  # a harmless edit (e.g. another learning rate): a working model
        assert len(clf.classes_) >= 2 and hasattr(clf, "net_")


def test_a_file_from_before_the_logit_adjustment_predicts_as_it_did(saved, tmp_path, small):
    def edit(config):  # what a file written before class priors were kept holds
        for key in ("class_count", "class_prior"):
            config.pop(key)
        config["params"].pop("logit_adjustment")
        config["params"].pop("text_normalization")

    clf = MultimodalSentimentClassifier.load(_with_config(saved, tmp_path, edit))
    assert clf.logit_adjustment == 0.0 and clf.text_normalization is None
    assert not hasattr(clf, "class_prior_")
    X, _ = small
    proba = clf.predict_proba(X)
    original = saved[3]
    np.testing.assert_allclose(proba, original.set_params(logit_adjustment=0.0)
                               .predict_proba(X), atol=1e-6)
    original.set_params(logit_adjustment=0.5)
