"""InfoBatch: lossless training speed-up by unbiased dynamic data pruning (Qin et al.,
ICLR 2024, arXiv:2303.04947; public code NUS-HPC-AI-Lab/InfoBatch).

Each sample keeps its last training loss (feedback). At the start of each epoch the
⌊b·N⌋ candidates of a random permutation are taken (as ``uniform`` does); among those whose
last loss is below the mean of all recorded losses, a random ⌊r·m⌋ of the m are pruned and
the kept low-loss ones get loss weight 1/(1 − r), which keeps the expected gradient. Only
epochs that end within the first δ of the E = ``train.epochs`` epochs prune (epoch e prunes
iff e + 1 ≤ δ·E), so nothing is pruned in the last 1 − δ of training (with E = 5 and δ = 0.875
the last epoch is unpruned).

Choices where the paper is silent: a sample never trained on has no loss and is never
pruned; the mean is over samples with a recorded loss. The epoch shrinks, so the run
(budget unit ``steps``) is E pruned epochs, fewer optimizer steps than the budget's
E·⌊⌊b·N⌋/B⌋ (never more: the loop caps the plan there): the sampler reports
``planned_steps()`` — the steps of the epochs so far plus an estimate of the rest
(pruned epochs as long as the current one, unpruned ones full) — and the loop lays the LR
schedule over it, re-planned at each epoch start. The unpruned last epochs are exact, so
the schedule ends exactly at the real last step.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from ..accel import to_device
from ..registry import Settings
from .base import SAMPLERS, EpochOrderSampler, SamplerContext, Scorer, Selection


def prune(cand: torch.Tensor, score: torch.Tensor, seen: torch.Tensor, r: float,
          gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Candidates kept after pruning ⌊r·m⌋ of the m below-mean ones, and their loss weights
    (None when no candidate is below the mean)."""
    mean = score[seen].mean() if bool(seen.any()) else torch.tensor(float("inf"))
    low = seen[cand] & (score[cand] < mean)
    li = low.nonzero().squeeze(1)
    drop = li[torch.randperm(len(li), generator=gen)[: math.floor(r * len(li))]]
    keep = torch.ones(len(cand), dtype=torch.bool)
    keep[drop] = False
    weight = torch.where(low, 1.0 / (1.0 - r), 1.0).float()
    return cand[keep], (weight[keep] if bool(low.any()) else None)


@SAMPLERS.register("infobatch")
class InfoBatch(EpochOrderSampler):
    tasks = ("classification", "retrieval")  # needs no class scores (tasks.py)
    wants_feedback = True

    class Settings(Settings):
        prune_ratio: float = Field(0.5, ge=0, lt=1, description="r: fraction of below-mean samples pruned")
        delta: float = Field(0.875, gt=0, le=1, description="prune only in the first delta of the epochs")

    def __init__(self, ctx: SamplerContext, settings: Settings):
        super().__init__(ctx, settings)
        # last losses on the training device: feedback never waits for it; an epoch's pruning reads them once
        self.score = torch.zeros(ctx.n, dtype=torch.float32, device=ctx.device)
        self.seen = torch.zeros(ctx.n, dtype=torch.bool, device=ctx.device)
        self.weight: torch.Tensor | None = None
        self.lengths = torch.zeros(0, dtype=torch.long)  # steps of each epoch begun so far

    def pruning(self, epoch: int) -> bool:
        """Epoch ``epoch`` prunes if it ends within the first δ of the E epochs."""
        return epoch + 1 <= self.settings.delta * self.ctx.budget.epochs + 1e-9 and self.settings.prune_ratio > 0

    def full_steps(self) -> int:
        return self.ctx.budget.steps_per_epoch

    def begin_epoch(self, epoch: int) -> int:
        cand = torch.randperm(self.ctx.n, generator=self.gen)[: self.ctx.budget.samples_per_epoch]
        self.weight = None
        if self.pruning(epoch):
            cand, self.weight = prune(cand, self.score.cpu(), self.seen.cpu(), self.settings.prune_ratio, self.gen)
        self.order = cand
        steps = self.ctx.budget.batches(len(cand))
        self.lengths = torch.cat([self.lengths, torch.tensor([steps])])
        return steps

    def next_batch(self, step_in_epoch: int, scorer: Scorer) -> Selection:
        b = self.ctx.batch_size
        sl = slice(step_in_epoch * b, (step_in_epoch + 1) * b)
        w = None if self.weight is None else to_device(self.weight[sl], self.ctx.device)
        return Selection(self.order[sl], w)

    def planned_steps(self) -> int:
        """Steps of the run: epochs begun so far plus an estimate of the remaining ones."""
        done, e_now = int(self.lengths.sum()), len(self.lengths) - 1
        last = int(self.lengths[-1]) if len(self.lengths) else self.full_steps()
        rest = sum(last if self.pruning(e) else self.full_steps()
                   for e in range(e_now + 1, self.ctx.budget.epochs))
        return done + rest

    def feedback(self, idx, loss, p_true, probs=None) -> None:
        idx = idx.to(self.score.device)  # on the device already (the batch's indices): no copy
        self.score[idx] = loss.detach().float()
        self.seen[idx] = True

    def state_dict(self) -> dict:
        return {**super().state_dict(), "score": self.score, "seen": self.seen, "lengths": self.lengths,
                "weight": self.weight if self.weight is not None else torch.empty(0)}

    def load_state_dict(self, sd: dict) -> None:
        super().load_state_dict(sd)
        self.score, self.seen = sd["score"].to(self.ctx.device), sd["seen"].to(self.ctx.device)
        self.lengths = sd["lengths"]
        self.weight = sd["weight"] if len(sd["weight"]) else None
