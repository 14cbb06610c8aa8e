"""Model folders in the Hugging Face layout: save_pretrained, from_pretrained, the card."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open
from safetensors.torch import save_file

from mmsentiment import MultimodalSentimentClassifier, __version__
from mmsentiment.model_card import FINETUNE_MEANING
from mmsentiment.model_files import CALLER_PARAMS
from mmsentiment.nn.finetune import FINETUNE_MODES
from mmsentiment.pretrained import folder_config


@pytest.fixture(scope="module")
def frozen(small):
    X, y = small
    return MultimodalSentimentClassifier(finetune="frozen", max_epochs=2,
                                         random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def folder(frozen, tmp_path_factory):
    """A model folder written once; tests that change files work on copies."""
    return frozen.save_pretrained(tmp_path_factory.mktemp("saved") / "model",
                                  dataset_name="demo slice", metrics={"dev accuracy": 0.625})


def copy_of(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "copy")


def test_round_trip_predicts_identically(frozen, folder, small):
    X, _ = small
    assert sorted(p.name for p in folder.iterdir()) == \
        ["README.md", "config.json", "model.safetensors"]
    loaded = MultimodalSentimentClassifier.from_pretrained(folder)
    np.testing.assert_array_equal(loaded.predict_proba(X), frozen.predict_proba(X))
    assert list(loaded.classes_) == list(frozen.classes_)
    assert loaded.get_params() == frozen.get_params()


def test_card_front_matter_and_content(frozen, folder):
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "mmsentiment"
    assert card.data.pipeline_tag == "text-classification"
    assert {"mmsentiment", "multimodal", "sentiment-analysis"} <= set(card.data.tags)
    assert card.data.language == "en"
    assert card.data.metrics == ["accuracy"]
    text = card.text
    for label in frozen.classes_:
        assert f"| {label} |" in text
    assert "`all-MiniLM-L6-v2`" in text and "`tf_efficientnet_lite0`" in text
    assert "`frozen`" in text and "demo slice" in text
    assert "| dev accuracy | 0.625 |" in text
    # The validation figures are those of the epoch that early stopping restored.
    history = frozen.history_
    restored = dict(frozen.net_.callbacks_)["early_stopping"].best_epoch_
    best = next(e for e in history if e["epoch"] == restored)
    assert f"validation accuracy {best['valid_acc']:.4f}" in text
    assert f"at epoch {best['epoch']} of {len(history)}" in text
    n_valid = sum(b.get("valid_batch_size", 0) for b in history[0]["batches"])
    assert f"- Posts: 36 ({36 - n_valid} trained on, {n_valid} held out" in text
    assert "from_pretrained(\"path/to/this/folder\")" in text
    assert "## Intended use and limits" in text and "Not made for" in text
    assert "decision about people" in text and "biases of its pretrained encoders" in text
    assert f'pip install "mmsentiment>={__version__}"' in text


def test_card_explains_every_finetune_mode():
    # A card names the mode a model was trained in; a mode added without a meaning would
    # leave that cell blank.
    assert set(FINETUNE_MEANING) == set(FINETUNE_MODES)
    assert all(FINETUNE_MEANING[mode].strip() for mode in FINETUNE_MODES)


def test_card_class_counts_and_loaded_model(frozen, folder, tmp_path, monkeypatch, small):
    _, y = small
    counts = np.array([int((y == c).sum()) for c in frozen.classes_])
    monkeypatch.setattr(frozen, "class_count_", counts, raising=False)
    out = frozen.save_pretrained(tmp_path / "counted", repo_id="someone/mvsa-model",
                                 description="Trained for a test.")
    text = (out / "README.md").read_text(encoding="utf-8")
    for label, n in zip(frozen.classes_, counts):
        assert f"| {label} | {n} |" in text
    assert 'from_pretrained("someone/mvsa-model")' in text
    assert "Trained for a test." in text
    # A loaded model keeps no history: its card says so instead of inventing figures.
    loaded = MultimodalSentimentClassifier.from_pretrained(folder)
    again = loaded.save_pretrained(tmp_path / "resaved")
    text = (again / "README.md").read_text(encoding="utf-8")
    assert "Posts: not known" in text and "No metrics" in text
    assert ModelCard.load(again / "README.md").data.metrics is None


def test_config_json_agrees_with_model(frozen, folder):
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    expected = {k: v for k, v in frozen.get_params().items() if k not in CALLER_PARAMS}
    assert config["params"] == expected
    assert config["classes"] == list(frozen.classes_)
    assert config["library_name"] == "mmsentiment"
    with safe_open(str(folder / "model.safetensors"), framework="pt") as fh:
        assert folder_config(fh.metadata()) == config


@pytest.mark.parametrize("edit", [
    lambda c: c["params"].update(finetune="full"),
    lambda c: c.update(classes=c["classes"][::-1]),
    lambda c: c.update(extra=1),
])
def test_tampered_config_json_is_refused(folder, tmp_path, edit):
    copy = copy_of(folder, tmp_path)
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    edit(config)
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match="disagrees with model.safetensors"):
        MultimodalSentimentClassifier.from_pretrained(copy)


def test_missing_or_unreadable_config_json(folder, tmp_path):
    copy = copy_of(folder, tmp_path)
    (copy / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="is not JSON"):
        MultimodalSentimentClassifier.from_pretrained(copy)
    (copy / "config.json").unlink()
    with pytest.raises(ValueError, match="has no config.json"):
        MultimodalSentimentClassifier.from_pretrained(copy)


def test_garbage_and_crafted_weights_are_refused(folder, tmp_path):
    copy = copy_of(folder, tmp_path)
    weights = copy / "model.safetensors"
    weights.write_bytes(b"garbage, not a model at all")
    with pytest.raises(ValueError, match="neither a safetensors model file nor"):
        MultimodalSentimentClassifier.from_pretrained(copy)
    weights.write_bytes(b"\x80\x04K\x01.")  # a pickle
    with pytest.raises(ValueError, match="is a pickle"):
        MultimodalSentimentClassifier.from_pretrained(copy)
    # A well-formed safetensors file whose config names an encoder that is not installed,
    # with a config.json made to agree: refused by the weights file's checks.
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    config["params"]["text_encoder"] = "someone/unknown-model"
    inner = {k: config[k] for k in ("params", "classes", "classes_dtype", "n_features_in",
                                     "feature_names_in", "referenced_encoders")}
    metadata = {"format": "mmsentiment", "format_version": "1",
                "mmsentiment_version": config["mmsentiment_version"],
                "config": json.dumps(inner)}
    save_file({"head.weight": torch.zeros(3, 2)}, str(weights), metadata=metadata)
    (copy / "config.json").write_text(json.dumps(folder_config(metadata)), encoding="utf-8")
    with pytest.raises(ValueError, match="not installed offline"):
        MultimodalSentimentClassifier.from_pretrained(copy)


def test_overwrite_policy(frozen, folder, tmp_path):
    unrelated = tmp_path / "unrelated"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(FileExistsError, match="holds no mmsentiment model"):
        frozen.save_pretrained(unrelated)
    assert [p.name for p in unrelated.iterdir()] == ["notes.txt"]
    a_file = tmp_path / "a_file"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(FileExistsError, match="is a file"):
        frozen.save_pretrained(a_file)
    copy = copy_of(folder, tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        frozen.save_pretrained(copy, overwrite=False)
    (copy / ".gitattributes").write_text("*.safetensors filter=lfs\n", encoding="utf-8")
    (copy / "README.md").write_text("an old card", encoding="utf-8")
    frozen.save_pretrained(copy, dataset_name="second save")
    assert (copy / ".gitattributes").is_file()  # other files stay
    assert "second save" in (copy / "README.md").read_text(encoding="utf-8")
    assert not [p for p in copy.iterdir() if p.name.endswith(".tmp")]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert frozen.save_pretrained(empty) == empty


def test_bad_card_arguments_write_nothing(frozen, tmp_path):
    with pytest.raises(TypeError, match="must be a number"):
        frozen.save_pretrained(tmp_path / "m", metrics={"accuracy": "high"})
    with pytest.raises(ValueError, match="not a finite number"):
        frozen.save_pretrained(tmp_path / "m", metrics={"accuracy": float("nan")})
    with pytest.raises(TypeError, match="dataset_name must be a string"):
        frozen.save_pretrained(tmp_path / "m", dataset_name=["a"])
    with pytest.raises(ValueError):
        frozen.save_pretrained(tmp_path / "m", repo_id="not a repo id!")
    assert not (tmp_path / "m").exists()
    with pytest.raises(Exception, match="not fitted"):
        MultimodalSentimentClassifier().save_pretrained(tmp_path / "m")


def test_sources_that_are_not_folders(folder, tmp_path):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set"):
        MultimodalSentimentClassifier.from_pretrained("someone/no-such-mmsentiment-model")
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        MultimodalSentimentClassifier.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        MultimodalSentimentClassifier.from_pretrained("./missing/model")
    with pytest.raises(ValueError, match="neither a local folder nor a hub repository id"):
        MultimodalSentimentClassifier.from_pretrained("not a repo id!")
    with pytest.raises(ValueError, match="is a file"):
        MultimodalSentimentClassifier.from_pretrained(folder / "model.safetensors")
    with pytest.raises(ValueError, match="has no model.safetensors"):
        MultimodalSentimentClassifier.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match="folder or a hub repository id"):
        MultimodalSentimentClassifier.from_pretrained(3)


def test_repo_id_downloads_only_the_model_files(folder, monkeypatch, small):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    loaded = MultimodalSentimentClassifier.from_pretrained("someone/mvsa-model",
                                                           revision="abc123", device="cpu")
    assert calls == [("someone/mvsa-model", {
        "revision": "abc123",
        "allow_patterns": ["model.safetensors", "config.json", "README.md"]})]
    assert loaded.predict(small[0][:2]).shape == (2,)
