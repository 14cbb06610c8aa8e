"""WeightAveraging: the exponential moving average of the weights, validated and kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from mmsentiment import WeightAveraging


class Recorder(Callback):
    """Snapshots of the weights after each training step and at each epoch's first batches."""

    def on_train_begin(self, net, **kwargs):
        self.steps, self.first_train, self.first_valid = [], [], []
        self._seen = set()

    def on_epoch_begin(self, net, **kwargs):
        self._seen = set()

    def on_batch_begin(self, net, training=False, **kwargs):
        if training not in self._seen:
            self._seen.add(training)
            (self.first_train if training else self.first_valid).append(weights(net))

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.steps.append(weights(net))


def weights(net) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in net.module_.parameters()])


def expected_average(start: torch.Tensor, steps: list[torch.Tensor], decay: float):
    average = start.clone()
    for t, w in enumerate(steps):
        d = min(decay, t / (t + 1))
        average = average + (1 - d) * (w - average)
    return average


class Interrupt(Callback):
    """Ctrl-C after a given number of training steps."""

    def __init__(self, after: int) -> None:
        self.after = after

    def on_train_begin(self, net, **kwargs):
        self.steps = 0

    def on_batch_end(self, net, training=False, **kwargs):
        self.steps += training
        if self.steps == self.after:
            raise KeyboardInterrupt


def make_net(decay: float, valid: bool, epochs: int = 3, module=None, extra=()):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=64) > 0).astype(np.int64)
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        module if module is not None else torch.nn.Linear(5, 2),
        criterion=torch.nn.CrossEntropyLoss, lr=0.5, batch_size=8,
        max_epochs=epochs, optimizer=torch.optim.SGD, verbose=0, iterator_train__shuffle=False,
        train_split=predefined_split(Dataset(X[:16], y[:16])) if valid else None,
        callbacks=[("average", WeightAveraging(decay)), ("recorder", Recorder()), *extra])
    return net, X, y


def fit_recorded(net, X, y):
    """Fit ``net``; its weights before the fit and its `Recorder`."""
    net.initialize()
    start = weights(net)
    net.partial_fit(X, y)  # skorch ends the fit quietly on a KeyboardInterrupt
    return start, dict(net.callbacks_)["recorder"]


def test_without_a_hold_out_the_fit_ends_with_the_moving_average():
    net, X, y = make_net(0.9, valid=False)
    start, recorder = fit_recorded(net, X, y)
    assert len(recorder.steps) == 3 * 8
    average = expected_average(start, recorder.steps, 0.9)
    assert torch.allclose(weights(net), average, atol=1e-6)
    assert not torch.allclose(weights(net), recorder.steps[-1], atol=1e-3)  # not the latest
    assert dict(net.callbacks_)["average"].average_ is None  # released: not pickled


@pytest.mark.parametrize("valid", [False, True])
def test_ctrl_c_while_training_leaves_the_average_of_the_steps_done(valid):
    net, X, y = make_net(0.9, valid=valid, extra=[("stop", Interrupt(after=13))])
    start, recorder = fit_recorded(net, X, y)
    assert len(recorder.steps) == 13  # in the second epoch
    assert torch.allclose(weights(net), expected_average(start, recorder.steps, 0.9),
                          atol=1e-6)


def test_frozen_parameters_are_left_alone():
    module = torch.nn.Sequential(torch.nn.Linear(5, 5), torch.nn.Linear(5, 2))
    module[0].requires_grad_(False)
    net, X, y = make_net(0.9, valid=False, module=module)
    net.initialize()
    frozen = net.module_[0].weight.detach().clone()
    start = torch.cat([p.detach().flatten() for p in net.module_[1].parameters()])
    net.partial_fit(X, y)
    assert torch.equal(net.module_[0].weight, frozen)
    steps = [w[-12:] for w in dict(net.callbacks_)["recorder"].steps]  # the second layer's
    assert torch.allclose(weights(net)[-12:], expected_average(start, steps, 0.9), atol=1e-6)


def test_validation_scores_the_average_and_training_goes_on_from_the_latest_weights():
    net, X, y = make_net(0.9, valid=True)
    start, recorder = fit_recorded(net, X, y)
    per_epoch = len(recorder.steps) // 3  # 64 training rows in batches of 8
    assert per_epoch == 8
    for epoch in range(3):
        done = recorder.steps[:(epoch + 1) * per_epoch]
        assert torch.allclose(recorder.first_valid[epoch],
                              expected_average(start, done, 0.9), atol=1e-6)
        if epoch:  # the next epoch starts from the weights of the last step, not the average
            assert torch.equal(recorder.first_train[epoch], done[-per_epoch - 1])
    assert torch.allclose(weights(net), recorder.first_valid[-1], atol=1e-6)
    # the recorded validation loss is the average's
    with torch.no_grad():
        logits = net.module_(torch.as_tensor(X[:16]))
        loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y[:16]))
    assert net.history[-1, "valid_loss"] == pytest.approx(loss.item(), rel=1e-5)


def test_decay_zero_keeps_the_latest_weights_and_bad_decays_are_refused():
    net, X, y = make_net(0.0, valid=False, epochs=1)
    net.fit(X, y)
    assert torch.equal(weights(net), dict(net.callbacks_)["recorder"].steps[-1])
    for decay in (1.0, -0.1):
        net, X, y = make_net(decay, valid=False, epochs=1)
        with pytest.raises(ValueError, match="decay must be in"):
            net.fit(X, y)
