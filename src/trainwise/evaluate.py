"""Clean evaluation: mean loss and accuracy of a model on a tensor dataset, in eval mode.

The inputs are read chunk by chunk and each chunk is converted (``as_float``) on the labels'
device: they may be uint8 and may live in a memory-mapped file on the CPU. Called inside the run's
``torch.autocast`` (``train.precision``), the loss is still taken on float32 logits. One host sync
per call (the two sums), none per chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .accel import to_device
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
        logits = model(as_float(to_device(chunk, device)))
        if logits.dtype in (torch.float16, torch.bfloat16):  # under the run's autocast: the loss in float32
            logits = logits.float()
        storage.note_read(x, chunk.numel() * chunk.element_size())
        yb = y[i : i + batch_size]
        loss_sum += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return loss_sum.item() / n, correct.item() / n
