"""Optimizer parameter groups: one learning rate per encoder, decayed layer by layer."""

from __future__ import annotations

from torch import nn


def layer_decay_groups(net: nn.Module, text_lr: float, image_lr: float,
                       decay: float) -> list[tuple[str, dict]]:
    """skorch ``optimizer__param_groups`` for layer-wise learning-rate decay.

    Each encoder's layer groups (its ``layer_groups()``, lowest first) get learning rates
    from the top down: the top group learns at the encoder's rate and each group below at
    ``decay`` times the one above it. A group is named by the largest modules that lie
    wholly inside it; each encoder ends with a catch-all pattern at its lowest rate.
    Everything else (the fusion head, the missing vectors) keeps the optimizer's base
    ``lr``.

    Parameters
    ----------
    net : MultimodalNet
        The network, with ``text_encoder`` and ``image_encoder``.
    text_lr, image_lr : float
        Learning rates of each encoder's top group.
    decay : float
        Factor between a group and the one above it (1.0: one rate per encoder).

    Returns
    -------
    list of (str, dict)
        ``(pattern, {"lr": rate})`` pairs, first match wins.

    Examples
    --------
    >>> from mmsentiment.encoders import TextEncoder, ImageEncoder
    >>> from mmsentiment.nn import ConcatFusion, MultimodalNet
    >>> t, i = TextEncoder("all-MiniLM-L6-v2"), ImageEncoder("tf_efficientnet_lite0")
    >>> groups = layer_decay_groups(MultimodalNet(t, i, ConcatFusion(t.dim, i.dim, 3)),
    ...                             1e-4, 1e-4, 0.5)
    >>> groups[0]
    ('text_encoder.model.0.model.embeddings.*', {'lr': 1.5625e-06})
    >>> groups[-1]
    ('image_encoder.*', {'lr': 7.8125e-07})
    """
    groups = []
    for prefix, lr in (("text_encoder", text_lr), ("image_encoder", image_lr)):
        layers = getattr(net, prefix).layer_groups()
        for depth, names in enumerate(layers):
            rate = lr * decay ** (len(layers) - 1 - depth)
            groups.extend((f"{prefix}.{pattern}", {"lr": rate})
                          for pattern in _patterns(getattr(net, prefix), set(names)))
        groups.append((f"{prefix}.*", {"lr": lr * decay ** max(0, len(layers) - 1)}))
    return groups


def _patterns(module: nn.Module, names: set[str]) -> list[str]:
    """Patterns that cover exactly the parameters ``names`` of ``module``: ``"prefix.*"``
    for each largest submodule whose parameters all lie in ``names``, and the names of
    parameters held directly by a module that also holds others."""
    patterns, covered = [], set()
    for prefix, sub in module.named_modules():
        if not prefix or any(prefix.startswith(p + ".") for p in covered):
            continue
        inside = {f"{prefix}.{n}" for n, _ in sub.named_parameters()}
        if inside and inside <= names:
            patterns.append(f"{prefix}.*")
            covered.add(prefix)
    taken = {n for n in names if any(n.startswith(p + ".") for p in covered)}
    return patterns + sorted(names - taken)
