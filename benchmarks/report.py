"""The MVSA-Single benchmark's report: docs/benchmarks.md and its learning-curve plot, written
from the results files of ``runner.py`` (mvsa.jsonl) and ``screen.py`` (screen.jsonl).
"""

from __future__ import annotations

import json
from pathlib import Path

from configs import ABLATIONS, DESCRIPTIONS, PUBLISHED, SCREEN


def _fmt(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    """``mean ± std`` of ``values`` times ``scale`` (one value alone; ``-`` for none)."""
    import numpy as np

    if not values:
        return "-"
    arr = np.asarray(values, dtype=float) * scale
    if len(arr) == 1:
        return f"{arr[0]:.{digits}f}"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f}"


def load_results(results: Path) -> list[dict]:
    """The latest run of each (configuration, share of train, seed) in a results file.

    Parameters
    ----------
    results : Path
        A JSON Lines file of runs.

    Returns
    -------
    list of dict
        Sorted by configuration, share of train and seed.
    """
    rows: dict[tuple, dict] = {}
    for line in Path(results).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            rows[(r["config"], r.get("fraction") or 1.0, r["seed"])] = r
    return [rows[k] for k in sorted(rows)]


def write_report(results: Path, table: Path) -> None:
    """Rewrite the Markdown page ``table`` (and its learning-curve PNG) from ``results``.

    A ``screen.jsonl`` beside ``results`` adds the lever screen's section; runs on a share of
    train add the learning curve, drawn to ``img/learning_curve.png`` beside ``table``.

    Parameters
    ----------
    results : Path
        The runs of ``runner.py`` (JSON Lines).
    table : Path
        The Markdown page to write.
    """
    runs = load_results(results)
    full = [r for r in runs if (r.get("fraction") or 1.0) == 1.0]
    by_config: dict[str, list[dict]] = {}
    for r in full:
        by_config.setdefault(r["config"], []).append(r)
    lines = [
        "# Benchmarks: MVSA-Single",
        "",
        "Trained on the 3,611 train posts, measured on the 450 dev posts of the standard",
        "split; the test part is never read. Each cell is the mean ± standard deviation over",
        "the seeds listed (one value where one seed ran). Machine: "
        + (runs[0]["machine"] if runs else "-") + ", no GPU.",
        "",
        "Rerun a row with `python benchmarks/mvsa.py --configs NAME --seeds 0 1 2` (the",
        "configurations are in `benchmarks/configs.py`; rows whose name ends in -v0 or -v1",
        "are earlier defaults, kept for comparison and reproducible at their commit), then",
        "`python benchmarks/mvsa.py --table`. Fit times are wall-clock on a machine that was",
        "sometimes running other jobs at the same time (then they are upper bounds).",
        "",
        "| configuration | seeds | dev acc % | dev weighted F1 % | dev macro F1 % "
        "| acc, no images % | acc, no texts % | epochs | fit min | predict posts/s "
        "| peak RSS GB | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config, rs in by_config.items():
        def get(key: str, rs: list[dict] = rs) -> list:
            return [r[key] for r in rs if key in r]

        seeds = ", ".join(str(r["seed"]) for r in rs) + (" (one seed)" if len(rs) == 1 else "")
        lines.append(
            f"| **{config}**: {DESCRIPTIONS.get(config, '')} | {seeds} "
            f"| {_fmt(get('dev_accuracy'))} | {_fmt(get('dev_weighted_f1'))} "
            f"| {_fmt(get('dev_macro_f1'))} | {_fmt(get('dev_accuracy_no_images'))} "
            f"| {_fmt(get('dev_accuracy_no_texts'))} | {_fmt(get('epochs'), 1, 0)} "
            f"| {_fmt(get('fit_seconds'), 1 / 60)} | {_fmt(get('predict_posts_per_s'), 1, 0)} "
            f"| {_fmt(get('peak_rss_mb'), 1 / 1024)} "
            f"| {', '.join(sorted({r['commit'] for r in rs}))} |")
    lines += _ablation_lines(by_config)
    lines += _adjustment_lines(full, Path(results).parent / "screen.jsonl")
    lines += _ensemble_lines(by_config)
    lines += _flip_lines(by_config)
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
        "Anchors from the project guide (measured there, one run each): frozen MiniLM +",
        "EfficientNet-Lite0 features with a logistic head 71.8 % dev accuracy (text alone",
        "70.4 %, image alone 64.2 %); a plain joint fine-tune with a concat MLP head about 76 %.",
        "",
    ]
    screen = Path(results).parent / "screen.jsonl"
    if screen.is_file():
        lines += _screen_lines(screen)
    curve_configs = {r["config"] for r in runs if (r.get("fraction") or 1.0) < 1.0}
    curve = [r for r in runs if r["config"] in curve_configs]
    if curve_configs:
        import pandas as pd

        from mmsentiment.plots import plot_learning_curve

        points = pd.DataFrame([{"method": r["config"], "fraction": r.get("fraction") or 1.0,
                                "n_train": r["n_train"], "accuracy": r["dev_accuracy"],
                                "fit_seconds": r["fit_seconds"]}
                               for r in curve])
        image = table.parent / "img" / "learning_curve.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        plot_learning_curve(points).savefig(image, dpi=120, bbox_inches="tight")
        summary = points.groupby(["method", "fraction"]).agg(
            n_train=("n_train", "first"), acc=("accuracy", "mean"),
            seeds=("accuracy", "size"), fit_min=("fit_seconds", "mean")).reset_index()
        lines += [
            "## Low-resource learning curve",
            "",
            "Dev accuracy against the share of train used (stratified subsample drawn with",
            "the run's seed). Regenerate: `python benchmarks/mvsa.py --configs "
            + " ".join(sorted(curve_configs))
            + " --fractions 0.05 0.1 0.25 0.5 1.0 --seeds 0`.",
            "",
            f"![learning curve]({image.relative_to(table.parent).as_posix()})",
            "",
            "| configuration | share of train | posts | seeds | dev acc % | fit min |",
            "|---|---|---|---|---|---|",
        ] + [f"| {r.method} | {r.fraction:.0%} | {r.n_train} | {r.seeds} | {100 * r.acc:.1f} "
             f"| {r.fit_min / 60:.1f} |" for r in summary.itertuples()] + [""]
    table.write_text("\n".join(lines))


