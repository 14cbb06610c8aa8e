"""MVSA-Single benchmark: train named configurations on train, measure on dev.

Each configuration runs in its own process (clean peak-memory figures) and appends one JSON
line to ``benchmarks/results/mvsa.jsonl``; ``--table`` rewrites docs/benchmarks.md from it.

    python benchmarks/mvsa.py --configs default frozen --seeds 0
    python benchmarks/mvsa.py --table

The test part is never read: selection and reporting use dev only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "mvsa.jsonl"
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "MVSA_Single"

JOINT = {"validation_fraction": None, "class_weight": {"neutral": 1.5}}
CONFIGS: dict[str, dict] = {
    "default": {},
    "joint": JOINT,
    # One modality removed from train and dev alike: the same estimator then never runs the
    # other encoder.
    "text-only": {**JOINT, "drop": "image_path"},
    "image-only": {**JOINT, "drop": "text"},
    "frozen": {"finetune": "frozen", "max_epochs": 30, "patience": 3},
    "paper": {"fusion": "paper", "lr": 3e-5, "text_encoder_lr": 3e-5,
              "image_encoder_lr": 3e-5, "max_epochs": 30, "patience": 2},
    "top": {"finetune": "top", "max_epochs": 5},
}


def subsample(train, fraction: float, seed: int):
    """A stratified ``fraction`` of the training posts (all of them for 1.0)."""
    from sklearn.model_selection import train_test_split

    if fraction >= 1.0:
        return train
    part, _ = train_test_split(train, train_size=fraction, stratify=train["label"],
                               random_state=seed)
    return part


def run_one(name: str, seed: int, root: Path, fraction: float = 1.0) -> dict:
    """Fit configuration ``name`` with ``seed`` on a ``fraction`` of train; measure on dev."""
    from sklearn.metrics import accuracy_score, f1_score

    from mmsentiment import MultimodalSentimentClassifier, load_mvsa

    params = dict(CONFIGS[name])
    drop = params.pop("drop", None)
    train = subsample(load_mvsa(root, "train"), fraction, seed)
    dev = load_mvsa(root, "dev")
    cols = ["text", "image_path"]
    X_train, X_dev = train[cols], dev[cols]
    if drop is not None:
        X_train, X_dev = X_train.assign(**{drop: None}), X_dev.assign(**{drop: None})
    clf = MultimodalSentimentClassifier(**params, random_state=seed, verbose=1)
    start = time.perf_counter()
    clf.fit(X_train, train["label"])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = clf.predict(X_dev)
    predict_s = time.perf_counter() - start
    y = dev["label"]
    extra = {}
    if drop is None:
        # Missing modalities: the same model with every dev image removed, then every text.
        extra = {"dev_accuracy_no_images":
                 accuracy_score(y, clf.predict(X_dev.assign(image_path=None))),
                 "dev_accuracy_no_texts": accuracy_score(y, clf.predict(X_dev.assign(text=None)))}
    return {
        "config": name, "seed": seed, "fraction": fraction, "n_train": len(train),
        "params": {k: v for k, v in clf.get_params().items()
                   if isinstance(v, (int, float, str, dict))},
        "commit": subprocess.run(["git", "describe", "--always", "--dirty"], cwd=HERE,
                                 capture_output=True, text=True).stdout.strip(),
        "dev_accuracy": accuracy_score(y, pred),
        "dev_weighted_f1": f1_score(y, pred, average="weighted"),
        "dev_macro_f1": f1_score(y, pred, average="macro"),
        **extra,
        "fit_seconds": fit_s, "epochs": len(clf.history_),
        "predict_posts_per_s": len(dev) / predict_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads "
                   f"{__import__('torch').get_num_threads()}",
        "date": time.strftime("%Y-%m-%d"),
    }


PUBLISHED = [  # test part of the standard split (GUIDE.md section 3; MVSA README)
    ("MultiSentiNet", 69.84, 69.63), ("Co-MN-Hop6", 70.51, 70.01), ("MGNNS", 73.77, 72.70),
    ("CLMLF", 75.33, 73.46), ("MDSE", 76.22, 75.71),
]
DESCRIPTIONS = {
    "default": "MultimodalSentimentClassifier() defaults: joint fine-tuning of MiniLM + "
               "EfficientNet-Lite0, concat fusion",
    "default-v0": "the defaults at commit 8ada438, before modality dropout: joint "
                  "fine-tuning, concat fusion",
    "frozen": "frozen encoders, concat head trained on their features",
    "paper": "the paper's method: its fusion, AdamW 3e-5 everywhere, both encoders unfrozen",
    "top": "partial fine-tuning: top 2 MiniLM layers, top 2 EfficientNet block stages + "
           "head conv, lower image layers computed once",
}


def _fmt(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    import numpy as np

    arr = np.asarray(values, dtype=float) * scale
    if len(arr) == 1:
        return f"{arr[0]:.{digits}f}"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f}"


def write_table(path: Path) -> None:
    """Rewrite docs/benchmarks.md from the results file (latest run per config and seed)."""
    rows: dict[tuple[str, int], dict] = {}
    for line in RESULTS.read_text().splitlines():
        result = json.loads(line)
        rows[(result["config"], result["seed"])] = result
    by_config: dict[str, list[dict]] = {}
    for (config, _), result in sorted(rows.items()):
        by_config.setdefault(config, []).append(result)
    lines = [
        "# Benchmarks: MVSA-Single",
        "",
        "Regenerate: `python benchmarks/mvsa.py --configs default frozen top --seeds 0` then",
        "`python benchmarks/mvsa.py --table`. Trained on the 3,611 train posts, measured on the",
        "450 dev posts of the standard split; the test part is never read. Machine: "
        + next(iter(rows.values()))["machine"] + ", no GPU.",
        "",
        "| configuration | seeds | dev acc % | dev weighted F1 % | dev macro F1 % "
        "| acc, no images % | acc, no texts % | epochs | fit min | predict posts/s "
        "| peak RSS GB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config, results in by_config.items():
        def get(key: str, results: list[dict] = results) -> list:
            return [r[key] for r in results if key in r]

        seeds = ", ".join(str(r["seed"]) for r in results)
        if len(results) == 1:
            seeds += " (one seed)"
        lines.append(
            f"| {config}: {DESCRIPTIONS.get(config, '')} | {seeds} | {_fmt(get('dev_accuracy'))} "
            f"| {_fmt(get('dev_weighted_f1'))} | {_fmt(get('dev_macro_f1'))} "
            f"| {_fmt(get('dev_accuracy_no_images')) if get('dev_accuracy_no_images') else '-'} "
            f"| {_fmt(get('dev_accuracy_no_texts')) if get('dev_accuracy_no_texts') else '-'} "
            f"| {_fmt(get('epochs'), 1, 0)} | {_fmt(get('fit_seconds'), 1 / 60)} "
            f"| {_fmt(get('predict_posts_per_s'), 1, 0)} | {_fmt(get('peak_rss_mb'), 1 / 1024)} |"
        )
    lines += [
        "",
        "Published results on the standard **test** part (accuracy / weighted F1 %), with",
        "BERT/ResNet-class encoders on GPUs; the test part has so far run several points below",
        "dev, so these are context, not a like-for-like comparison:",
        "",
        "| model | acc % | weighted F1 % |",
        "|---|---|---|",
    ] + [f"| {name} | {acc} | {f1} |" for name, acc, f1 in PUBLISHED] + [
        "",
        "Anchor from the project guide (frozen MiniLM + EfficientNet-Lite0 features, logistic",
        "regression on their concatenation): 71.8 % dev accuracy.",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--configs", nargs="*", default=["default"], choices=sorted(CONFIGS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--fractions", nargs="*", type=float, default=[1.0],
                        help="shares of train to fit on (a learning curve)")
    parser.add_argument("--child", nargs=3, metavar=("CONFIG", "SEED", "FRACTION"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--table", action="store_true", help="rewrite docs/benchmarks.md")
    args = parser.parse_args()
    if args.table:
        write_table(HERE.parent / "docs" / "benchmarks.md")
        return 0
    if args.child:
        result = run_one(args.child[0], int(args.child[1]), args.root, float(args.child[2]))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a") as fh:
            fh.write(json.dumps(result) + "\n")
        print(json.dumps(result, indent=1))
        return 0
    if not (args.root / "labelResultAll.txt").is_file():
        print(f"MVSA-Single not found at {args.root}; pass --root.", file=sys.stderr)
        return 2
    for name in args.configs:
        for fraction in args.fractions:
            for seed in args.seeds:
                subprocess.run([sys.executable, __file__, "--root", str(args.root),
                                "--child", name, str(seed), str(fraction)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
