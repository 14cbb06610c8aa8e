"""Low-resource learning curve on MVSA-Single: dev accuracy against the share of train.

Compares joint fine-tuning with a logistic regression on frozen embeddings, on stratified
5 %, 10 %, 25 %, 50 % and 100 % subsets of the train split, and saves the plot. Needs the
MVSA-Single data in its official layout (pass its folder). The joint fits take about
20 minutes in all on two CPU cores with --finetune top, and about 40 with full:

    python examples/learning_curve_mvsa.py path/to/MVSA_Single --output curve.png
"""

import argparse

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmsentiment import (
    ImageEmbedder,
    MultimodalSentimentClassifier,
    TextEmbedder,
    load_mvsa,
    plot_learning_curve,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("root", help="the MVSA_Single folder")
parser.add_argument("--finetune", default="full", choices=["full", "top"])
parser.add_argument("--fractions", nargs="*", type=float, default=[0.05, 0.1, 0.25, 0.5, 1.0])
parser.add_argument("--output", default="learning_curve.png")
args = parser.parse_args()

cols = ["text", "image_path"]
train, dev = load_mvsa(args.root, "train"), load_mvsa(args.root, "dev")
methods = {
    "joint fine-tuning": lambda: MultimodalSentimentClassifier(
        finetune=args.finetune, validation_fraction=None, class_weight={"neutral": 1.5},
        random_state=0),
    "frozen embeddings + logistic regression": lambda: make_pipeline(
        ColumnTransformer([("text", TextEmbedder(), "text"),
                           ("image", ImageEmbedder(), "image_path")]),
        StandardScaler(), LogisticRegression(C=0.05, max_iter=3000)),
}
rows = []
for fraction in args.fractions:
    part = train if fraction >= 1 else train_test_split(
        train, train_size=fraction, stratify=train["label"], random_state=0)[0]
    for name, make in methods.items():
        model = make().fit(part[cols], part["label"])
        accuracy = model.score(dev[cols], dev["label"])
        rows.append({"method": name, "fraction": fraction, "accuracy": accuracy})
        print(f"{fraction:>5.0%} of train ({len(part)} posts) {name}: dev accuracy "
              f"{accuracy:.3f}", flush=True)

plot_learning_curve(pd.DataFrame(rows)).savefig(args.output, dpi=120, bbox_inches="tight")
print("saved", args.output)
