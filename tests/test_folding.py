"""Batch norm folded into convolutions for inference, and prediction in text-length order."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from mmsentiment import MultimodalSentimentClassifier
from mmsentiment.encoders import ImageEncoder
from mmsentiment.encoders.folding import FoldedCache, fold_batch_norm


def _with_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` in evaluation mode with non-trivial batch-norm statistics and weights."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen))
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.weight.data.copy_(torch.randn(module.num_features, generator=gen))
            module.bias.data.copy_(torch.randn(module.num_features, generator=gen))
    return model.eval()


def test_fold_matches_the_model_and_removes_the_norms():
    net = _with_statistics(nn.Sequential(
        nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, groups=8), nn.BatchNorm2d(8), nn.Flatten()))
    x = torch.randn(4, 3, 12, 12)
    folded = fold_batch_norm(net, x)
    assert folded is not net
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-5)
    # the original is untouched
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 2


class _NormFirst(nn.Module):
    """Registers a convolution, then a norm that runs *before* it: adjacency lies."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.conv(self.bn(x))


def test_a_fold_that_would_change_the_outputs_is_refused():
    net = _with_statistics(_NormFirst())
    assert fold_batch_norm(net, torch.randn(2, 4, 5, 5)) is net


def test_norms_in_training_mode_are_not_folded():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    assert fold_batch_norm(net, torch.randn(2, 3, 6, 6)) is net


def test_the_cache_rebuilds_after_the_weights_change():
    net = _with_statistics(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    x = torch.randn(2, 3, 6, 6)
    cache, probes = FoldedCache(), []

    def probe():
        probes.append(1)
        return x

    first = cache.get(net, probe)
    assert cache.get(net, probe) is first and len(probes) == 1
    with torch.no_grad():
        net[0].weight.mul_(-1)
    second = cache.get(net, probe)
    assert second is not first and len(probes) == 2
    with torch.no_grad():
        torch.testing.assert_close(second(x), net(x), atol=1e-5, rtol=1e-5)
    net.load_state_dict(copy.deepcopy(net.state_dict()))  # new tensors: a new fold
    assert cache.get(net, probe) is not second


@pytest.fixture(scope="module")
def lite0():
    return ImageEncoder("tf_efficientnet_lite0").eval()


def test_image_encoder_inference_is_folded_and_equal(lite0):
    pixels = torch.randint(0, 256, (3, 3, 224, 224), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    state = torch.get_rng_state()
    with torch.no_grad():
        folded = lite0(pixels)
        trunk = lite0._trunk()
    assert torch.equal(torch.get_rng_state(), state)  # the probe draws from its own generator
    assert trunk is not lite0.model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in trunk.modules())
    eager = lite0(pixels)  # gradients on: the encoder's own modules
    torch.testing.assert_close(folded, eager.detach(), atol=1e-4, rtol=1e-4)
    # lower and upper run the folded copy too and still compose to forward
    with torch.no_grad():
        torch.testing.assert_close(lite0.upper(lite0.lower(pixels)), folded,
                                   atol=1e-4, rtol=1e-4)


def test_the_folded_copy_is_not_pickled(lite0):
    with torch.no_grad():
        lite0(torch.zeros(1, 3, 224, 224, dtype=torch.uint8))
    assert lite0._folded._model is not None
    restored = pickle.loads(pickle.dumps(lite0))
    assert restored._folded._model is None
    assert copy.deepcopy(lite0)._folded._model is None
    size = len(pickle.dumps(lite0))
    assert size < 1.2 * sum(t.numel() * t.element_size() for t in lite0.state_dict().values())


def test_prediction_in_length_order_keeps_the_rows_order(small):
    X, y = small
    clf = MultimodalSentimentClassifier(max_epochs=1, batch_size=8, precision="32",
                                        validation_fraction=None, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    # each post alone: no padding, no other order
    alone = np.vstack([clf.predict_proba(X.iloc[[i]]) for i in range(0, len(X), 5)])
    np.testing.assert_allclose(proba[::5], alone, atol=1e-4)
    reversed_rows = clf.predict_proba(X.iloc[::-1])
    np.testing.assert_allclose(reversed_rows[::-1], proba, atol=1e-5)


def test_large_blocks_are_reused_while_a_phase_runs_and_released_after(monkeypatch):
    import sys

    from mmsentiment import memory

    calls = []
    monkeypatch.setattr(memory, "_libc_function", lambda name: (
        lambda *args: calls.append((name, *args)) or 1))
    with memory.large_blocks_reused() as changed:
        with memory.large_blocks_reused():  # nested (or concurrent): set once
            pass
        assert changed and memory._phases == 1
        assert calls == [("mallopt", memory.M_MMAP_THRESHOLD, memory.REUSED_BLOCK_LIMIT),
                         ("mallopt", memory.M_TRIM_THRESHOLD, 2 * memory.REUSED_BLOCK_LIMIT)]
    assert memory._phases == 0
    assert calls[2:] == [
        ("mallopt", memory.M_MMAP_THRESHOLD, memory.SETTLED_MMAP_THRESHOLD),
        ("mallopt", memory.M_TRIM_THRESHOLD, 2 * memory.SETTLED_MMAP_THRESHOLD),
        ("malloc_trim", 0)]
    monkeypatch.setattr(memory, "_libc_function", lambda name: None)
    with memory.large_blocks_reused() as changed:  # no glibc: nothing to do
        assert changed is False
    if sys.platform.startswith("linux"):
        monkeypatch.undo()
        memory._libc_function.cache_clear()
        with memory.large_blocks_reused() as changed:
            assert changed == (memory._libc_function("mallopt") is not None)


def test_weights_made_in_inference_mode_are_folded_each_call():
    with torch.inference_mode():
        net = _with_statistics(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
        x = torch.randn(2, 3, 6, 6)
        cache = FoldedCache()
        first = cache.get(net, lambda: x)
        net[0].weight.mul_(-1)  # no version counter to tell
        torch.testing.assert_close(cache.get(net, lambda: x)(x), net(x), atol=1e-5, rtol=1e-5)
        assert first is not cache.get(net, lambda: x)
