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


def test_a_model_partly_in_training_mode_is_not_folded():
    net = _with_statistics(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                                         nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)))
    net[3].train()
    stats = net[3].running_mean.clone()
    assert fold_batch_norm(net, torch.randn(2, 3, 6, 6)) is net
    assert torch.equal(net[3].running_mean, stats)  # the probe never ran it in training


def test_hooked_or_inference_mode_models_and_failed_folds_stay_unfolded():
    x = torch.randn(2, 3, 6, 6)
    hooked = _with_statistics(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    seen = []
    hooked[1].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    assert FoldedCache().get(hooked, lambda: x) is hooked
    with torch.inference_mode():
        made_here = _with_statistics(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    assert FoldedCache().get(made_here, lambda: x) is made_here

    def no_probe():
        raise RuntimeError("out of memory")

    plain = _with_statistics(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    cache = FoldedCache()
    with pytest.warns(RuntimeWarning, match="predicts unfolded"):
        assert cache.get(plain, no_probe) is plain
    assert cache.get(plain, no_probe) is plain  # decided once: no second warning


def test_the_cache_rebuilds_after_the_weights_change():
    net = _with_statistics(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    x = torch.randn(2, 3, 6, 6)
    cache, probes = FoldedCache(), []

    def probe():
        probes.append(1)
        return x.to(net[0].weight.dtype)

    first = cache.get(net, probe)
    assert cache.get(net, probe) is first and len(probes) == 1
    with torch.no_grad():
        net[0].weight.mul_(-1)
    second = cache.get(net, probe)
    assert second is not first and len(probes) == 2
    with torch.no_grad():
        torch.testing.assert_close(second(x), net(x), atol=1e-5, rtol=1e-5)
    net.load_state_dict(copy.deepcopy(net.state_dict()))  # copied in place: new versions
    third = cache.get(net, probe)
    assert third is not second and len(probes) == 3
    net.to(torch.float64)  # same parameter objects, new storage
    fourth = cache.get(net, probe)
    assert fourth is not third and fourth is not net  # folded again, in float64
    assert next(fourth.parameters()).dtype == torch.float64


@pytest.fixture(scope="module")
def lite0():
    return ImageEncoder("tf_efficientnet_lite0").eval()


def test_image_encoder_inference_is_folded_and_equal(lite0):
    pixels = torch.randint(0, 256, (3, 3, 224, 224), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = lite0(pixels).float()  # the prediction path's mode
    state = torch.get_rng_state()
    with torch.no_grad():
        folded = lite0(pixels)
        trunk = lite0._trunk()
    assert torch.equal(torch.get_rng_state(), state)  # the probe draws from its own generator
    assert trunk is not lite0.model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in trunk.modules())
    eager = lite0(pixels)  # gradients on: the encoder's own modules
    torch.testing.assert_close(folded, eager.detach(), atol=1e-4, rtol=1e-4)
    # bfloat16 rounds the folded weights once more: close to float32, not equal
    assert float((bf16 - folded).abs().max()) < 0.1 * float(folded.abs().max())
    with torch.no_grad():
        patches = lite0.patches(pixels)
    torch.testing.assert_close(patches.mean(1), folded, atol=1e-4, rtol=1e-4)
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


def test_prediction_in_length_order_keeps_the_rows_order(small, monkeypatch):
    X, y = small
    clf = MultimodalSentimentClassifier(max_epochs=1, batch_size=8, precision="32",
                                        validation_fraction=None, random_state=0).fit(X, y)
    seen = []
    forward = clf.net_.forward
    monkeypatch.setattr(clf.net_, "forward", lambda dataset: seen.append(
        list(dataset.column("text"))) or forward(dataset))
    proba = clf.predict_proba(X)
    lengths = [len(t) for t in seen[0]]
    assert lengths == sorted(lengths) and sorted(seen[0]) == sorted(X["text"])
    # rows differ by far more than the tolerances below: a wrong order could not pass
    assert np.ptp(proba[:, 0]) > 1e-2
    # each post alone: no padding, no other order
    alone = np.vstack([clf.predict_proba(X.iloc[[i]]) for i in range(0, len(X), 5)])
    np.testing.assert_allclose(proba[::5], alone, atol=1e-4)
    reversed_rows = clf.predict_proba(X.iloc[::-1])
    np.testing.assert_allclose(reversed_rows[::-1], proba, atol=1e-5)




def _fake_libc(monkeypatch, memory, accepts_threshold: bool = True) -> list:
    calls = []

    def mallopt(param, value):
        calls.append(("mallopt", param, value))
        assert -(1 << 31) <= value < (1 << 31)  # a C int
        return int(accepts_threshold or param != memory.M_MMAP_THRESHOLD
                   or value <= memory.SETTLED_MMAP_THRESHOLD)

    monkeypatch.setattr(memory, "_mallopt", lambda: mallopt)
    monkeypatch.setattr(memory, "_libc_function", lambda name: lambda *args: calls.append(
        (name, *args)))
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_large_blocks_are_reused_while_a_phase_runs_and_released_after(monkeypatch):
    from mmsentiment import memory

    calls = _fake_libc(monkeypatch, memory)
    with memory.large_blocks_reused() as changed:
        with memory.large_blocks_reused() as nested:  # nested (or concurrent): set once
            assert nested
        assert changed and memory._phases == 1
        assert calls == [("mallopt", memory.M_MMAP_THRESHOLD, memory.REUSED_BLOCK_LIMIT),
                         ("mallopt", memory.M_TRIM_THRESHOLD, memory.TRIM_LIMIT)]
    assert memory._phases == 0
    assert calls[2:] == [
        ("mallopt", memory.M_MMAP_THRESHOLD, memory.SETTLED_MMAP_THRESHOLD),
        ("mallopt", memory.M_TRIM_THRESHOLD, 2 * memory.SETTLED_MMAP_THRESHOLD),
        ("malloc_trim", 0)]


def test_large_blocks_change_nothing_where_refused_or_tuned_by_the_user(monkeypatch):
    from mmsentiment import memory

    calls = _fake_libc(monkeypatch, memory, accepts_threshold=False)  # glibc before 2.35
    with memory.large_blocks_reused() as changed:
        assert changed is False
    assert calls == [("mallopt", memory.M_MMAP_THRESHOLD, memory.REUSED_BLOCK_LIMIT)]
    assert memory._phases == 0
    calls = _fake_libc(monkeypatch, memory)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")
    with memory.large_blocks_reused() as changed:
        assert changed is False
    assert calls == []
    monkeypatch.setattr(memory, "_mallopt", lambda: None)  # not glibc
    monkeypatch.delenv("GLIBC_TUNABLES")
    with memory.large_blocks_reused() as changed:
        assert changed is False


def test_the_real_mallopt_takes_the_limits():
    from mmsentiment import memory

    mallopt = memory._mallopt()
    if mallopt is None:
        pytest.skip("no glibc mallopt on this platform")
    # the trim threshold is never refused; as a C int the limit must not wrap around
    assert mallopt(memory.M_TRIM_THRESHOLD, memory.TRIM_LIMIT) == 1
    assert mallopt(memory.M_TRIM_THRESHOLD, 2 * memory.SETTLED_MMAP_THRESHOLD) == 1
