"""p-SGD: sample in proportion to the running mean prediction *error* (Chang, Learned-Miller
& McCallum, "Active Bias: Training More Accurate Neural Networks by Emphasizing High
Variance Samples", NeurIPS 2017; as compared in Arazo et al., BMVC 2021, arXiv:2110.14283).

score_i = mean over the times sample i was trained on of (1 − p(y_i|x_i)), from the
training forward pass (feedback). Samples never seen get the maximum score of the seen
ones (all 1 before anything is seen). The mean score is added to every score (smoothing),
and each epoch draws ⌊b·N⌋ indices *without replacement* in proportion to the smoothed
scores (exponential keys, ``weighted.py``; the drawn set is visited in random order).
The loss is the plain mean: this selection is biased on purpose (no importance weights).

Per-sample state: ``p_sum`` (float64) and ``count`` (int32), tensors of length N on the training
device, so that feedback never waits for the device; an epoch's plan reads them to the host once.
"""

from __future__ import annotations

import torch

from .base import SAMPLERS, EpochOrderSampler, SamplerContext
from .weighted import sample_without_replacement


def fill_unseen(score: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Scores with never-seen samples set to the maximum seen score (1 if none seen)."""
    out = score.clone()
    out[~seen] = out[seen].max() if bool(seen.any()) else 1.0
    return out


def smoothed_weights(score: torch.Tensor) -> torch.Tensor:
    """score + mean(score); uniform if every score is zero."""
    w = score + score.mean()
    return w if bool((w > 0).any()) else torch.ones_like(w)


@SAMPLERS.register("p-sgd")
class PSGD(EpochOrderSampler):
    wants_feedback = True

    def __init__(self, ctx: SamplerContext, settings):
        super().__init__(ctx, settings)
        self.p_sum = torch.zeros(ctx.n, dtype=torch.float64, device=ctx.device)
        self.count = torch.zeros(ctx.n, dtype=torch.int32, device=ctx.device)

    def mean_p(self) -> torch.Tensor:
        return self.p_sum / self.count.clamp(min=1)

    def scores(self) -> torch.Tensor:
        """Per-sample scores before smoothing (unseen = max seen score)."""
        return fill_unseen(1.0 - self.mean_p(), self.count > 0)

    def plan_epoch(self, epoch: int) -> torch.Tensor:
        w = smoothed_weights(self.scores().cpu())  # the epoch's one read of the device state
        return sample_without_replacement(w, self.ctx.budget.samples_per_epoch, self.gen)

    def feedback(self, idx, loss, p_true, probs=None) -> None:
        idx = idx.to(self.p_sum.device)  # on the device already (the batch's indices): no copy
        self.p_sum.index_add_(0, idx, p_true.detach().double())
        self.count.index_add_(0, idx, torch.ones(len(idx), dtype=torch.int32, device=idx.device))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "p_sum": self.p_sum, "count": self.count}

    def load_state_dict(self, sd: dict) -> None:
        super().load_state_dict(sd)
        self.p_sum, self.count = sd["p_sum"].to(self.ctx.device), sd["count"].to(self.ctx.device)
