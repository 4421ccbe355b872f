"""The device-resident batch: inputs, soft targets, hard labels, sample indices, weights.

Batches are gathered from the dataset tensors with one index-tensor lookup (no
per-sample Python), and they keep the sample indices so that samplers receive
per-sample feedback.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class Batch:
    x: torch.Tensor  # inputs in [0, 1]
    y: torch.Tensor  # soft targets, (B, C), each row a distribution (or multi-label weights)
    labels: torch.Tensor  # hard labels of the first source of each input, (B,)
    idx: torch.Tensor  # dataset indices of the first source of each input, (B,)
    weight: torch.Tensor | None = None  # per-sample loss weights (importance weights)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def replace(self, **kw) -> "Batch":
        return replace(self, **kw)


def gather(
    x: torch.Tensor,
    y: torch.Tensor,
    idx: torch.Tensor,
    num_classes: int,
    weight: torch.Tensor | None = None,
) -> Batch:
    """Gather a batch by index tensor from dataset tensors living on the training device."""
    idx = idx.to(x.device)
    labels = y[idx]
    targets = torch.nn.functional.one_hot(labels, num_classes).to(x.dtype)
    return Batch(x[idx], targets, labels, idx, weight)
