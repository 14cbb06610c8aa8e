"""Learning-rate schedules: a linear warm-up, then cosine or exponential decay, per batch.

Each schedule is a multiplier of the base learning rates for torch's ``LambdaLR``, stepped
after every training batch by `BatchLRScheduler`, skorch's ``LRScheduler`` made to resume at
the batch where a checkpointed fit stopped.
"""

from __future__ import annotations

import math

from skorch.callbacks import LRScheduler

LR_SCHEDULES = ("cosine", "exponential")


class WarmupCosine:
    """Linear warm-up over ``warmup_steps``, then cosine decay to zero at ``total_steps``.

    The warm-up factor of step ``s`` is ``(s + 1) / (warmup_steps + 1)``, as torch's
    ``LinearLR(start_factor=1 / (warmup_steps + 1), total_iters=warmup_steps)``.

    Parameters
    ----------
    total_steps : int
        Steps of the whole fit.
    warmup_steps : int
        Steps of linear warm-up.

    Examples
    --------
    >>> sched = WarmupCosine(total_steps=100, warmup_steps=10)
    >>> [round(sched(s), 2) for s in (0, 5, 10, 55, 100)]
    [0.09, 0.55, 1.0, 0.5, 0.0]
    """

    def __init__(self, total_steps: int, warmup_steps: int) -> None:
        self.total_steps = max(1, total_steps)
        self.warmup_steps = max(0, warmup_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupExponential:
    """Linear warm-up, then a fall by ``gamma`` after every epoch.

    After the warm-up this is torch's ``ExponentialLR`` stepped per epoch, as in Toledo &
    Marcacini's code.

    Parameters
    ----------
    steps_per_epoch : int
        Training batches per epoch.
    warmup_steps : int
        Steps of linear warm-up.
    gamma : float, default=0.9
        Factor applied after each epoch.

    Examples
    --------
    >>> sched = WarmupExponential(steps_per_epoch=10, warmup_steps=0, gamma=0.9)
    >>> [round(sched(s), 3) for s in (0, 9, 10, 25)]
    [1.0, 1.0, 0.9, 0.81]
    """

    def __init__(self, steps_per_epoch: int, warmup_steps: int, gamma: float = 0.9) -> None:
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.warmup_steps = max(0, warmup_steps)
        self.gamma = gamma

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        return self.gamma ** (step // self.steps_per_epoch)


def make_schedule(name: str, steps_per_epoch: int, epochs: int, warmup: float):
    """The multiplier of schedule ``name`` for a fit of ``epochs`` x ``steps_per_epoch``.

    Parameters
    ----------
    name : {"cosine", "exponential"}
        The schedule.
    steps_per_epoch : int
        Training batches per epoch.
    epochs : int
        Planned epochs.
    warmup : float
        Share of all steps spent warming up.

    Returns
    -------
    WarmupCosine or WarmupExponential
    """
    if name not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {name!r}")
    steps = epochs * steps_per_epoch
    if name == "cosine":
        return WarmupCosine(steps, int(warmup * steps))
    return WarmupExponential(steps_per_epoch, int(warmup * steps))


class BatchLRScheduler(LRScheduler):
    """skorch's ``LRScheduler`` stepped after every batch, resuming at the right batch.

    A resumed fit continues the schedule at the batch count of the net's history (skorch's
    own ``LRScheduler`` restarts a per-batch schedule at the epoch count).

    Build it as ``BatchLRScheduler(policy=torch.optim.lr_scheduler.LambdaLR,
    step_every="batch", lr_lambda=multiplier)`` with a multiplier from `make_schedule`.
    """

    def _get_scheduler(self, net, policy, **scheduler_kwargs):
        # batch_idx_ is 0 on a new fit and the batches already run on a resumed one.
        scheduler_kwargs.setdefault("last_epoch", self.batch_idx_ - 1)
        return policy(net.optimizer_, **scheduler_kwargs)
