"""MVSA-Single benchmark: named configurations trained on train, measured on dev.

    python benchmarks/mvsa.py --configs joint frozen-logistic --seeds 0 1 2
    python benchmarks/mvsa.py --configs joint frozen-logistic --fractions 0.05 0.1 0.25 0.5
    python benchmarks/mvsa.py --table

The configurations are in benchmarks/configs.py, the runs in benchmarks/runner.py (each in a
process of its own) and the report in benchmarks/report.py. Results are appended to
benchmarks/results/mvsa.jsonl (``--results``); ``--table`` rewrites docs/benchmarks.md and
docs/img/learning_curve.png from them (``--table PATH`` writes another page). The test part
is never read. Fine-tuned runs save a checkpoint after every epoch in
benchmarks/results/checkpoints/ (not versioned): a long run that is stopped resumes from its
last epoch when the same command runs again, and the folder is removed once the run's result
is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from configs import CONFIGS
from report import write_report
from runner import run_benchmark

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "mvsa.jsonl"
TABLE = HERE.parent / "docs" / "benchmarks.md"
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "MVSA_Single"


def main(argv: list[str] | None = None) -> int:
    """Run the configurations asked for, then rewrite the report when asked.

    Parameters
    ----------
    argv : list of str, optional
        The command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0, or 2 where MVSA-Single is not found.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="the MVSA_Single folder (default: ../shared/data/MVSA_Single)")
    parser.add_argument("--configs", nargs="*", default=[], choices=sorted(CONFIGS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--fractions", nargs="*", type=float, default=[1.0],
                        help="shares of train (a learning curve)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="JSON Lines file the runs are appended to "
                             "(default: benchmarks/results/mvsa.jsonl)")
    parser.add_argument("--table", type=Path, nargs="?", const=TABLE,
                        help="rewrite the report from the results (default page: "
                             "docs/benchmarks.md)")
    args = parser.parse_args(argv)
    if args.configs and not (args.root / "labelResultAll.txt").is_file():
        print(f"MVSA-Single not found at {args.root}; pass --root.", file=sys.stderr)
        return 2
    run_benchmark(args.root, args.configs, args.seeds, args.fractions, args.results)
    if args.table is not None:
        write_report(args.results, args.table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
