"""c-SGD: sample in proportion to the prediction *variance* (Chang, Learned-Miller & McCallum,
"Active Bias", NeurIPS 2017; as compared in Arazo et al., BMVC 2021, arXiv:2110.14283).

score_i = p̄_i (1 − p̄_i) with p̄_i the running mean of p(y_i|x_i) over the times sample i
was trained on (the prediction-variance score of docs/methods.md §2; the paper's variant with
the sample's own history variance is not used). Everything else as ``p-sgd``: unseen
samples get the maximum score, the mean score is added, ⌊b·N⌋ indices per epoch are drawn
without replacement ∝ the smoothed scores, plain mean loss. ``warmup_epochs`` first epochs
are drawn uniformly (feedback is still collected during them).
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..registry import Settings
from .base import SAMPLERS
from .p_sgd import PSGD, fill_unseen


@SAMPLERS.register("c-sgd")
class CSGD(PSGD):
    class Settings(Settings):
        warmup_epochs: int = Field(0, ge=0, le=100_000, description="uniform epochs before score-based sampling")

    def scores(self) -> torch.Tensor:
        p = self.mean_p()
        return fill_unseen(p * (1 - p), self.count > 0)

    def plan_epoch(self, epoch: int) -> torch.Tensor:
        if epoch < self.settings.warmup_epochs:
            return torch.randperm(self.ctx.n, generator=self.gen)[: self.ctx.budget.samples_per_epoch]
        return super().plan_epoch(epoch)
