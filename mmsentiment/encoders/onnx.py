"""An image encoder's inference through ONNX Runtime, for float32 prediction on a CPU.

Where a CPU has no bfloat16 arithmetic, prediction runs in float32, and there ONNX
Runtime ran EfficientNet-Lite0 (batch norm folded, batches of 32) 1.3x as fast as torch
on a 2-core AMD EPYC with AVX2 only (docs/performance.md); on the Xeon with AMX, torch in
bfloat16 was faster than ONNX Runtime in float32. `ImageEncoder` asks `OnnxCache` for
a session of its folded inference copy while `onnx_inference` is on (the classifier turns
it on in prediction when ``inference_backend`` resolves to ONNX Runtime,
`use_onnxruntime`).

A session is exported from the torch model in memory (TorchScript exporter, no file) and
kept while that model object lives; the folded copy is rebuilt whenever the weights change
(`mmsentiment.encoders.folding.FoldedCache`), so a new copy gets a new session. Each
session is checked once against torch on fixed probe images; one that disagrees by more
than `ONNX_TOLERANCE`, or fails to export, is not used (torch runs instead, with a warning).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import inspect
import io
import threading
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

BACKENDS = ("auto", "torch", "onnxruntime")
# Largest difference allowed between ONNX Runtime's and torch's outputs on the probe
# images, relative to the outputs' largest magnitude (Lite0 differs by about 1e-6 of it).
ONNX_TOLERANCE = 1e-4
# torch 2.5 added the dynamo exporter and the keyword that picks; before it, TorchScript's
# exporter was the only one.
_TORCHSCRIPT_EXPORTER = ({"dynamo": False}
                         if "dynamo" in inspect.signature(torch.onnx.export).parameters else {})
_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("mmsentiment_onnx",
                                                                default=False)


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` and ``onnx`` (the exporter's writer) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def use_onnxruntime(backend: str, device: str, dtype: torch.dtype | None) -> bool:
    """Whether a prediction on ``device`` with autocast ``dtype`` (None: float32) runs its
    image encoder through ONNX Runtime under the ``inference_backend`` setting ``backend``.

    ``"auto"`` means ONNX Runtime for float32 prediction on a CPU where it is installed,
    torch elsewhere (a bfloat16 CPU predicts as fast in torch); ``"onnxruntime"`` means it
    on any CPU prediction; ``"torch"`` never.

    ``"onnxruntime"`` on another device warns and means torch.

    Raises
    ------
    ImportError
        ``backend="onnxruntime"`` without ``onnxruntime`` and ``onnx`` installed.
    ValueError
        An unknown name.

    Examples
    --------
    >>> use_onnxruntime("torch", "cpu", None)
    False
    >>> use_onnxruntime("auto", "cpu", torch.bfloat16)
    False
    """
    if backend not in BACKENDS:
        raise ValueError(f"inference_backend must be one of {BACKENDS}, got {backend!r}")
    on_cpu = torch.device(device).type == "cpu"
    if backend == "onnxruntime":
        if not on_cpu:  # a model fitted or loaded onto a GPU still predicts
            warnings.warn(f'inference_backend="onnxruntime" runs on the CPU; this model '
                          f'predicts on {device}, in torch.', RuntimeWarning, stacklevel=3)
            return False
        if not onnxruntime_available():
            raise ImportError('inference_backend="onnxruntime" needs the onnxruntime and onnx '
                              'packages: pip install onnxruntime onnx')
        return True
    return backend == "auto" and on_cpu and dtype is None and onnxruntime_available()


@contextlib.contextmanager
def onnx_inference(enabled: bool = True) -> Iterator[None]:
    """Within this block (this thread or task), image encoders in inference run through
    ONNX Runtime (`OnnxCache`) where ``enabled``."""
    token = _ENABLED.set(enabled)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def onnx_inference_enabled() -> bool:
    """Whether `onnx_inference` is on here."""
    return _ENABLED.get()


class _Features(nn.Module):
    """A timm model's ``forward_features`` as its ``forward`` (for export)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


class OnnxSession:
    """ONNX Runtime's run of ``model`` (one float32 input, any batch size), as a callable
    from a tensor to a tensor.

    Parameters
    ----------
    model : torch.nn.Module
        In evaluation mode.
    probe : torch.Tensor
        An input (a small batch): traced for the export, and the check against torch.

    Raises
    ------
    ValueError
        Where ONNX Runtime's outputs on ``probe`` differ from torch's by more than
        `ONNX_TOLERANCE` of their largest magnitude.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    >>> x = torch.randn(2, 3, 8, 8)
    >>> session = OnnxSession(net, x)
    >>> torch.allclose(session(x), net(x), atol=1e-5)
    True
    """

    def __init__(self, model: nn.Module, probe: torch.Tensor) -> None:
        import onnxruntime

        probe = probe.detach().float().contiguous()
        buffer = io.BytesIO()
        # float32 whatever autocast the caller runs under: the export traces the graph and
        # the check compares against it.
        float32 = torch.autocast(probe.device.type, enabled=False)
        with torch.no_grad(), float32, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on its own internals
            torch.onnx.export(model, (probe,), buffer, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                              **_TORCHSCRIPT_EXPORTER)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: torch runs the rest of the network on the same
        # cores, between this session's calls.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(buffer.getvalue(), options,
                                                    providers=["CPUExecutionProvider"])
        with torch.no_grad(), float32:
            expected = model(probe)
        got = self(probe)
        limit = ONNX_TOLERANCE * float(expected.abs().max())
        if got.shape != expected.shape or float((got - expected).abs().max()) > limit:
            raise ValueError("ONNX Runtime's outputs differ from torch's on the probe images")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().float().contiguous().numpy())
        return torch.from_numpy(self.session.run(None, {"x": array})[0])


class OnnxCache:
    """One `OnnxSession` per output kind (``"pooled"``: the model's ``forward``;
    ``"features"``: its ``forward_features``), for one model object at a time.

    A session stays while `run` is given the same model object and is rebuilt for
    another; a model whose export or check fails is run by torch from then on (`run`
    returns ``None``), with one warning. Never pickled or deep-copied. Safe to call from
    several threads.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[nn.Module, OnnxSession | None]] = {}
        self._lock = threading.Lock()

    def run(self, model: nn.Module, kind: str, x: torch.Tensor,
            probe: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        """``model``'s output of ``kind`` for ``x`` through ONNX Runtime, or ``None`` where
        it cannot run there (``probe``: makes the export's input when a session is built)."""
        with self._lock:
            entry = self._sessions.get(kind)
            if entry is None or entry[0] is not model:
                entry = self._sessions[kind] = (model, self._build(model, kind, probe))
        session = entry[1]
        return None if session is None else session(x)

    @staticmethod
    def _build(model: nn.Module, kind: str, probe: Callable[[], torch.Tensor]
               ) -> OnnxSession | None:
        try:
            return OnnxSession(_Features(model) if kind == "features" else model, probe())
        except Exception as exc:  # noqa: BLE001 - any failure: torch predicts instead
            warnings.warn(f"Running {type(model).__name__} through ONNX Runtime failed "
                          f"({exc!r}); torch predicts instead, at its own speed.",
                          RuntimeWarning, stacklevel=4)
            return None

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __deepcopy__(self, memo) -> OnnxCache:
        return OnnxCache()
