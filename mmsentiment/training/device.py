"""Where training runs: device names and Hugging Face accelerate."""

from __future__ import annotations

import torch


def load_accelerate():
    """The ``accelerate`` module, or an ``ImportError`` that says how to install it."""
    try:
        import accelerate
    except ImportError as exc:
        raise ImportError('device="accelerate" needs the accelerate package: '
                          'pip install accelerate (in a checkout: pip install -e '
                          '".[accelerate]")') from exc
    return accelerate


def device_name(device: torch.device) -> str:
    """A device as a name that ``torch.load`` can map (accelerate calls the CPU "cpu:0")."""
    return "cpu" if device.type == "cpu" else str(device)


def resolve_device(device: str) -> str:
    """Turn ``"auto"`` into ``"cuda"`` where a GPU is visible, else ``"cpu"``.

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"accelerate"`` (this process's
        device in an ``accelerate launch`` run).

    Returns
    -------
    str

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    if device == "accelerate":
        state = load_accelerate().PartialState(cpu=not torch.cuda.is_available())
        return device_name(state.device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but no CUDA GPU is available.")
    return device


def make_accelerator():
    """A fresh ``accelerate.Accelerator`` for data parallelism (``device="accelerate"``).

    Mixed precision stays the classifier's own (``precision=``), and so does gradient
    accumulation (``micro_batch_size=``); unused parameters are normal (a batch without any
    image skips the image encoder). Without a GPU, processes started by torchrun or
    ``accelerate launch`` train on the CPU (gloo).
    """
    accelerate = load_accelerate()
    ddp = accelerate.DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = accelerate.Accelerator(
        mixed_precision="no", kwargs_handlers=[ddp], cpu=not torch.cuda.is_available(),
        gradient_accumulation_plugin=accelerate.utils.GradientAccumulationPlugin(num_steps=1))
    kind = accelerator.distributed_type.name
    if kind not in ("NO", "MULTI_GPU", "MULTI_CPU"):
        raise ValueError(f'device="accelerate" supports data parallelism (one process '
                         f"per device), not {kind}; launch without DeepSpeed/FSDP.")
    return accelerator


def shared_seed(accelerator, seed: int) -> int:
    """The main process's ``seed`` in every process of an accelerate run (``seed`` itself
    without one), so that all processes split, initialise and shuffle alike."""
    if accelerator is None:
        return seed
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([seed])[0]
