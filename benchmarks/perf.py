"""Speed and memory of the data path and the feature cache, as ratios from one run.

    python benchmarks/perf.py [--root ../shared/data/MVSA_Single]

Measures on MVSA-Single train (and dev for prediction), in one process, one after another:

1. encoding the data once with each encoder (2 text x 2 image encoders, no cache), against
   a GridSearchCV over the same 2 x 2 encoders with 3 folds and frozen encoders, starting
   from an empty feature cache. Target: grid / once <= 1.3.
2. predict throughput (posts/s) of a fitted model, without a cache, against the bare
   encoders' forward throughput on the same posts and batch size (images decoded and texts
   tokenized beforehand). Target: predict / bare >= 0.8.
3. one training epoch of partial fine-tuning (``finetune="top"``) against one epoch of full
   joint fine-tuning on the same posts. Target: top / full <= 0.25.

Writes docs/performance.md. Absolute times are context only; they depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "MVSA_Single"
TEXT_ENCODERS = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]
IMAGE_ENCODERS = ["tf_efficientnet_lite0", "tf_efficientnet_lite2"]
BATCH = 64


def encode_text_once(name: str, texts: list[str]) -> float:
    from mmsentiment.encoders import TextEncoder

    start = time.perf_counter()
    enc = TextEncoder(name).eval()
    with torch.inference_mode():
        for i in range(0, len(texts), BATCH):
            enc(**enc.tokenize(texts[i:i + BATCH]))
    return time.perf_counter() - start


def encode_images_once(name: str, paths: list[str]) -> float:
    from mmsentiment.data import load_images
    from mmsentiment.encoders import ImageEncoder

    start = time.perf_counter()
    enc = ImageEncoder(name).eval()
    pixels, _, _ = load_images(paths, enc.preprocessing)
    with torch.inference_mode():
        for i in range(0, len(paths), BATCH):
            enc(pixels[i:i + BATCH])
    return time.perf_counter() - start


def bare_forward(clf, texts: list[str], paths: list[str]) -> float:
    """Seconds for the fitted model's own encoders on pre-decoded, pre-tokenized batches."""
    from mmsentiment.data import load_images

    module = clf.net_.module_
    pixels, _, _ = load_images(paths, module.image_encoder.preprocessing)
    batches = [module.text_encoder.tokenize(texts[i:i + clf.batch_size])
               for i in range(0, len(texts), clf.batch_size)]
    start = time.perf_counter()
    with torch.inference_mode():
        for b, i in zip(batches, range(0, len(texts), clf.batch_size)):
            module.text_encoder(**b)
            module.image_encoder(pixels[i:i + clf.batch_size])
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--limit", type=int, help="use only the first N posts (smoke test)")
    parser.add_argument("--epoch-posts", type=int, default=320,
                        help="train posts for the epoch-time comparison")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "performance.md")
    args = parser.parse_args()
    if not (args.root / "labelResultAll.txt").is_file():
        print(f"MVSA-Single not found at {args.root}; pass --root.", file=sys.stderr)
        return 2
    from sklearn.model_selection import GridSearchCV

    from mmsentiment import MultimodalSentimentClassifier, load_mvsa

    train, dev = load_mvsa(args.root, "train"), load_mvsa(args.root, "dev")
    if args.limit:
        train, dev = train.iloc[:args.limit], dev.iloc[:args.limit]
    cols = ["text", "image_path"]
    texts, paths = train["text"].tolist(), train["image_path"].tolist()
    # Load every encoder's weights once first, so that neither side pays first-load costs.
    from mmsentiment.encoders import ImageEncoder, TextEncoder
    for name in TEXT_ENCODERS:
        TextEncoder(name)
    for name in IMAGE_ENCODERS:
        ImageEncoder(name)

    once = {name: encode_text_once(name, texts) for name in TEXT_ENCODERS}
    once |= {name: encode_images_once(name, paths) for name in IMAGE_ENCODERS}
    t_once = sum(once.values())
    print("encode once:", {k: round(v, 1) for k, v in once.items()}, flush=True)

    with tempfile.TemporaryDirectory() as cache:
        search = GridSearchCV(
            MultimodalSentimentClassifier(finetune="frozen", max_epochs=10, random_state=0,
                                          cache_dir=cache),
            {"text_encoder": TEXT_ENCODERS, "image_encoder": IMAGE_ENCODERS}, cv=3)
        start = time.perf_counter()
        search.fit(train[cols], train["label"])
        t_grid = time.perf_counter() - start
    print(f"grid search {t_grid:.1f} s, ratio {t_grid / t_once:.2f}", flush=True)

    dev_texts, dev_paths = dev["text"].tolist(), dev["image_path"].tolist()
    rows = []
    for finetune in ("frozen", "full"):
        clf = MultimodalSentimentClassifier(finetune=finetune, max_epochs=1, batch_size=32,
                                            validation_fraction=None, cache_dir=None,
                                            random_state=0)
        clf.fit(train[cols].iloc[:64], train["label"].iloc[:64])
        start = time.perf_counter()
        clf.predict_proba(dev[cols])
        t_predict = time.perf_counter() - start
        t_bare = bare_forward(clf, dev_texts, dev_paths)
        rows.append((finetune, len(dev) / t_predict, len(dev) / t_bare))
        print(f"predict ({finetune}) {len(dev) / t_predict:.1f} posts/s, bare encoders "
              f"{len(dev) / t_bare:.1f} posts/s", flush=True)

    epoch_rows = []
    subset = train.iloc[:args.epoch_posts]
    for finetune in ("full", "top"):
        clf = MultimodalSentimentClassifier(finetune=finetune, max_epochs=1, batch_size=32,
                                            validation_fraction=None, random_state=0)
        start = time.perf_counter()
        clf.fit(subset[cols], subset["label"])
        total = time.perf_counter() - start
        epoch = clf.history_[-1, "dur"]
        epoch_rows.append((finetune, epoch, total - epoch))
        print(f"epoch ({finetune}) {epoch:.1f} s, setup {total - epoch:.1f} s", flush=True)
    epoch_ratio = epoch_rows[1][1] / epoch_rows[0][1]

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "# Performance",
        "",
        "Measured by `python benchmarks/perf.py` on "
        f"{platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, no GPU ({time.strftime('%Y-%m-%d')}), on MVSA-Single "
        f"train ({len(train)} posts) and dev ({len(dev)} posts). Figures that are targets are "
        "ratios from this one run; absolute times are context.",
        "",
        "## Grid search over encoders with the feature cache",
        "",
        "GridSearchCV over 2 text encoders x 2 image encoders, 3 folds, frozen encoders "
        "(`finetune=\"frozen\"`, `max_epochs=10`), starting from an empty cache, against "
        "encoding the training posts once with each of the four encoders (no cache):",
        "",
        "| encoder | encode once (s) |",
        "|---|---|",
    ] + [f"| {k} | {v:.1f} |" for k, v in once.items()] + [
        f"| **all four** | **{t_once:.1f}** |",
        "",
        f"Grid search (12 fits + 12 scorings + refit): **{t_grid:.1f} s**, i.e. "
        f"**{t_grid / t_once:.2f} x** encoding once (target: at most 1.3 x).",
        "",
        "## Prediction throughput",
        "",
        "`predict_proba` on the dev posts (JPEG decoding, tokenization, both encoders, head; "
        "no cache) against the same model's bare encoders on the same posts and batch size "
        "(32) with images already decoded and texts already tokenized:",
        "",
        "| model | predict (posts/s) | bare encoders (posts/s) | ratio (target >= 0.8) |",
        "|---|---|---|---|",
    ] + [f"| finetune=\"{f}\" | {p:.1f} | {b:.1f} | {p / b:.2f} |" for f, p, b in rows] + [
        "",
        "## Partial fine-tuning",
        "",
        f"One training epoch on {len(subset)} train posts (batch 32), full joint fine-tuning "
        "against `finetune=\"top\"` (top 2 MiniLM layers, top 2 EfficientNet-Lite0 block "
        "stages and head convolution; the image encoder's lower part runs once per fit, on "
        "each image and its mirror image). Setup = the rest of `fit`: loading encoders, "
        "decoding images and, for top, the lower image layers.",
        "",
        "| finetune | epoch (s) | setup (s) |",
        "|---|---|---|",
    ] + [f"| \"{f}\" | {e:.1f} | {s_:.1f} |" for f, e, s_ in epoch_rows] + [
        "",
        f"Epoch ratio top / full: **{epoch_ratio:.2f}** (target: at most 0.25).",
        "",
        f"Peak resident memory of this benchmark process: {peak / 1024:.2f} GB.",
        "",
        "Dev accuracy of partial against full fine-tuning, and the peak memory of whole MVSA "
        "fits, are in [benchmarks.md](benchmarks.md).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
