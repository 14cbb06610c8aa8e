"""Runs of the MVSA-Single benchmark: one configuration, seed and share of train per process.

Each run (configuration x seed x share of train) runs in its own process, so that its peak
memory is its own, and appends one JSON line to a results file; ``report.py`` turns that
file into the Markdown table of docs/benchmarks.md. The test part is never read: selection
and reporting use dev only.

``python benchmarks/mvsa.py`` is the command line; this file, run as a script, is the child
process of one run: ``python benchmarks/runner.py ROOT CONFIG SEED FRACTION RESULTS``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from configs import CONFIGS

REPO = Path(__file__).resolve().parent.parent
COLUMNS = ["text", "image_path"]


def subsample(train, fraction: float, seed: int):
    """A stratified share of the training posts.

    Parameters
    ----------
    train : DataFrame
        The training posts, with a ``label`` column.
    fraction : float
        The share kept; 1.0 keeps them all.
    seed : int
        Seed of the stratified draw.

    Returns
    -------
    DataFrame
    """
    from sklearn.model_selection import train_test_split

    if fraction >= 1.0:
        return train
    part, _ = train_test_split(train, train_size=fraction, stratify=train["label"],
                               random_state=seed)
    return part


def imbalance(train, shares: dict[str, float], seed: int):
    """The training posts with some classes cut down to a given share.

    Every post of the classes not named is kept; each named class is drawn at random down
    to its share of the result (a class that has too few posts keeps them all).

    Parameters
    ----------
    train : DataFrame
        The training posts, with a ``label`` column.
    shares : dict of str to float
        The share of the result that each named class makes, e.g. ``{"neutral": 0.03}``.
    seed : int
        Seed of the draw.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> posts = pd.DataFrame({"label": ["a"] * 90 + ["b"] * 10})
    >>> imbalance(posts, {"b": 0.05}, seed=0)["label"].value_counts().to_dict()
    {'a': 90, 'b': 4}
    """
    import pandas as pd

    kept = train[~train["label"].isin(list(shares))]
    total = len(kept) / (1.0 - sum(shares.values()))
    parts = [kept] + [
        train[train["label"] == label].sample(
            n=min(int(total * share), int((train["label"] == label).sum())), random_state=seed)
        for label, share in shares.items()]
    return pd.concat(parts).sort_index()


def build_model(name: str, seed: int, checkpoint_dir: Path | None = None):
    """The estimator of one configuration.

    Parameters
    ----------
    name : str
        A key of `configs.CONFIGS`.
    seed : int
        The estimator's ``random_state``.
    checkpoint_dir : Path or None, default=None
        Where a classifier saves a checkpoint after every epoch (and resumes from).

    Returns
    -------
    MultimodalSentimentClassifier, Pipeline or VotingClassifier
        The classifier; for ``"pipeline": "logistic"`` configurations a logistic
        regression on the frozen embeddings; for ``"ensemble": n`` a soft-voting ensemble
        of ``n`` classifiers seeded ``seed``, ``seed + 1``, ...
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mmsentiment import ImageEmbedder, MultimodalSentimentClassifier, TextEmbedder

    params = {k: v for k, v in CONFIGS[name].items() if k not in ("drop", "shares")}
    if params.pop("pipeline", None) == "logistic":
        text = TextEmbedder(params.get("text_encoder", "all-MiniLM-L6-v2"), verbose=1)
        image = ImageEmbedder(params.get("image_encoder", "tf_efficientnet_lite0"), verbose=1)
        features = ColumnTransformer([("text", text, "text"), ("image", image, "image_path")])
        return make_pipeline(features, StandardScaler(),
                             LogisticRegression(C=0.05, max_iter=3000, random_state=seed))
    members = params.pop("ensemble", None)
    if members:  # seeds seed, seed + 1, ...: their probabilities averaged
        from sklearn.ensemble import VotingClassifier

        return VotingClassifier(
            [(f"seed{seed + k}", MultimodalSentimentClassifier(**params, random_state=seed + k,
                                                               verbose=1))
             for k in range(members)], voting="soft")
    return MultimodalSentimentClassifier(**params, random_state=seed, verbose=1,
                                         checkpoint_dir=checkpoint_dir)


