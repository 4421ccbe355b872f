"""Per-sample losses on soft targets, and their (optionally weighted) mean.

Targets are probability vectors (one-hot for clean data, mixtures after mixing
augmentations). Losses return one value per sample so that samplers can use them
as feedback and importance weights can scale them.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .errors import ConfigError


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-sum_c t_c log softmax(z)_c, per sample. Equals F.cross_entropy for one-hot targets."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)


def multilabel_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, averaged over the C classes, per sample (multi-label
    targets, as Cascading Sum Augmentation trains with). The batch mean of this is the mean over
    batch x classes, the reduction of the authors' ``BCEWithLogitsLoss()``; a sum over classes
    would scale the gradient by C at the same learning rate."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=1)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": soft_cross_entropy,
    "bce": multilabel_bce,
}


def get_loss(name: str):
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; allowed: {', '.join(LOSSES)}")
    return LOSSES[name]


def reduce_loss(per_sample: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of the per-sample losses, each scaled by its weight when given.

    With importance weights w_i = 1/(N p_i) this is the unbiased estimate of the full mean."""
    if weight is None:
        return per_sample.mean()
    return (per_sample * weight).mean()


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot targets, optionally label-smoothed: (1 - s) * onehot + s / C."""
    t = F.one_hot(labels, num_classes).float()
    if smoothing > 0:
        t = t * (1 - smoothing) + smoothing / num_classes
    return t
