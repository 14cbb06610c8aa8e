"""Learning-rate schedules: warm-up shape, decay, and resuming at the right batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Checkpoint

from mmsentiment.training import BatchLRScheduler, WarmupCosine, WarmupExponential
from mmsentiment.training.schedules import make_schedule


def test_warm_up_equals_torch_linear_lr():
    warmup = 5
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / (warmup + 1),
                                               total_iters=warmup)
    torch_factors = []
    for _ in range(warmup):
        torch_factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        linear.step()
    ours = WarmupCosine(total_steps=100, warmup_steps=warmup)
    assert [ours(s) for s in range(warmup)] == pytest.approx(torch_factors)


def test_decays():
    cosine = WarmupCosine(total_steps=20, warmup_steps=0)
    assert cosine(0) == 1.0 and cosine(10) == pytest.approx(0.5) and cosine(20) == 0.0
    exponential = WarmupExponential(steps_per_epoch=4, warmup_steps=2, gamma=0.5)
    assert [exponential(s) for s in (0, 1, 2, 4, 8)] == pytest.approx(
        [1 / 3, 2 / 3, 1.0, 0.5, 0.25])
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        make_schedule("step", 4, 2, 0.1)


def _net(tmp_path, epochs):
    return NeuralNetClassifier(
        torch.nn.Linear(3, 2), max_epochs=epochs, batch_size=4, lr=0.1, train_split=None,
        optimizer=torch.optim.SGD,
        callbacks=[("lr", BatchLRScheduler(policy=torch.optim.lr_scheduler.LambdaLR,
                                           step_every="batch",
                                           lr_lambda=WarmupCosine(30, 3))),
                   ("ckpt", Checkpoint(monitor=None, dirname=str(tmp_path),
                                       load_best=False))])


def test_a_resumed_fit_continues_the_schedule_at_its_batch(tmp_path):
    X = np.random.default_rng(0).normal(size=(12, 3)).astype("float32")
    y = np.array([0, 1] * 6)
    torch.manual_seed(0)
    whole = _net(tmp_path / "a", 3).fit(X, y)
    expected = [b["event_lr"] for epoch in whole.history for b in epoch["batches"]]
    torch.manual_seed(0)
    _net(tmp_path / "b", 1).fit(X, y)  # stopped after one epoch
    resumed = _net(tmp_path / "b", 3).initialize()
    resumed.load_params(checkpoint=dict(resumed.callbacks_)["ckpt"])
    resumed.partial_fit(X, y, epochs=2)
    got = [b["event_lr"] for epoch in resumed.history for b in epoch["batches"]]
    assert got == pytest.approx(expected)
    assert expected[3] > expected[2]  # the warm-up ended inside the first epoch
