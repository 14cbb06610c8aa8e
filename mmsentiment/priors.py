"""The training prior of the classes and the post-hoc logit adjustment built on it
(``logit_adjustment``; Menon et al., *Long-tail learning via logit adjustment*, ICLR 2021).

A network trained with cross-entropy learns, besides the posts, how often each class came
up in its loss. The prior here is that frequency as the loss saw it: each class's posts
weighted by their ``sample_weight`` and by the class's ``class_weight``, so that a
``class_weight="balanced"`` fit has a uniform prior and no adjustment.
"""

from __future__ import annotations

import numpy as np


def class_prior(y: np.ndarray, n_classes: int, class_weight=None,
                sample_weight=None) -> np.ndarray:
    """Each class's share of the training loss's weight.

    Parameters
    ----------
    y : ndarray of int
        Class indices of the training posts.
    n_classes : int
        Number of classes.
    class_weight : array-like of shape (n_classes,), optional
        The loss's class weights (`mmsentiment.training.class_weights`).
    sample_weight : array-like of shape (n_posts,), optional
        Each post's weight.

    Returns
    -------
    ndarray of shape (n_classes,)
        Shares summing to 1 (uniform where every weight is 0).

    Examples
    --------
    >>> class_prior(np.array([0, 0, 0, 1]), 2).tolist()
    [0.75, 0.25]
    >>> class_prior(np.array([0, 0, 0, 1]), 2, class_weight=[1.0, 3.0]).tolist()
    [0.5, 0.5]
    """
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    mass = np.bincount(y, weights=weights, minlength=n_classes).astype(np.float64)
    if class_weight is not None:
        mass = mass * np.asarray(class_weight, dtype=np.float64)
    total = mass.sum()
    return mass / total if total > 0 else np.full(n_classes, 1.0 / n_classes)


def continued_prior(previous: np.ndarray | None, n_previous: int, current: np.ndarray,
                    n_current: int) -> np.ndarray:
    """The prior after a warm start: the two fits' priors weighted by their posts.

    Examples
    --------
    >>> continued_prior(np.array([0.5, 0.5]), 100, np.array([1.0, 0.0]), 100).tolist()
    [0.75, 0.25]
    """
    if previous is None or n_previous <= 0:
        return current
    mixed = np.asarray(previous, dtype=np.float64) * n_previous + current * n_current
    return mixed / mixed.sum()


def logit_offsets(prior: np.ndarray | None, adjustment: float, n_classes: int) -> np.ndarray:
    """What prediction subtracts from the logits: ``adjustment * log(prior)``.

    A class of prior 0 (it had no weight in the loss) is treated as the most frequent, so
    that it is not the one favoured. With no prior (a model file from before the prior was
    kept) nothing is subtracted.

    Examples
    --------
    >>> logit_offsets(np.array([0.5, 0.25, 0.25]), 1.0, 3).round(3).tolist()
    [-0.693, -1.386, -1.386]
    >>> logit_offsets(None, 0.5, 2).tolist()
    [0.0, 0.0]
    """
    if prior is None or not adjustment:
        return np.zeros(n_classes)
    prior = np.asarray(prior, dtype=np.float64)
    prior = np.where(prior > 0, prior, prior.max())
    return adjustment * np.log(prior)
