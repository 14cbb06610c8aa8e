"""device="accelerate": data-parallel training through Hugging Face accelerate.

The multi-process test starts the real example under torchrun with two CPU processes that
talk over gloo on loopback, exactly as a user without GPUs would run it.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from mmsentiment import MultimodalSentimentClassifier

pytest.importorskip("accelerate", reason="device='accelerate' needs accelerate installed")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "multi_gpu_accelerate.py"
LINE = re.compile(r"process (\d) of (\d) on (\S+): (\d+) training batches per epoch, "
                  r"weights (\w+), validation accuracy ([\d.]+), "
                  r"accuracy on the demo set ([\d.]+)")


def test_two_processes_share_the_batches_and_end_with_the_same_weights(demo, tmp_path):
    X, y = demo
    out = tmp_path / "model.joblib"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if torch.cuda.device_count() < 2:  # two processes cannot share one GPU through NCCL
        env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
         "2", str(EXAMPLE), "--epochs", "1", "--batch-size", "16", "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = sorted(LINE.findall(done.stdout))
    assert [(rank, world) for rank, world, *_ in lines] == [("0", "2"), ("1", "2")]
    # The default 10 % validation split leaves 145 of the 162 demo posts for training:
    # 10 batches of 16, of which each process takes every second one.
    n_train = len(y) - math.ceil(0.1 * len(y))
    per_process = math.ceil(math.ceil(n_train / 16) / 2)
    assert {int(batches) for *_, batches, _, _, _ in lines} == {per_process}
    # Gradients were averaged every step, so both processes hold the same weights and
    # score the same on all rows; without a random_state, the main process's seed chose
    # the one validation split that both processes scored.
    assert len({digest for *_, digest, _, _ in lines}) == 1
    assert len({valid for *_, valid, _ in lines}) == 1
    assert len({acc for *_, acc in lines}) == 1
    model = joblib.load(out)
    proba = model.predict_proba(X[:8])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert model.score(X, y) == pytest.approx(float(lines[0][-1]), abs=1e-3)


def test_single_process_accelerate_fit_pickles_and_predicts(small, tmp_path):
    X, y = small
    clf = MultimodalSentimentClassifier(device="accelerate", finetune="top", max_epochs=1,
                                        batch_size=12, validation_fraction=None,
                                        random_state=0).fit(X, y)
    assert type(clf.net_).__name__ == "SentimentNet"  # the accelerated net is unwrapped
    assert clf.history_[-1, "train_batch_count"] == math.ceil(len(y) / 12)
    joblib.dump(clf, tmp_path / "m.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "m.joblib").predict_proba(X),
                               clf.predict_proba(X), atol=1e-6)


def test_checkpoints_are_refused_under_accelerate(small, tmp_path):
    X, y = small
    clf = MultimodalSentimentClassifier(device="accelerate", finetune="frozen",
                                        checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        clf.fit(X, y)
