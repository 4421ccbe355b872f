"""Clean evaluation: mean loss and accuracy of a model on a tensor dataset, in eval mode."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy) of ``model`` on (x, y); restores the train/eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size])
        yb = y[i : i + batch_size]
        loss_sum += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return loss_sum.item() / n, correct.item() / n
