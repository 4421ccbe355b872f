"""Test-time sum augmentation (Simionescu, arXiv:2211.14395; with Cascading Sum Augmentation):
the prediction for x averages the logits over M mixes x' = x/2 + x_r/2, x_r a random
training image; an evaluation option (``train.tta_sum: M``), reported as ``test_acc_tta_sum``
next to the clean test accuracy. Batched: one forward per mix and chunk, no per-sample Python.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.base import as_float
from ..data.loader import rows


@torch.no_grad()
def tta_sum_logits(model: torch.nn.Module, x: torch.Tensor, x_train: torch.Tensor, m: int,
                   gen: torch.Generator) -> torch.Tensor:
    """Mean logits of ``model`` over ``m`` mixes of each row of ``x`` with random rows of ``x_train``
    (both stored inputs, uint8 or float; converted here, on ``x``'s device)."""
    out = 0
    x = as_float(x)
    for _ in range(m):
        r = torch.randint(0, len(x_train), (len(x),), generator=gen)
        out = out + model(0.5 * x + 0.5 * rows(x_train, r, x.device))
    return out / m


@torch.no_grad()
def evaluate_tta_sum(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_train: torch.Tensor,
                     m: int, gen: torch.Generator, batch_size: int = 1024) -> tuple[float, float]:
    """(mean cross-entropy of the averaged logits, accuracy) in eval mode; restores the mode."""
    was = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        yb = y[i:i + batch_size]
        z = tta_sum_logits(model, x[i:i + batch_size].to(yb.device), x_train, m, gen)
        loss += float(F.cross_entropy(z, yb, reduction="sum"))
        correct += int((z.argmax(1) == yb).sum())
    model.train(was)
    n = max(len(x), 1)
    return loss / n, correct / n
