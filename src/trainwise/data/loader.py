"""The device-resident batch: inputs, soft targets, hard labels, sample indices, weights.

Batches are gathered from the dataset tensors with one index-tensor lookup (no
per-sample Python), and they keep the sample indices so that samplers receive
per-sample feedback. Only the gathered rows are converted to float (``as_float``), on the
training device; the stored inputs may be uint8 and may live in a memory-mapped file on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..accel import to_device
from . import storage
from .base import as_float


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
    num_classes: int | None,
    weight: torch.Tensor | None = None,
) -> Batch:
    """Gather a batch by index tensor: the labels ``y`` live on the training device, the inputs
    ``x`` there too or (memory-mapped) on the CPU; the batch's inputs come out float on the device.
    Indices and weights chosen on the host go to the device without a host sync (``to_device``).
    ``num_classes`` None: no soft targets, ``y`` of the batch is the labels (retrieval's groups)."""
    xb = rows(x, idx, y.device)
    idx = to_device(idx, y.device)
    labels = y[idx]
    targets = labels if num_classes is None else torch.nn.functional.one_hot(labels, num_classes).to(xb.dtype)
    return Batch(xb, targets, labels, idx, None if weight is None else to_device(weight, y.device))


def rows(x: torch.Tensor, idx: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``as_float(x[idx])`` on ``device``: index where ``x`` lives, move the rows, then convert."""
    out = x[to_device(idx, x.device)]
    storage.note_read(x, storage.row_read_bytes(x, len(idx)))
    return as_float(to_device(out, device))
