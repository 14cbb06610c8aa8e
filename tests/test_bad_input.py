"""One test per kind of bad input: each gets a clear error or its documented policy."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mmsentiment import MultimodalSentimentClassifier, validate
from mmsentiment.encoders import ImagePreprocessing, TextEncoder
from mmsentiment.inputs import extract_columns, load_images

PREP = ImagePreprocessing(size=32, crop_pct=0.875, mean=(0.5,) * 3, std=(0.5,) * 3)
FAST = {"finetune": "frozen", "max_epochs": 3, "random_state": 0}


def read(path, **kw):
    pixels, present, failures = load_images([str(path)], PREP, **kw)
    return pixels, bool(present[0]), failures


# ---------------------------------------------------------------- images, one case each
def test_missing_file(tmp_path):
    _, ok, failures = read(tmp_path / "nope.jpg")
    assert not ok and "FileNotFoundError" in failures[0][2]


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    _, ok, failures = read(tmp_path / "empty.jpg")
    assert not ok and failures[0][0] == 0


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.effect_noise((200, 200), 60).convert("RGB").save(buf, "JPEG", quality=90)
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    _, ok, failures = read(tmp_path / "cut.jpg")
    assert not ok and "truncated" in failures[0][2].lower()


def test_corrupt_png(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (50, 50), "red").save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[40:60] = b"\x00" * 20
    (tmp_path / "bad.png").write_bytes(bytes(data))
    _, ok, failures = read(tmp_path / "bad.png")
    assert not ok and failures


def test_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("just some text")
    _, ok, failures = read(tmp_path / "notes.jpg")
    assert not ok and "UnidentifiedImageError" in failures[0][2]


@pytest.mark.parametrize("mode, fmt", [("L", "PNG"), ("RGBA", "PNG"), ("P", "PNG"),
                                       ("CMYK", "JPEG"), ("I;16", "PNG")])
def test_other_modes_become_rgb(tmp_path, mode, fmt):
    img = Image.new("RGB", (60, 60), (250, 120, 10))
    img = img.convert(mode) if mode != "I;16" else Image.new("I;16", (60, 60), 40000)
    path = tmp_path / f"x.{fmt.lower()}"
    img.save(path, fmt)
    pixels, ok, failures = read(path)
    assert ok and not failures and pixels.shape == (1, 3, 32, 32)
    if mode == "I;16":  # 16-bit values are scaled to 8 bits, not clipped to white
        assert 100 < int(pixels.float().mean()) < 200


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    pixels, ok, _ = read(tmp_path / "a.gif")
    assert ok and pixels[0, 0].float().mean() > pixels[0, 2].float().mean()


def test_exif_rotated_photo(tmp_path):
    img = Image.new("RGB", (80, 40), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "r.jpg", exif=exif)
    pixels, ok, _ = read(tmp_path / "r.jpg")
    # Displayed upright the image is 40 wide and 80 high, blue on top.
    assert ok and pixels[0, 2, :4].float().mean() > pixels[0, 2, -4:].float().mean()


def test_one_pixel_image(tmp_path):
    Image.new("RGB", (1, 1), (9, 9, 9)).save(tmp_path / "dot.png")
    pixels, ok, _ = read(tmp_path / "dot.png")
    assert ok and int(pixels.max()) == 9


@pytest.mark.parametrize("side", [120, 200])  # PIL only warns up to 2x the limit, we refuse
def test_decompression_bomb_is_refused(tmp_path, monkeypatch, side):
    Image.new("L", (side, side)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    _, ok, failures = read(tmp_path / "big.png")
    assert not ok and "decompression" in failures[0][2].lower()


def test_one_bad_image_does_not_kill_the_batch(tmp_path):
    Image.new("RGB", (40, 40), "green").save(tmp_path / "ok.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8garbage")
    pixels, present, failures = load_images(
        [str(tmp_path / "ok.png"), str(tmp_path / "bad.jpg"), None], PREP)
    assert present.tolist() == [True, False, False]
    assert [f[0] for f in failures] == [1]  # None is a missing image, not a failure
    assert pixels[0].float().mean() > 0 and pixels[1].max() == 0


# ---------------------------------------------------------------- texts
@pytest.mark.parametrize("value", [None, float("nan"), pd.NA, "", "   \n\t"])
def test_missing_and_blank_texts_are_missing(value):
    texts, _ = extract_columns([[value, "a.jpg"]], "text", "image_path")
    assert texts == [None]


@pytest.mark.parametrize("value", [3, 2.5, b"bytes", ["a"]])
def test_non_string_text_is_an_error(value):
    with pytest.raises(ValueError, match="neither strings nor missing values.*row 0"):
        extract_columns([[value, "a.jpg"]], "text", "image_path")


@pytest.fixture(scope="module")
def minilm():
    return TextEncoder("all-MiniLM-L6-v2").eval()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=0, max_size=3000))
def test_any_text_tokenizes_within_limits(minilm, text):
    # Emoji, mixed scripts, control characters, very long strings: all become a valid batch.
    texts, _ = extract_columns([[text, "a.jpg"]], "text", "image_path")
    batch = minilm.tokenize(["" if texts[0] is None else texts[0]])
    assert 2 <= batch["input_ids"].shape[1] <= minilm.max_length
    assert batch["attention_mask"].sum() >= 2


def test_long_emoji_and_mixed_script_texts_encode(minilm):
    import torch

    texts = ["😀🎉🔥" * 50, "Hoje está ótimo 今天天气很好 🌞", "word " * 5000]
    with torch.inference_mode():
        out = minilm(**minilm.tokenize(texts))
    assert out.shape == (3, 384) and torch.isfinite(out).all()


# ---------------------------------------------------------------- columns, labels, sizes
def test_missing_or_misnamed_columns(small):
    X, y = small
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['text'\].*text_column="):
        MultimodalSentimentClassifier(**FAST).fit(X.rename(columns={"text": "tweet"}), y)


def test_x_and_y_lengths_differ(small):
    X, y = small
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MultimodalSentimentClassifier(**FAST).fit(X, y[:5])


def test_single_class(small):
    X, _ = small
    with pytest.raises(ValueError, match="only one class"):
        MultimodalSentimentClassifier(**FAST).fit(X, ["neutral"] * len(X))


def test_unseen_labels_at_scoring_count_as_errors(small):
    X, y = small
    clf = MultimodalSentimentClassifier(**FAST).fit(X, y)
    y_new = y.copy().astype(object)
    y_new[:6] = "sarcastic"
    assert clf.score(X, y_new) <= clf.score(X, y) - 6 / len(y) + 1e-9
    assert "sarcastic" not in set(clf.predict(X))


def test_fewer_samples_than_one_batch_and_than_folds(small):
    from sklearn.model_selection import cross_val_score

    X, y = small
    idx = [0, 1, 12, 13, 24, 25]
    with pytest.warns(UserWarning, match="Too few samples"):
        clf = MultimodalSentimentClassifier(**FAST).fit(X.iloc[idx], y[idx])
    assert clf.predict(X.iloc[idx]).shape == (6,)
    with pytest.raises(ValueError, match=r"n_splits=10.*greater than"):
        cross_val_score(MultimodalSentimentClassifier(**FAST), X.iloc[idx], y[idx], cv=10,
                        error_score="raise")


def test_empty_x_at_predict(small):
    X, y = small
    clf = MultimodalSentimentClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="0 sample"):
        clf.predict(X.iloc[:0])


# ---------------------------------------------------------------- policies in fit/predict
def test_on_bad_image_raise_names_rows(small, tmp_path):
    X, y = small
    bad = X.copy()
    (tmp_path / "zero.jpg").write_bytes(b"")
    bad.loc[3, "image_path"] = str(tmp_path / "zero.jpg")
    bad.loc[7, "image_path"] = str(tmp_path / "gone.jpg")
    with pytest.raises(ValueError, match=r"2 image\(s\) could not be read: row 3 .*row 7.*"
                                         r"on_bad_image='blank'"):
        MultimodalSentimentClassifier(**FAST).fit(bad, y)


def test_on_bad_image_blank_warns_and_fits(small, tmp_path):
    X, y = small
    bad = X.copy()
    bad.loc[3, "image_path"] = str(tmp_path / "gone.jpg")
    clf = MultimodalSentimentClassifier(**FAST, on_bad_image="blank")
    with pytest.warns(UserWarning, match=r"1 image\(s\) could not be read.*row 3"):
        clf.fit(bad, y)
    with pytest.warns(UserWarning, match="treated as missing"):
        proba = clf.predict_proba(bad.iloc[:5])
    assert proba.shape == (5, 3)


def test_rows_missing_a_modality_predict(small):
    X, y = small
    clf = MultimodalSentimentClassifier(**FAST).fit(X, y)
    no_text = X.assign(text=None)
    no_image = X.assign(image_path=np.nan)
    neither = X.assign(text="", image_path=None)
    full, t_only, i_only = (clf.predict_proba(d) for d in (X, no_image, no_text))
    assert not np.allclose(full, t_only) and not np.allclose(full, i_only)
    # With neither modality every row gets the same prediction (the model's prior).
    prior = clf.predict_proba(neither)
    np.testing.assert_allclose(prior, np.broadcast_to(prior[0], prior.shape), atol=1e-6)


def test_training_rows_may_lack_a_modality(small):
    X, y = small
    X = X.copy()
    X.loc[::4, "text"] = None
    X.loc[1::4, "image_path"] = None
    clf = MultimodalSentimentClassifier(**FAST).fit(X, y)
    assert clf.predict(X).shape == (len(X),)


# ---------------------------------------------------------------- validate()
def test_validate_reports_everything_at_once(tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "ok.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    Image.new("L", (64, 64)).save(tmp_path / "gray.png")
    (tmp_path / "bad.jpg").write_text("nope")
    df = pd.DataFrame({
        "text": ["fine", None, "  ", 42, "x" * 3000, "ok", "ok"],
        "image_path": [str(tmp_path / "ok.png"), str(tmp_path / "bad.jpg"), None,
                       str(tmp_path / "gone.png"), str(tmp_path / "tiny.png"),
                       str(tmp_path / "gray.png"), str(tmp_path / "ok.png")],
    })
    report = validate(df, y=["a", "b", "a", "b", "a", "b", "a"])
    kinds = {p.kind: p for p in report.problems}
    assert not report.ok
    assert kinds["missing_text"].rows == [1] and kinds["blank_text"].rows == [2]
    assert kinds["text_not_string"].rows == [3] and kinds["long_text"].rows == [4]
    assert kinds["unreadable_image"].rows == [1] and kinds["missing_image"].rows == [2]
    assert kinds["missing_image_file"].rows == [3] and kinds["tiny_image"].rows == [4]
    assert kinds["no_modality"].rows == [1, 2]
    assert "'L': 1" in kinds["converted_images"].message
    assert "ERRORS" in str(report) and len(report.to_frame()) == len(report.problems)


def test_validate_clean_data(small):
    X, y = small
    report = validate(X, y)
    assert report.ok and report.problems == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert validate(X.rename(columns={"text": "t"})).problems[0].kind == "missing_column"


def test_validate_names_what_fit_would_refuse(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.png")
    df = pd.DataFrame({"text": ["fine", "broken \ud83d", "ok"],
                       "image_path": [str(tmp_path / "pipe.png"), None, "/dev/zero"]},
                      dtype=object)  # pandas' own string dtype refuses a lone surrogate
    report = validate(df, y=["a", float("nan"), "b"])
    kinds = {p.kind: p for p in report.problems}
    assert not report.ok
    assert kinds["unencodable_text"].rows == [1]
    assert kinds["unreadable_image"].rows == [0, 2]
    assert "not a regular file" in kinds["unreadable_image"].message
    assert kinds["missing_label"].rows == [1]