def _ablation_lines(by_config: dict[str, list[dict]]) -> list[str]:
    """The ablation table: each lever's change of mean dev accuracy, weighted and macro F1."""
    import numpy as np

    def mean(config: str, key: str) -> float:
        return 100 * float(np.mean([r[key] for r in by_config[config]]))

    rows = [(lever, base, variant, decision) for lever, base, variant, decision in ABLATIONS
            if base in by_config and variant in by_config]
    if not rows:
        return []
    lines = [
        "",
        "## Ablations",
        "",
        "Each lever as the difference between two rows of the table above (mean over each",
        "row's seeds; with one or two seeds per row, differences under about 1 point are",
        "within seed-to-seed noise).",
        "",
        "| lever | from | to | dev acc (points) | dev weighted F1 (points) "
        "| dev macro F1 (points) | decision |",
        "|---|---|---|---|---|---|---|",
    ]
    for lever, base, variant, decision in rows:
        acc = mean(variant, "dev_accuracy") - mean(base, "dev_accuracy")
        f1 = mean(variant, "dev_weighted_f1") - mean(base, "dev_weighted_f1")
        macro = mean(variant, "dev_macro_f1") - mean(base, "dev_macro_f1")
        lines.append(f"| {lever} | {base} | {variant} | {acc:+.1f} | {f1:+.1f} | {macro:+.1f} "
                     f"| {decision} |")
    return lines


def _three_scores(y, pred) -> list[float]:
    """Accuracy, weighted F1 and macro F1 of predictions ``pred`` for labels ``y``."""
    from sklearn.metrics import accuracy_score, f1_score

    return [accuracy_score(y, pred), f1_score(y, pred, average="weighted"),
            f1_score(y, pred, average="macro")]


def _mean_cell(scores) -> str:
    """The mean of `_three_scores` lists as one table cell: ``acc / wF1 / macro F1`` in %."""
    import numpy as np

    return " / ".join(f"{100 * v:.1f}" for v in np.mean(scores, axis=0))


MVSA_TRAIN_COUNTS = [1088, 376, 2147]  # negative, neutral, positive: the 3,611 train posts
ADJUSTMENTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def raw_log_proba(run: dict):
    """A run's dev log-probabilities before its logit adjustment, the classes' training
    prior, and the dev labels (indices), from the probabilities the run recorded."""
    import numpy as np

    proba = np.asarray(run["dev_proba_permille"], dtype=float) / 1000 + 1e-4
    counts = np.asarray(run.get("train_class_counts", MVSA_TRAIN_COUNTS), dtype=float)
    prior = counts / counts.sum()
    done = (run.get("params") or {}).get("logit_adjustment", 0.0)
    return np.log(proba) + done * np.log(prior), prior, np.asarray(run["dev_label_index"])


