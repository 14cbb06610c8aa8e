"""Quickstart: fit, predict, score and save a multimodal sentiment classifier.

Runs offline on the built-in demo set in about a minute on two CPU cores:

    python examples/quickstart.py
"""

import joblib
from sklearn.model_selection import train_test_split

from mmsentiment import MultimodalSentimentClassifier, load_demo

X, y = load_demo(return_X_y=True)  # DataFrame with "text" and "image_path" columns
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

clf = MultimodalSentimentClassifier(max_epochs=3, random_state=0, verbose=1)
clf.fit(X_train, y_train)  # joint fine-tuning of MiniLM + EfficientNet-Lite0

print("classes:", clf.classes_)
print("accuracy on held-out posts:", round(clf.score(X_test, y_test), 3))
print(clf.predict_proba(X_test[:3]).round(3))

joblib.dump(clf, "quickstart.joblib")
print("reloaded:", joblib.load("quickstart.joblib").predict(X_test[:3]))
