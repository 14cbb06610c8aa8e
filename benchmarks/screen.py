"""Lever screen on MVSA-Single: many short variants of the defaults, in parallel, on a GPU.

Each variant (``SCREEN`` in benchmarks/configs.py) is the default classifier with one or two
parameters changed, fitted on train with each seed and measured on dev; the dev
probabilities are kept so that benchmarks/report.py can also score small ensembles
(the mean probability of two or three seeds of one variant). It is meant for a GPU, where a
fit takes about a minute: several worker processes share the card.

    # on a machine that has the data: crop every train and dev image once
    python benchmarks/screen.py --make-bundle benchmarks/results/screen_bundle
    # where the fits run (a GPU; the bundle is small enough to copy there)
    python benchmarks/screen.py --bundle benchmarks/results/screen_bundle --workers 6 \
        --deadline 490
    python benchmarks/mvsa.py --table        # adds the screen's section to docs/benchmarks.md

The bundle holds each image's 224-pixel centre crop (what EfficientNet-Lite0 sees) as a
JPEG of quality 85 and a CSV of the posts; it exists because the device machine used here
takes at most 64 MiB of files and cannot read the dataset. Without ``--bundle`` the runs read
MVSA-Single from ``--root`` directly. Results are appended to benchmarks/results/screen.jsonl.
The test part is never read.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "screen.jsonl"
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "MVSA_Single"
CROP, PAD = 224, 256  # EfficientNet-Lite0: shorter side to 256, centre 224 square


def make_bundle(root: Path, folder: Path, quality: int = 85) -> None:
    """Write the train and dev posts of ``root`` as ``mvsa.csv`` and ``img/ID.jpg`` crops."""
    import pandas as pd
    from PIL import Image

    from mmsentiment import load_mvsa
    from mmsentiment.encoders import ImageEncoder
    from mmsentiment.inputs.images import load_image

    prep = ImageEncoder("tf_efficientnet_lite0").preprocessing
    (folder / "img").mkdir(parents=True, exist_ok=True)
    posts = pd.concat([load_mvsa(root, split).assign(split=split)
                       for split in ("train", "dev")], ignore_index=True)
    for row in posts.itertuples():
        crop = load_image(row.image_path, prep).transpose(1, 2, 0)
        Image.fromarray(crop).save(folder / "img" / f"{row.id}.jpg", quality=quality)
    posts["image_file"] = [f"{i}.jpg" for i in posts["id"]]
    posts.drop(columns=["image_path"]).to_csv(folder / "mvsa.csv", index=False)


def unpack_bundle(folder: Path, images: Path) -> None:
    """Centre each crop on a grey 256-pixel square (PNG), so that the package's own
    preprocessing (shorter side to 256, centre 224 square) gives back exactly the crop."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    images.mkdir(parents=True, exist_ok=True)

    def pad(name: str) -> None:
        canvas = Image.new("RGB", (PAD, PAD), (128, 128, 128))
        canvas.paste(Image.open(folder / "img" / name).convert("RGB"),
                     ((PAD - CROP) // 2, (PAD - CROP) // 2))
        canvas.save(images / name.replace(".jpg", ".png"))

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(pad, sorted(os.listdir(folder / "img"))))


def load_posts(root: Path, bundle: Path | None, images: Path):
    """Train and dev posts with their per-modality labels, from the dataset or a bundle."""
    import pandas as pd

    if bundle is None:
        from mmsentiment import load_mvsa

        return load_mvsa(root, "train"), load_mvsa(root, "dev")
    posts = pd.read_csv(bundle / "mvsa.csv", keep_default_na=False)
    posts["image_path"] = [str(images / f.replace(".jpg", ".png")) for f in posts.image_file]
    return posts[posts.split == "train"], posts[posts.split == "dev"]


def screen_one(name: str, seed: int, root: Path, bundle: Path | None, images: Path,
               device: str) -> dict:
    """Fit variant ``name`` with ``seed``; dev scores and per-mille dev probabilities."""
    import numpy as np
    import torch
    from configs import SCREEN, screen_params
    from runner import current_commit
    from sklearn.metrics import accuracy_score, f1_score

    from mmsentiment import MultimodalSentimentClassifier

    torch.set_num_threads(3)
    train, dev = load_posts(root, bundle, images)
    params, auxiliary = screen_params(name, device)
    clf = MultimodalSentimentClassifier(**params, random_state=seed)
    labels = ({"text_labels": train.text_label.to_numpy(),
               "image_labels": train.image_label.to_numpy()} if auxiliary else {})
    torch.manual_seed(seed)
    start = time.perf_counter()
    clf.fit(train[["text", "image_path"]], train["label"].to_numpy(), **labels)
    fit_s = time.perf_counter() - start
    proba = clf.predict_proba(dev[["text", "image_path"]])
    pred, y = clf.classes_[proba.argmax(axis=1)], dev["label"].to_numpy()
    # The adjustment applied to the recorded probabilities, which the report undoes.
    return {"config": name, "seed": seed,
            "params": {**SCREEN[name][0], "logit_adjustment": clf.logit_adjustment},
            "dev_accuracy": accuracy_score(y, pred),
            "dev_weighted_f1": f1_score(y, pred, average="weighted"),
            "dev_macro_f1": f1_score(y, pred, average="macro"),
            "fit_seconds": fit_s, "epochs": len(clf.history_),
            "device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
            "workers_sharing_device": int(os.environ.get("SCREEN_WORKERS", "1")),
            "date": time.strftime("%Y-%m-%d"), "commit": current_commit(),
            "classes": clf.classes_.tolist(), "dev_ids": dev["id"].astype(str).tolist(),
            "dev_label_index": np.searchsorted(clf.classes_, y).tolist(),
            "dev_proba_permille": np.rint(1000 * proba).astype(int).tolist()}


def main() -> int:
    from configs import SCREEN

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--make-bundle", type=Path, help="write a bundle here and stop")
    parser.add_argument("--bundle", type=Path, help="read the posts from this bundle")
    parser.add_argument("--images", type=Path, default=HERE / "results" / "screen_images",
                        help="where the bundle's crops are unpacked (not versioned)")
    parser.add_argument("--configs", nargs="*", default=list(SCREEN), choices=list(SCREEN))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds after which no result is waited for")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.make_bundle:
        make_bundle(args.root, args.make_bundle)
        return 0
    if args.bundle is not None:
        unpack_bundle(args.bundle, args.images)
    elif not (args.root / "labelResultAll.txt").is_file():
        print(f"MVSA-Single not found at {args.root}; pass --root or --bundle.", file=sys.stderr)
        return 2
    os.environ["SCREEN_WORKERS"] = str(args.workers)
    start = time.time()
    # Seed-major order: every variant gets its first seed before any gets its second.
    tasks = [(name, seed) for seed in args.seeds for name in args.configs]
    pool = ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"))
    futures = {pool.submit(screen_one, name, seed, args.root, args.bundle, args.images,
                           args.device): (name, seed) for name, seed in tasks}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    left = None if args.deadline is None else max(1.0, args.deadline - (time.time() - start))
    failed = 0
    with open(args.results, "a") as out:
        try:
            for future in as_completed(futures, timeout=left):
                name, seed = futures[future]
                if future.exception() is not None:
                    failed += 1
                    print(f"{name} seed {seed} failed: {future.exception()!r}", flush=True)
                    continue
                result = future.result()
                out.write(json.dumps(result) + "\n")
                out.flush()
                print(f"{time.time() - start:5.0f}s {name:14s} seed {seed} "
                      f"acc {result['dev_accuracy']:.4f} "
                      f"wF1 {result['dev_weighted_f1']:.4f} fit {result['fit_seconds']:.0f}s",
                      flush=True)
        except TimeoutError:
            print("deadline reached; unfinished runs are dropped", flush=True)
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list(pool._processes.values()):
                process.kill()
            return 1
    pool.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