def _adjustment_lines(full: list[dict], screen: Path) -> list[str]:
    """Dev scores under each post-hoc logit adjustment, from recorded dev probabilities:
    the GPU screen's models and every CPU configuration that kept them."""
    import numpy as np
    from scipy.special import softmax

    groups: dict[str, list[dict]] = {}
    ensembles: set[str] = set()  # groups scored as one soft-voting ensemble
    if screen.is_file():
        screened = load_results(screen)
        groups["GPU lever screen, every variant"] = screened
        same = [r for r in screened if r["config"] == "tlr1e-4"]  # the defaults' rates
        if same:
            groups["GPU screen, tlr1e-4 (the defaults' learning rates)"] = same
            groups["GPU screen, tlr1e-4, its seeds as one soft-voting ensemble"] = same
            ensembles.add("GPU screen, tlr1e-4, its seeds as one soft-voting ensemble")
    for r in full:
        if "dev_proba_permille" in r:
            groups.setdefault(r["config"], []).append(r)
    if not groups:
        return []
    lines = [
        "",
        "## Post-hoc logit adjustment",
        "",
        "Prediction subtracts tau x log(training prior) from the logits "
        "(`logit_adjustment=tau`; Menon et al., *Long-tail learning via logit adjustment*, "
        "ICLR 2021). Each row re-scores the dev probabilities that fitted models recorded, "
        "so one fit gives every tau; cells are dev accuracy / weighted F1 / macro F1 %, "
        "mean over the models.",
        "",
        "| models | n | " + " | ".join(f"tau = {t:g}" for t in ADJUSTMENTS) + " |",
        "|---|---|" + "---|" * len(ADJUSTMENTS),
    ]
    for name, runs in groups.items():
        cells = []
        for tau in ADJUSTMENTS:
            scores, probas = [], []
            for run in runs:
                log_p, prior, y = raw_log_proba(run)
                adjusted = log_p - tau * np.log(prior)
                probas.append(softmax(adjusted, axis=1))
                scores.append(_three_scores(y, adjusted.argmax(axis=1)))
            if name in ensembles:
                scores = [_three_scores(y, np.mean(probas, axis=0).argmax(axis=1))]
            cells.append(_mean_cell(scores))
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return lines


def _ensemble_lines(by_config: dict[str, list[dict]]) -> list[str]:
    """Soft-voting ensembles of each configuration's seeds, from their recorded dev
    probabilities (as ``sklearn.ensemble.VotingClassifier(voting="soft")`` averages them)."""
    import itertools

    import numpy as np

    def scores(members: list[dict]) -> list[float]:
        proba = np.mean([np.asarray(r["dev_proba_permille"], float) for r in members], axis=0)
        return _three_scores(np.asarray(members[0]["dev_label_index"]), proba.argmax(axis=1))

    rows = []
    for config, runs in by_config.items():
        runs = [r for r in runs if "dev_proba_permille" in r]
        if len(runs) < 2:
            continue
        for size in range(2, len(runs) + 1):
            combos = [scores(list(c)) for c in itertools.combinations(runs, size)]
            cells = _mean_cell(combos)
            fit = sum(r["fit_seconds"] for r in runs) / len(runs) * size / 60
            rows.append(f"| {config} | {size} ({len(combos)} draw{'s' * (len(combos) > 1)}) "
                        f"| {cells} | {fit:.0f} |")
    if not rows:
        return []
    return ["", "## Seed ensembles", "",
            "The seeds of one configuration as one model: their dev probabilities averaged "
            "(`VotingClassifier(voting=\"soft\")` over estimators that differ only in "
            "`random_state`). Cells: dev accuracy / weighted F1 / macro F1 %, mean over the "
            "draws of that many seeds; fit time is the members' mean times their number.",
            "", "| configuration | seeds in the ensemble | dev acc / wF1 / macro F1 % "
            "| fit min |", "|---|---|---|---|", *rows]


