"""A scikit-learn Pipeline: clean the tweets, then classify text + image.

The cleaning step is an ordinary FunctionTransformer on the DataFrame, built on
`mmsentiment.normalize_tweet` (links, handles, hashtags, emoji and HTML entities into
words); the classifier reads the cleaned "text" column and the untouched "image_path"
column. (Inside the classifier alone, ``text_normalization="tweet"`` does the same and is
kept with a saved model.) A second pipeline puts plain embeddings (TextEmbedder +
ImageEmbedder) under a logistic regression on the same DataFrame. Runs offline on the demo
set in under a minute on two CPU cores:

    python examples/pipeline_text_cleaning.py
"""

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mmsentiment import (
    ImageEmbedder,
    MultimodalSentimentClassifier,
    TextEmbedder,
    load_demo,
    normalize_tweet,
)


def clean(X):
    """Each present text rewritten by normalize_tweet; missing texts stay missing."""
    return X.assign(text=X["text"].map(lambda t: normalize_tweet(t) if isinstance(t, str)
                                       else t))


X, y = load_demo(return_X_y=True)
X = X.assign(text=X["text"] + " #mood @friend http://t.co/x1")  # tweet-like noise
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

fine_tuned = make_pipeline(
    FunctionTransformer(clean),
    MultimodalSentimentClassifier(finetune="top", max_epochs=3, random_state=0),
)
fine_tuned.fit(X_train, y_train)
print("cleaned:", clean(X_test[:1])["text"].iloc[0])
print("partial fine-tuning, held-out accuracy:", round(fine_tuned.score(X_test, y_test), 3))

embeddings = make_pipeline(
    FunctionTransformer(clean),
    ColumnTransformer([("text", TextEmbedder(), "text"),
                       ("image", ImageEmbedder(), "image_path")]),
    StandardScaler(),
    LogisticRegression(C=0.1, max_iter=2000),
)
embeddings.fit(X_train, y_train)
print("embeddings + logistic regression, held-out accuracy:",
      round(embeddings.score(X_test, y_test), 3))
