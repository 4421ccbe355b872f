"""``GradStats``: what the training loop offers a sampler that needs per-example gradient statistics
(gradient clustering, Faghri et al., "A Study of Gradient Variance in Deep Learning",
arXiv:2007.04532).

The loop builds one over its model and its clean training loss and hands it to samplers with
``wants_gradstats = True`` (``sampler.attach(probe)``). ``factors(idx)`` runs a forward and a
backward pass over training samples ``idx`` in **eval mode** (BatchNorm uses, and does not update,
its running statistics, so each example's gradient does not depend on the rest of the batch) and
returns the per-example rank-1 factors of every ``Linear``/``Conv2d`` weight (``capture.py``). The
loss is the loop's mean loss over ``idx`` times ``len(idx)``: the sum of per-example losses, so the
factors are those of each example's own loss (classification: one-hot targets, no augmentation).
No parameter gradient is formed or touched; the model's mode is restored. Every call reports its
samples through ``on_work(forwarded, backpropagated)``, so the loop counts them in samples
forwarded/backpropagated and, in the ``backprop_samples`` and ``forward_backward`` budget units,
charges them to the budget (``charged``).

``paused``: set by the gradient-variance meter while it draws batches from a sampler, so a
sampler does not re-cluster inside a measurement.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch
from torch import nn

from ..data.loader import gather
from ..losses import reduce_loss, soft_cross_entropy
from .capture import Capture, layer_dims
from .rank1 import Factors, at_least_fp32

MeanLoss = Callable[..., torch.Tensor]  # (idx, weight=None) -> the (weighted) mean loss, with its graph


def classification_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                        loss_fn=soft_cross_entropy, autocast: Callable[[], object] = nullcontext) -> MeanLoss:
    """The clean mean training loss over samples ``idx`` (weighted when ``weight`` is given): what the
    loop's ``trial_loss`` computes for classification, for tests and benchmarks that run no loop."""
    def mean_loss(idx: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        b = gather(x, y, idx, num_classes, weight)
        with autocast():
            logits = at_least_fp32(model(b.x))
        return reduce_loss(loss_fn(logits, b.y), b.weight)
    return mean_loss


class GradStats:
    def __init__(self, model: nn.Module, mean_loss: MeanLoss, n: int,
                 on_work: Callable[[int, int], None] = lambda f, b: None, charged: bool = False):
        self.model, self.mean_loss, self.n, self.on_work = model, mean_loss, n, on_work
        self.charged = charged  # whether the run's budget unit charges this work (not ``steps``)
        self.capture = Capture(model)
        self.dims = [layer_dims(m) for m in self.capture.layers]
        self.device = next(model.parameters()).device
        self.paused = False

    @classmethod
    def for_classification(cls, model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                           loss_fn=soft_cross_entropy, **kw) -> "GradStats":
        return cls(model, classification_loss(model, x, y, num_classes, loss_fn), int(y.shape[0]), **kw)

    def factors(self, idx: torch.Tensor) -> list[Factors]:
        """Per-layer factors of training samples ``idx`` (eval mode; counted)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.enable_grad(), self.capture:
                loss = self.mean_loss(idx) * len(idx)  # the sum: per-example gradients, not 1/B of them
                out = self.capture.factors(loss)
        finally:
            self.model.train(was_training)
        self.on_work(len(idx), len(idx))
        return out
