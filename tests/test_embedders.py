"""TextEmbedder / ImageEmbedder: sklearn transformers over the shared encoders and cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mmsentiment import ImageEmbedder, MultimodalSentimentClassifier, TextEmbedder
from mmsentiment.encoders import ImageEncoder, TextEncoder


def test_pipeline_on_the_same_dataframe(small):
    X, y = small
    features = ColumnTransformer([("text", TextEmbedder(), "text"),
                                  ("image", ImageEmbedder(), "image_path")])
    model = make_pipeline(features, LogisticRegression(max_iter=2000)).fit(X, y)
    assert model.score(X, y) > 0.9  # 36 posts, 1664 features: it must fit them
    names = model[0].get_feature_names_out()
    assert len(names) == 384 + 1280
    assert names[0] == "text__text0" and names[-1] == "image__image1279"


def test_vectors_are_the_encoders_outputs(small, tmp_path):
    X, _ = small
    texts, images = X["text"].tolist()[:4], X["image_path"].tolist()[:4]
    emb = TextEmbedder(cache_dir=tmp_path).fit(texts)
    got = emb.transform(pd.Series(texts))
    enc = TextEncoder("all-MiniLM-L6-v2").eval()
    import torch

    with torch.inference_mode():
        want = enc(**enc.tokenize(texts)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    # From the cache the second time, identical.
    np.testing.assert_array_equal(TextEmbedder(cache_dir=tmp_path).fit().transform(texts), got)
    img = ImageEmbedder(cache_dir=None).fit().transform(X[["image_path"]].iloc[:4])
    assert img.shape == (4, ImageEncoder("tf_efficientnet_lite0").dim)
    assert np.all(np.isfinite(img)) and not np.allclose(img[0], img[1])
    assert len(images) == 4


def test_set_output_pandas_keeps_the_index(small):
    X, _ = small
    part = X.iloc[[3, 5]]
    out = TextEmbedder().set_output(transform="pandas").fit(part["text"]).transform(
        part["text"])
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == [3, 5] and list(out.columns[:2]) == ["text0", "text1"]


def test_missing_values_give_zero_rows_and_bad_values_raise(image_file):
    emb = TextEmbedder().fit()
    out = emb.transform(["fine day", None, float("nan"), "   "])
    assert np.abs(out[0]).sum() > 0 and not out[1:].any()
    with pytest.raises(ValueError, match="neither strings nor missing"):
        emb.transform(["ok", 3])
    with pytest.raises(ValueError, match="one column"):
        emb.transform(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    images = [image_file(), "/no/such/file.jpg", None]
    with pytest.raises(ValueError, match="could not be read"):
        ImageEmbedder().fit().transform(images)
    with pytest.warns(UserWarning, match="treated as missing"):
        out = ImageEmbedder(on_bad_image="blank").fit().transform(images)
    assert np.abs(out[0]).sum() > 0 and not out[1:].any()
    with pytest.raises(ValueError, match="on_bad_image"):
        ImageEmbedder(on_bad_image="skip").fit()


def test_classifier_reads_what_an_embedder_cached(small, tmp_path):
    X, y = small
    TextEmbedder(cache_dir=tmp_path).fit().transform(X["text"])
    ImageEmbedder(cache_dir=tmp_path).fit().transform(X["image_path"])
    before = sorted(tmp_path.rglob("*.npy"))
    clf = MultimodalSentimentClassifier(finetune="frozen", max_epochs=2, cache_dir=tmp_path,
                                        random_state=0).fit(X, y)
    assert sorted(tmp_path.rglob("*.npy")) == before  # nothing new was encoded
    assert clf.predict(X).shape == (len(X),)


def test_clone_and_params():
    emb = ImageEmbedder(encoder="tf_efficientnet_lite2", batch_size=8)
    assert clone(emb).get_params() == emb.get_params()
    assert not hasattr(clone(emb), "encoder_")
