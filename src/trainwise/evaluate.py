"""Clean evaluation: mean loss and accuracy of a model on a tensor dataset, in eval mode.

The inputs are read chunk by chunk and each chunk is converted (``as_float``) on the labels'
device: they may be uint8 and may live in a memory-mapped file on the CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import storage
from .data.base import as_float


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy) of ``model`` on (x, y); restores the train/eval mode."""
    was_training = model.training
    model.eval()
    device = y.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        logits = model(as_float(chunk.to(device)))
        storage.note_read(x, chunk.numel() * chunk.element_size())
        yb = y[i : i + batch_size]
        loss_sum += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return loss_sum.item() / n, correct.item() / n
