"""MVSA-Single benchmark with this repository's paths (see mmsentiment/benchmark.py).

    python benchmarks/mvsa.py --configs joint frozen-logistic --seeds 0 1 2
    python benchmarks/mvsa.py --configs joint frozen-logistic --fractions 0.05 0.1 0.25 0.5
    python benchmarks/mvsa.py --table

Results are appended to benchmarks/results/mvsa.jsonl; ``--table`` rewrites
docs/benchmarks.md and docs/img/learning_curve.png from them. The test part is never read.
Fine-tuned runs save a checkpoint after every epoch in benchmarks/results/checkpoints/
(not versioned): a long run that is stopped resumes from its last epoch when the same
command runs again, and the folder is removed once the run's result is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmsentiment.benchmark import CONFIGS, run_benchmark, write_report

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "mvsa.jsonl"
TABLE = HERE.parent / "docs" / "benchmarks.md"
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "MVSA_Single"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--configs", nargs="*", default=[], choices=sorted(CONFIGS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--fractions", nargs="*", type=float, default=[1.0])
    parser.add_argument("--table", action="store_true", help="rewrite docs/benchmarks.md")
    args = parser.parse_args()
    if args.configs and not (args.root / "labelResultAll.txt").is_file():
        print(f"MVSA-Single not found at {args.root}; pass --root.", file=sys.stderr)
        return 2
    run_benchmark(args.root, args.configs, args.seeds, args.fractions, RESULTS)
    if args.table:
        write_report(RESULTS, TABLE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
