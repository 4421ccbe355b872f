"""``GradStats``: what the training loop offers a sampler that needs per-example gradient statistics
(gradient clustering, Faghri et al., "A Study of Gradient Variance in Deep Learning",
arXiv:2007.04532).

The loop builds one over its model and training set and hands it to samplers with
``wants_gradstats = True`` (``sampler.attach(probe)``). ``factors(idx)`` runs a forward and a
backward pass over training samples ``idx`` in **eval mode** (BatchNorm uses, and does not update,
its running statistics, so each example's gradient does not depend on the rest of the batch), on
clean inputs with one-hot targets and the run's loss, and returns the per-example rank-1 factors of
every ``Linear``/``Conv2d`` weight (``capture.py``). No parameter gradient is formed or touched; the
model's mode is restored. Every call reports its samples through ``on_work(forwarded,
backpropagated)``, so the loop counts them in samples forwarded/backpropagated and, in the
``backprop_samples`` and ``forward_backward`` budget units, charges them to the budget.

``paused``: set by the gradient-variance meter while it draws batches from a sampler, so a
sampler does not re-cluster inside a measurement.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch
from torch import nn

from ..data.loader import gather
from .capture import Capture, layer_dims
from .rank1 import Factors, at_least_fp32


class GradStats:
    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 on_work: Callable[[int, int], None] = lambda f, b: None, batch_size: int = 256,
                 autocast: Callable[[], object] = nullcontext, charged: bool = False):
        self.model, self.x, self.y, self.num_classes = model, x, y, num_classes
        self.loss_fn, self.on_work, self.batch_size, self.autocast = loss_fn, on_work, batch_size, autocast
        self.charged = charged  # whether the run's budget unit charges this work (not ``steps``)
        self.capture = Capture(model)
        self.dims = [layer_dims(m) for m in self.capture.layers]
        self.device = y.device
        self.paused = False

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def factors(self, idx: torch.Tensor) -> list[Factors]:
        """Per-layer factors of training samples ``idx`` (eval mode; counted)."""
        was_training = self.model.training
        self.model.eval()
        try:
            b = gather(self.x, self.y, idx, self.num_classes)
            with torch.enable_grad(), self.capture:
                with self.autocast():
                    logits = at_least_fp32(self.model(b.x))
                loss = self.loss_fn(logits, b.y).sum()  # per-example gradients, not 1/B of them
                out = self.capture.factors(loss)
        finally:
            self.model.train(was_training)
        self.on_work(len(idx), len(idx))
        return out