def current_commit() -> str:
    """The repository's short commit, with ``-dirty`` where the code differs from it.

    Only the code counts: the package and the benchmark scripts, not their results.

    Returns
    -------
    str
        Empty outside a git checkout.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    dirty = commit and git("status", "--porcelain", "--", "mmsentiment", "benchmarks",
                           ":(exclude)benchmarks/results")
    return commit + ("-dirty" if dirty else "")


def checkpoint_folder(checkpoints: Path, name: str, seed: int, fraction: float) -> Path:
    """The checkpoint folder of one benchmark run.

    Parameters
    ----------
    checkpoints : Path
        The folder that holds every run's checkpoints.
    name : str
        The configuration.
    seed : int
        The run's seed.
    fraction : float
        The run's share of train.

    Returns
    -------
    Path
    """
    return Path(checkpoints) / f"{name}-seed{seed}-fraction{float(fraction):g}"


def earlier_seconds(checkpoint_dir: Path) -> float:
    """Training seconds of the epochs that an interrupted earlier run saved.

    Parameters
    ----------
    checkpoint_dir : Path
        The run's checkpoint folder.

    Returns
    -------
    float
        The sum of the saved epochs' durations; 0 where there is no unfinished run to
        resume.
    """
    stamp, history = checkpoint_dir / "fit.json", checkpoint_dir / "history.json"
    if not (stamp.is_file() and history.is_file()):
        return 0.0
    if json.loads(stamp.read_text()).get("finished"):
        return 0.0
    return float(sum(epoch.get("dur", 0.0) for epoch in json.loads(history.read_text())))


def mirrored(X, folder: Path):
    """``X`` with each image replaced by its mirror image (upright as EXIF says, mirrored
    left to right, saved as PNG in ``folder``)."""
    from PIL import Image, ImageOps

    paths = []
    for i, path in enumerate(X["image_path"]):
        with Image.open(path) as img:
            flipped = ImageOps.mirror(ImageOps.exif_transpose(img).convert("RGB"))
        paths.append(str(folder / f"{i}.png"))
        flipped.save(paths[-1])
    return X.assign(image_path=paths)


def run_one(name: str, seed: int, root: Path, fraction: float = 1.0,
            checkpoints: Path | None = None) -> dict:
    """Fit one configuration on a share of train and measure it on dev.

    With ``checkpoints``, a fine-tuned model saves a checkpoint after every epoch in a folder
    of its own there: a run that is stopped (a session's end, Ctrl-C) resumes from its last
    epoch when started again, and its fit time adds the earlier run's epochs.

    Parameters
    ----------
    name : str
        A key of `configs.CONFIGS`.
    seed : int
        Seed of the subsample and of the estimator.
    root : Path
        The MVSA_Single folder.
    fraction : float, default=1.0
        Share of train to fit on.
    checkpoints : Path or None, default=None
        Folder of the runs' checkpoint folders.

    Returns
    -------
    dict
        One line of the results file: dev scores, times, memory, machine, commit.
    """
    import numpy as np
    import torch
    from sklearn.metrics import accuracy_score, f1_score

    from mmsentiment import load_mvsa

    drop = CONFIGS[name].get("drop")
    train = subsample(load_mvsa(root, "train"), fraction, seed)
    if "shares" in CONFIGS[name]:
        train = imbalance(train, CONFIGS[name]["shares"], seed)
    dev = load_mvsa(root, "dev")
    X_train, X_dev = train[COLUMNS], dev[COLUMNS]
    if drop is not None:
        X_train, X_dev = X_train.assign(**{drop: None}), X_dev.assign(**{drop: None})
    folder = None
    fine_tuned = not {"pipeline", "ensemble"} & set(CONFIGS[name]) and \
        CONFIGS[name].get("finetune") != "frozen"
    if checkpoints is not None and fine_tuned:  # frozen fits take minutes: no checkpoints
        folder = checkpoint_folder(checkpoints, name, seed, fraction)
    model = build_model(name, seed, folder)
    torch.manual_seed(seed)
    earlier = earlier_seconds(folder) if folder is not None else 0.0
    start = time.perf_counter()
    model.fit(X_train, train["label"])
    fit_s = time.perf_counter() - start + earlier
    start = time.perf_counter()
    proba = model.predict_proba(X_dev)
    predict_s = time.perf_counter() - start
    classes = list(model.classes_)
    pred = np.asarray(classes)[proba.argmax(axis=1)]
    y = dev["label"]
    result = {
        "config": name, "seed": seed, "fraction": fraction, "n_train": len(train),
        "commit": current_commit(),
        "dev_accuracy": accuracy_score(y, pred),
        "dev_weighted_f1": f1_score(y, pred, average="weighted"),
        "dev_macro_f1": f1_score(y, pred, average="macro"),
        "fit_seconds": fit_s,
        # For post-hoc analyses (prior correction, ensembles) without refitting.
        "classes": classes,
        "train_class_counts": [int((train["label"] == c).sum()) for c in classes],
        "dev_label_index": [classes.index(label) for label in y],
        "dev_proba_permille": np.rint(1000 * proba).astype(int).tolist(),
        "predict_posts_per_s": len(dev) / predict_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads "
                   f"{torch.get_num_threads()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    if earlier:
        result["resumed"] = True
    if hasattr(model, "history_"):
        result["epochs"] = len(model.history_)
        result["params"] = {k: v for k, v in model.get_params().items()
                            if isinstance(v, (int, float, str, dict))}
    if drop is None:
        # Test-time flip, measured without refitting: the dev posts with mirrored images.
        with tempfile.TemporaryDirectory(prefix="mvsa-mirrored-") as folder:
            flipped = model.predict_proba(mirrored(X_dev, Path(folder)))
        result["dev_proba_flipped_permille"] = np.rint(1000 * flipped).astype(int).tolist()
        # Missing modalities: the same model with every dev image removed, then every text.
        result["dev_accuracy_no_images"] = accuracy_score(
            y, model.predict(X_dev.assign(image_path=None)))
        result["dev_accuracy_no_texts"] = accuracy_score(
            y, model.predict(X_dev.assign(text=None)))
    return result


def run_benchmark(root, configs: list[str], seeds: list[int], fractions: list[float],
                  results) -> None:
    """Run every (configuration, share of train, seed), each in a child process.

    Parameters
    ----------
    root : str or Path
        The MVSA_Single folder.
    configs : list of str
        Keys of `configs.CONFIGS`.
    seeds : list of int
        Seeds of each configuration.
    fractions : list of float
        Shares of train (a learning curve).
    results : str or Path
        JSON Lines file each run appends its result to.

    Raises
    ------
    ValueError
        For an unknown configuration.
    FileNotFoundError
        Where ``root`` does not hold MVSA-Single.
    subprocess.CalledProcessError
        When a run fails.
    """
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; known: {sorted(CONFIGS)}")
    if configs and not (Path(root) / "labelResultAll.txt").is_file():
        raise FileNotFoundError(f"MVSA-Single not found at {root}")
    for name in configs:
        for fraction in fractions:
            for seed in seeds:
                subprocess.run([sys.executable, str(Path(__file__).resolve()), str(root), name,
                                str(seed), str(fraction), str(results)], check=True)


def _child(argv: list[str]) -> None:
    """One run, as the child process of `run_benchmark`: fit, append the result, clean up."""
    root, name, seed, fraction, results = argv
    checkpoints = Path(results).parent / "checkpoints"
    result = run_one(name, int(seed), Path(root), float(fraction), checkpoints)
    Path(results).parent.mkdir(parents=True, exist_ok=True)
    with open(results, "a") as fh:
        fh.write(json.dumps(result) + "\n")
    folder = checkpoint_folder(checkpoints, name, int(seed), float(fraction))
    if folder.is_dir():  # the run is recorded: its checkpoint is no longer needed
        shutil.rmtree(folder)
    print(json.dumps(result, indent=1), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1:])
