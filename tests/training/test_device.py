"""Device names and memory handed back."""

from __future__ import annotations

import pytest
import torch

from mmsentiment.training import device_name, release_free_memory, resolve_device


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        resolve_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


def test_device_name_and_memory_trim():
    assert device_name(torch.device("cpu", 0)) == "cpu"
    assert device_name(torch.device("cuda", 1)) == "cuda:1"
    assert isinstance(release_free_memory(), bool)
