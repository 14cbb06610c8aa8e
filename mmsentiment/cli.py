"""The ``mmsentiment`` command."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    import joblib
    from sklearn.metrics import accuracy_score, classification_report, f1_score
    from sklearn.model_selection import train_test_split

    from . import MultimodalSentimentClassifier, load_demo

    start = time.perf_counter()
    X, y = load_demo(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    print(f"Demo set: {len(X)} synthetic posts (made by the project, see "
          f"mmsentiment.load_demo); training on {len(X_train)}, testing on {len(X_test)}.")
    clf = MultimodalSentimentClassifier(max_epochs=args.epochs, random_state=0,
                                        verbose=args.verbose)
    print(f"Fine-tuning {clf.text_encoder} + {clf.image_encoder} jointly "
          f"({clf.fusion} fusion, {clf.max_epochs} epochs) ...", flush=True)
    clf.fit(X_train, y_train)
    pred = clf.predict(X_test)
    print(f"Held-out accuracy {accuracy_score(y_test, pred):.3f}, weighted F1 "
          f"{f1_score(y_test, pred, average='weighted', zero_division=0):.3f}")
    print(classification_report(y_test, pred, digits=3, zero_division=0))
    out = Path(args.output) if args.output else Path(tempfile.mkdtemp()) / "demo.joblib"
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(clf, out)
    loaded = joblib.load(out)
    sample = X_test.iloc[:3]
    for (text, _), label, proba in zip(sample.itertuples(index=False),
                                       loaded.predict(sample), loaded.predict_proba(sample)):
        print(f"  {text[:45]!r:48} -> {label} (p={proba.max():.2f})")
    print(f"Saved the model to {out} and predicted with the reloaded copy. "
          f"Total {time.perf_counter() - start:.0f} s.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mmsentiment`` command."""
    parser = argparse.ArgumentParser(
        prog="mmsentiment",
        description="Multimodal (text + image) sentiment classification.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train on the built-in demo set, evaluate, save, "
                                       "reload and predict (offline, about a minute)")
    demo.add_argument("--epochs", type=int, default=4, help="training epochs (default 4)")
    demo.add_argument("--output", help="where to save the model (default: a temp folder)")
    demo.add_argument("--verbose", type=int, default=1, help="0 silences the epoch table")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mmsentiment`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
