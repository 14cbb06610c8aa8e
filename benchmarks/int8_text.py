"""Int8 text encoder in prediction: dev accuracy and throughput against float32.

Fits the defaults on MVSA-Single train (or loads a model that an earlier run saved),
then predicts the dev posts twice: as fitted, and with every linear layer of the text
encoder quantized to int8 (torch's dynamic quantization: int8 weights, activations
quantized per batch). Issue 15 adopts int8 for the text encoder only if dev accuracy
moves by under 0.3 points. The figures go to ``results/int8_text.json``.

Run (a default fit on all of MVSA train, then two predictions of the dev posts)::

    python benchmarks/int8_text.py --model default-0.joblib
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "MVSA_Single"
RESULTS = HERE / "results" / "int8_text.json"
COLUMNS = ["text", "image_path"]


def int8_text(clf):
    """A copy of fitted ``clf`` whose text encoder's linear layers run in int8."""
    import torch

    quantized = copy.deepcopy(clf)
    encoder = quantized.net_.module_.text_encoder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note that this API moves to torchao
        encoder.model = torch.ao.quantization.quantize_dynamic(
            encoder.model, {torch.nn.Linear}, dtype=torch.qint8)
    return quantized


def evaluate(clf, dev, repeats: int = 3) -> tuple[dict, object]:
    """Dev metrics and throughput (best of ``repeats``) of ``clf``, with its probabilities."""
    from sklearn.metrics import accuracy_score, f1_score

    best, proba = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        proba = clf.predict_proba(dev[COLUMNS])
        best = min(best, time.perf_counter() - start)
    pred = clf.classes_[proba.argmax(1)]
    return {"accuracy": accuracy_score(dev["label"], pred),
            "weighted_f1": f1_score(dev["label"], pred, average="weighted"),
            "posts_per_s": len(dev) / best}, proba


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--model", type=Path, required=True,
                        help="joblib file: loaded where it exists, else fitted and saved")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.root / "labelResultAll.txt").is_file():
        print(f"MVSA-Single not found at {args.root}; pass --root.", file=sys.stderr)
        return 2
    import joblib
    import numpy as np

    from mmsentiment import MultimodalSentimentClassifier, load_mvsa
    from mmsentiment.precision import cpu_has_bf16

    sys.path.insert(0, str(HERE))
    from efficiency import cpu_description
    from runner import current_commit

    dev = load_mvsa(args.root, "dev")
    if args.model.is_file():
        clf, fit_seconds = joblib.load(args.model), None
    else:
        train = load_mvsa(args.root, "train")
        clf = MultimodalSentimentClassifier(random_state=args.seed, cache_dir=None)
        start = time.perf_counter()
        clf.fit(train[COLUMNS], train["label"])
        fit_seconds = time.perf_counter() - start
        joblib.dump(clf, args.model)
    as_fitted, p32 = evaluate(clf, dev)
    quantized, p8 = evaluate(int8_text(clf), dev)
    row = {"date": time.strftime("%Y-%m-%d"), "commit": current_commit(),
           "cpu": cpu_description(), "bf16_cpu": cpu_has_bf16(), "seed": args.seed,
           "params": {k: v for k, v in clf.get_params().items() if k != "callbacks"},
           "fit_seconds": fit_seconds, "n_dev": len(dev), "as_fitted": as_fitted,
           "int8_text": quantized, "largest_probability_change": float(np.abs(p32 - p8).max()),
           "changed_predictions": int((p32.argmax(1) != p8.argmax(1)).sum())}
    runs = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    RESULTS.write_text(json.dumps(runs + [row], indent=1, default=str))
    print(json.dumps(row, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
