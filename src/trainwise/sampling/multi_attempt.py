"""Multi-attempt batch ordering, easy first: one of the two Perfect Ordering Approximation
samplers (Simionescu, "Deep Learning Training Procedure Augmentations", arXiv:2211.14395, the
curriculum chapter; public code Tensor-Reloaded/Convergence, ``orderers/MultiAttemptOrderer.py``).

Each epoch starts from the ⌊b·N⌋ samples of a random permutation (the very permutation
``uniform`` would draw for the same seed). At each step, ``attempts`` = A candidate batches of B
are drawn uniformly, independently of each other, from the samples not yet used this epoch;
each candidate is scored with a counted, gradient-free eval-mode forward (the loop's
``scorer``), and the candidate with the lowest mean loss is trained on and leaves the pool. So
each epoch is still a partition of its samples; only their grouping and order change. When
fewer than two full batches are left, the next batch is taken as it lies, without scoring (as
the reference). Cost: A·B scoring forwards per step, 1 + A/3 training steps of work in the
``forward_backward`` unit.

Where we differ from the reference code: it draws candidate *positions* among the remaining
samples and then indexes the dataset with those positions instead of the remaining samples'
indices, so its epochs are not partitions after the first step; we draw from the remaining
indices, as the thesis describes. Ties go to the first candidate drawn (the reference's strict
``<``). Candidate draws use a generator of their own, so the epoch permutations stay those of
``uniform`` whatever the scores.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..registry import Settings
from .base import PICK_SEED_OFFSET, SAMPLERS, SamplerContext, Scorer, Selection
from .uniform import Uniform


def draw_candidates(pool_size: int, attempts: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """``attempts`` x ``batch`` positions in ``range(pool_size)``: each row a uniform draw of
    ``batch`` distinct positions, the rows independent (random keys, the ``batch`` smallest)."""
    keys = torch.rand(attempts, pool_size, generator=gen)
    return keys.topk(batch, dim=1, largest=False, sorted=True).indices


def easiest(mean_losses: torch.Tensor) -> int:
    """Index of the lowest mean loss (the first one on ties)."""
    return int(torch.argmin(mean_losses))


@SAMPLERS.register("multi-attempt")
class MultiAttempt(Uniform):  # uniform's epoch, in another order
    wants_feedback = False
    tasks = ("classification",)  # scores candidates with cross-entropy

    class Settings(Settings):
        attempts: int = Field(8, ge=1, le=4096, description="A: candidate batches scored per step (the "
                              "reference's nr_attempts; its runs used 8 to 64)")

    def __init__(self, ctx: SamplerContext, settings: Settings):
        super().__init__(ctx, settings)
        self.pick = torch.Generator().manual_seed(ctx.seed + PICK_SEED_OFFSET)
        self.pool = torch.empty(0, dtype=torch.long)  # the samples of this epoch not used yet

    def begin_epoch(self, epoch: int) -> int:
        steps = super().begin_epoch(epoch)
        self.pool = self.order.clone()
        return steps

    def next_batch(self, step_in_epoch: int, scorer: Scorer) -> Selection:
        b, m = self.ctx.batch_size, len(self.pool)
        if m < 2 * b:  # the last batch (or a partial one): as it lies, unscored
            out, self.pool = self.pool[:b], self.pool[b:]
            return Selection(out)
        pos = draw_candidates(m, self.settings.attempts, b, self.pick)
        # one scoring forward per candidate (a batch of B): one of A·B samples runs slower per
        # sample on a CPU (cache), and B is the batch size the run was tuned for
        mean = torch.stack([scorer(self.pool[p])[0].detach().double().mean() for p in pos])
        best = pos[easiest(mean.cpu())]  # one host sync per step
        keep = torch.ones(m, dtype=torch.bool)
        keep[best] = False
        out, self.pool = self.pool[best], self.pool[keep]
        return Selection(out)

    def cost_per_step(self, unit: str) -> float:
        """Expected work of a step: B training plus, in ``forward_backward``, A·B scoring forwards."""
        b = self.ctx.batch_size
        return b + self.settings.attempts * b / 3 if unit == "forward_backward" else float(b)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "pick": self.pick.get_state(), "pool": self.pool}

    def load_state_dict(self, sd: dict) -> None:
        super().load_state_dict(sd)
        self.pick.set_state(sd["pick"])
        self.pool = sd["pool"]
