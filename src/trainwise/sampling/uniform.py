"""unif-SGD: each epoch, floor(b * N) indices drawn uniformly without replacement
(the baseline of Arazo et al., BMVC 2021, arXiv:2110.14283)."""

from __future__ import annotations

import torch

from .base import SAMPLERS, EpochOrderSampler


@SAMPLERS.register("uniform")
class Uniform(EpochOrderSampler):
    tasks = ("classification", "retrieval")  # needs no class scores (tasks.py)
    def plan_epoch(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.ctx.n, generator=self.gen)[: self.ctx.budget.samples_per_epoch]