def _flip_lines(by_config: dict[str, list[dict]]) -> list[str]:
    """Test-time flip: each model's dev probabilities averaged with those it gave the same
    posts with mirrored images, against its plain predictions."""
    import numpy as np

    rows = []
    for config, runs in by_config.items():
        runs = [r for r in runs if "dev_proba_flipped_permille" in r]
        if not runs:
            continue
        plain, flipped = [], []
        for r in runs:
            y = np.asarray(r["dev_label_index"])
            proba = np.asarray(r["dev_proba_permille"], float)
            mirror = np.asarray(r["dev_proba_flipped_permille"], float)
            plain.append(_three_scores(y, proba.argmax(axis=1)))
            flipped.append(_three_scores(y, (proba + mirror).argmax(axis=1)))
        cells = [_mean_cell(plain), _mean_cell(flipped)]
        change = 100 * (np.mean(flipped, axis=0)[0] - np.mean(plain, axis=0)[0])
        each = ", ".join(f"{100 * (f[0] - p[0]):+.1f}" for p, f in zip(plain, flipped))
        rows.append(f"| {config} | {len(runs)} | {cells[0]} | {cells[1]} | {change:+.1f} "
                    f"({each}) |")
    if not rows:
        return []
    return ["", "## Test-time flip", "",
            "Each fitted model predicted the dev posts twice: as they are and with every "
            "image mirrored left to right; the flip averages the two probabilities. Cells: "
            "dev accuracy / weighted F1 / macro F1 %, mean over the seeds, at the "
            "configuration's own logit adjustment.", "",
            "| configuration | seeds | as they are | with the flip | accuracy change "
            "(each seed) |", "|---|---|---|---|---|", *rows]


def _screen_lines(path: Path) -> list[str]:
    """The lever screen's section: each variant's dev scores over seeds, its change against
    the defaults, and ensembles of its seeds (mean of the dev probabilities)."""
    import itertools

    import numpy as np

    runs = load_results(path)
    if not runs:
        return []
    by_config: dict[str, list[dict]] = {}
    for r in runs:
        by_config.setdefault(r["config"], []).append(r)
    labels = np.asarray(runs[0]["dev_label_index"])

    def accuracy(members: list[dict]) -> float:
        proba = np.mean([r["dev_proba_permille"] for r in members], axis=0)
        return float(np.mean(proba.argmax(axis=1) == labels))

    def mean(config: str) -> float:
        return 100 * float(np.mean([r["dev_accuracy"] for r in by_config[config]]))

    first = runs[0]
    lines = [
        "## Lever screen on a GPU",
        "",
        "Each variant is the defaults of the time (text encoder learning rate 3e-5, as "
        "default-v2 above) with the change named, fitted with seeds "
        f"{', '.join(str(s) for s in sorted({r['seed'] for r in runs}))} on one "
        f"{first['device']} ({first['workers_sharing_device']} fits sharing it; "
        f"{', '.join(sorted({r['date'] for r in runs}))}; commits "
        f"{', '.join(sorted({r.get('commit') or '-' for r in runs}))}), in whole batches of 32 "
        "(batch-norm statistics frozen as in the defaults' micro-batches), with each image "
        "as its 224-pixel centre crop stored as a JPEG of quality 85 (the device takes 64 MiB "
        "of files). GPU fits are not repeatable bit for bit, and one variant's seeds spread "
        "by 1-2 points: a difference under about 1.5 points between two rows is noise. "
        "The ensembles average the dev probabilities of two seeds (mean over the pairs) or "
        "all three. Run with `python benchmarks/screen.py` (its docstring gives the steps), "
        "then `python benchmarks/mvsa.py --table`.",
        "",
        "| variant | change | seeds | dev acc % | dev weighted F1 % | dev macro F1 % "
        "| acc vs defaults (points) | 2-seed ensemble acc % | 3-seed ensemble acc % "
        "| fit s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config in [c for c in SCREEN if c in by_config]:
        rs = by_config[config]
        pairs = [accuracy(list(pair)) for pair in itertools.combinations(rs, 2)]
        delta = (f"{mean(config) - mean('default'):+.1f}"
                 if "default" in by_config and config != "default" else "-")
        lines.append(
            f"| **{config}** | {SCREEN[config][1]} | {len(rs)} "
            f"| {_fmt([r['dev_accuracy'] for r in rs])} "
            f"| {_fmt([r['dev_weighted_f1'] for r in rs])} "
            f"| {_fmt([r['dev_macro_f1'] for r in rs])} | {delta} "
            f"| {_fmt([float(np.mean(pairs))]) if pairs else '-'} "
            f"| {_fmt([accuracy(rs)]) if len(rs) >= 3 else '-'} "
            f"| {_fmt([r['fit_seconds'] for r in rs], 1, 0)} |")
    lines += [
        "",
        f"All {len(runs)} fitted models averaged together reach "
        f"{100 * accuracy(runs):.1f} % dev accuracy.",
        "",
    ]
    return lines
