"""load_mvsa on a small folder in the official layout, made in the test."""

from __future__ import annotations

import pytest
from PIL import Image

from mmsentiment import load_mvsa
from mmsentiment.datasets import mvsa_split_ids

TRAIN_ID, DEV_ID = min(mvsa_split_ids("train")), min(mvsa_split_ids("dev"))
TEST_ID, CONFLICT_ID = 99_001, 99_002  # in neither list: the test part


def make_root(tmp_path, labels=None, skip_files=()):
    root = tmp_path / "MVSA_Single"
    (root / "data").mkdir(parents=True)
    labels = labels or {TRAIN_ID: "positive,neutral", DEV_ID: "neutral,neutral",
                        TEST_ID: "negative,negative", CONFLICT_ID: "positive,negative"}
    lines = ["ID\ttext,image"] + [f"{i}\t{pair}" for i, pair in labels.items()]
    (root / "labelResultAll.txt").write_text("\n".join(lines) + "\n")
    for i in labels:
        if i in skip_files:
            continue
        text = "今天很开心 #happy" if i == TEST_ID else f"post {i} http://t.co/x"
        (root / "data" / f"{i}.txt").write_bytes(
            text.encode("gb18030" if i == TEST_ID else "utf-8"))
        Image.new("RGB", (30, 20), (10, 200, 10)).save(root / "data" / f"{i}.jpg")
    return root


def test_splits_merge_rule_and_encodings(tmp_path):
    root = make_root(tmp_path)
    everything = load_mvsa(root)
    assert list(everything["id"]) == [TRAIN_ID, DEV_ID, TEST_ID]  # the conflict is dropped
    assert list(everything.columns) == ["id", "text", "image_path", "label", "text_label",
                                        "image_label"]
    assert list(everything["label"]) == ["positive", "neutral", "negative"]
    assert list(load_mvsa(root, "train")["id"]) == [TRAIN_ID]
    assert list(load_mvsa(root, "dev")["id"]) == [DEV_ID]
    test = load_mvsa(root, "test")
    assert list(test["id"]) == [TEST_ID]
    assert test["text"].iloc[0] == "今天很开心 #happy"  # read as GB18030
    assert test["image_path"].iloc[0].endswith(f"data/{TEST_ID}.jpg")


def test_package_lists_are_the_standard_split():
    train, dev = mvsa_split_ids("train"), mvsa_split_ids("dev")
    assert (len(train), len(dev)) == (3611, 450) and not train & dev


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an MVSA-Single folder"):
        load_mvsa(tmp_path)
    root = make_root(tmp_path, skip_files=(DEV_ID,))
    with pytest.raises(FileNotFoundError, match=f"data/{DEV_ID}.txt"):
        load_mvsa(root)
    assert list(load_mvsa(root, "train")["id"]) == [TRAIN_ID]  # other parts still load
    with pytest.raises(ValueError, match="split must be"):
        load_mvsa(root, "validation")
    (root / "labelResultAll.txt").write_text("ID\ttext,image\n5\thappy;sad\n")
    with pytest.raises(ValueError, match="not an MVSA label file"):
        load_mvsa(root)


def test_a_copy_without_the_test_part(tmp_path):
    root = make_root(tmp_path / "x", labels={TRAIN_ID: "positive,positive"})
    with pytest.raises(ValueError, match="no post of the 'test' part"):
        load_mvsa(root, "test")


def test_real_copy_matches_the_published_counts(mvsa_root):
    train, dev = load_mvsa(mvsa_root, "train"), load_mvsa(mvsa_root, "dev")
    assert train["label"].value_counts().to_dict() == {"positive": 2147, "negative": 1088,
                                                       "neutral": 376}
    assert dev["label"].value_counts().to_dict() == {"positive": 268, "negative": 135,
                                                     "neutral": 47}
