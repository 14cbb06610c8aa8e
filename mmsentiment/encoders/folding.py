"""Batch normalization folded into the convolution before it, for inference.

In evaluation mode a batch-norm layer is a fixed per-channel affine map, so a convolution
followed by one equals a single convolution with scaled weights and a bias. Under
bfloat16 autocast the fold also removes a float32 round trip per layer (autocast runs
batch norm in float32): on the 2-core Xeon of docs/performance.md it ran
EfficientNet-Lite0's bfloat16 inference 1.2x faster, with outputs equal to 1e-5 in float32.

`fold_batch_norm` makes a folded copy; `FoldedCache` keeps one per model and rebuilds it
when the model's weights change (after an optimizer step, a ``load_state_dict`` or a move
to another device; writes through ``.data`` are not seen, since they bypass the tensors'
version counters).
"""

from __future__ import annotations

import copy
import threading
import warnings
from collections.abc import Callable

import torch
from torch import nn

# Largest difference allowed between the folded and the original model's outputs on the
# probe images, relative to the outputs' largest magnitude (a right fold of Lite0 differs by
# about 1e-6 of it in float32; a wrong one by far more).
FOLD_TOLERANCE = 1e-3


def _folded_pairs(model: nn.Module) -> list[tuple[nn.Module, str, str]]:
    """``(parent, conv name, norm name)`` for each convolution that a batch-norm layer with
    running statistics follows in its parent's registration order."""
    pairs = []
    for parent in model.modules():
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            conv, norm = parent._modules[first], parent._modules[second]
            if (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
                    and norm.running_var is not None
                    and norm.num_features == conv.out_channels):
                pairs.append((parent, first, second))
    return pairs


def _after_norm(norm: nn.BatchNorm2d) -> nn.Module:
    """What a folded batch-norm layer leaves behind: timm's ``BatchNormAct2d`` keeps its
    dropout and activation; a plain ``BatchNorm2d`` leaves nothing."""
    rest = [getattr(norm, name) for name in ("drop", "act")
            if isinstance(getattr(norm, name, None), nn.Module)]
    return nn.Sequential(*rest) if rest else nn.Identity()


@torch.no_grad()
def fold_batch_norm(model: nn.Module, probe: torch.Tensor) -> nn.Module:
    """A copy of ``model`` for inference with each batch-norm layer folded into the
    convolution before it, or ``model`` itself where nothing folds, any part of it is in
    training mode, or the fold would change its outputs.

    Which convolution a batch-norm layer follows is read from the order in which their
    parent module registers them (``conv, bn`` as timm's and torchvision's CNNs write
    them). Since registration order need not be the order of computation, the copy is
    kept only if its outputs on ``probe`` equal the original's within `FOLD_TOLERANCE`
    (relative to their largest magnitude), computed without autocast.

    Parameters
    ----------
    model : torch.nn.Module
        A model in evaluation mode.
    probe : torch.Tensor
        An input of the model (a small batch), on its device.

    Returns
    -------
    torch.nn.Module
        The folded copy (parameters without gradients), or ``model``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> _ = net[1].running_mean.uniform_(-1, 1), net[1].running_var.uniform_(0.5, 2)
    >>> x = torch.randn(2, 3, 8, 8)
    >>> folded = fold_batch_norm(net, x)
    >>> type(folded[1]).__name__, torch.allclose(folded(x), net(x), atol=1e-5)
    ('Identity', True)
    """
    if any(module.training for module in model.modules()) or not _folded_pairs(model):
        return model
    folded = copy.deepcopy(model)
    for parent, conv_name, norm_name in _folded_pairs(folded):
        conv, norm = parent._modules[conv_name], parent._modules[norm_name]
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps) if norm.affine else \
            1 / torch.sqrt(norm.running_var + norm.eps)
        shift = (norm.bias if norm.affine else 0) - norm.running_mean * scale
        conv.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        bias = shift if conv.bias is None else conv.bias * scale + shift
        conv.bias = nn.Parameter(bias.to(conv.weight.dtype))
        parent._modules[norm_name] = _after_norm(norm)
    folded.requires_grad_(False)
    with torch.autocast(probe.device.type, enabled=False):
        expected, got = model(probe), folded(probe)
    if not (isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor)
            and expected.shape == got.shape):
        return model
    limit = FOLD_TOLERANCE * float(expected.abs().max())
    return folded if float((expected - got).abs().max()) <= limit else model


def _has_hooks(model: nn.Module) -> bool:
    """Whether any module of ``model`` has forward hooks (a folded copy would bypass the
    ones on batch-norm layers and change what the ones on convolutions see)."""
    return any(module._forward_hooks or module._forward_pre_hooks
               for module in model.modules())


class FoldedCache:
    """One `fold_batch_norm` copy of a model, rebuilt when the model's weights change.

    The copy is tied to the model's parameter and buffer tensors as they are now (the
    objects, held so that no other tensor can take their place, their storage and version
    counters): an optimizer step, ``load_state_dict`` or ``.to()`` make the next `get` fold
    again. Writes through ``.data`` bypass version counters and are not seen. A model with
    forward hooks, or with weights made under ``torch.inference_mode`` (which keep no
    version), is returned unfolded; so is one whose fold fails (with a warning). The copy
    is never pickled or deep-copied (`__getstate__`). `get` is safe to call from several
    threads.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    >>> cache = FoldedCache()
    >>> x = torch.randn(1, 3, 8, 8)
    >>> cache.get(net, lambda: x) is cache.get(net, lambda: x)
    True
    >>> with torch.no_grad():
    ...     _ = net[0].weight.mul_(2)
    >>> torch.allclose(cache.get(net, lambda: x)(x), net(x), atol=1e-5)
    True
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._model: nn.Module | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _state(model: nn.Module) -> tuple | None:
        """The model's tensors with their versions, or ``None`` where one keeps no version
        (made under ``torch.inference_mode``)."""
        tensors = (*model.parameters(), *model.buffers())
        if any(t.is_inference() for t in tensors):
            return None
        # ``.to()`` keeps the parameter objects and gives them new storage: hence its address.
        return (model, *((t, t._version, t.data_ptr(), t.device) for t in tensors))

    @staticmethod
    def _same(key: tuple, other: tuple | None) -> bool:
        return (other is not None and len(key) == len(other) and key[0] is other[0]
                and all(a[0] is b[0] and a[1:] == b[1:] for a, b in zip(key[1:], other[1:])))

    def get(self, model: nn.Module, probe: Callable[[], torch.Tensor]) -> nn.Module:
        """The folded copy of ``model`` (``probe``: makes the input of `fold_batch_norm`
        when the copy is rebuilt), or ``model`` itself where it is not folded."""
        key = self._state(model)
        if key is None or _has_hooks(model):
            return model
        with self._lock:
            if self._model is None or not self._same(key, self._key):
                try:
                    self._model = fold_batch_norm(model, probe())
                except Exception as exc:  # noqa: BLE001 - any failure: predict unfolded
                    warnings.warn(f"Folding batch norm into the convolutions of "
                                  f"{type(model).__name__} failed ({exc!r}); it predicts "
                                  "unfolded, as fast as before this optimisation.",
                                  RuntimeWarning, stacklevel=3)
                    self._model = model
                self._key = key
            return self._model

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __deepcopy__(self, memo) -> FoldedCache:
        return FoldedCache()
