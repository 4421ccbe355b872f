"""Max-loss-delta batch ordering, a greedy one-step look-ahead: one of the two Perfect Ordering
Approximation samplers (Simionescu, "Deep Learning Training Procedure Augmentations",
arXiv:2211.14395, the curriculum chapter; public code Tensor-Reloaded/Convergence,
``orderers/MaxLossDeltaOrderer.py``).

Each epoch splits the ⌊b·N⌋ samples of a random permutation (the very permutation ``uniform``
would draw for the same seed) into fixed batches of B. At each step, min(``attempts``, batches
left) of the unused batches are drawn at random; for each, the loop's ``lookahead`` takes the
loss, one real optimizer step, and the loss again, then restores model, optimizer state and
BatchNorm buffers (snapshots in preallocated buffers, ``trainwise/lookahead.py``). The batch
with the largest Δ = before − after (``delta: absolute``, the reference's setting) or
(before − after)/before (``relative``) is trained on. With one batch left it is taken as it lies.

- ``mode: eval`` (default, as the reference) takes the trial steps with the model in eval mode:
  BatchNorm normalises with its running statistics; ``train`` uses batch statistics.
- ``probe: candidate`` (default) measures both losses on the candidate itself; ``probe: train``
  measures them on ``probe_size`` training samples drawn afresh each epoch (the reference's
  "static batch" is drawn from the *test* set, which would leak test data into training
  decisions; we never do that).

Cost per scored step with c candidates: c trial steps (a forward and backward each) plus c loss
forwards, so c·B·(1 + 1/3) of ``forward_backward`` work with ``probe: candidate``, or
c·(B + P/3) + P/3 with a probe of P, on top of the B of the real step. The trial steps use this
step's learning rate. The reference evaluates the candidates in an order drawn with Python's
``random`` and keeps the last of tied maxima; we draw with our own generator (apart from the
epoch permutation's) and keep the first. The trial batches are the clean samples: the loop's
augmentations apply to the real step only.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from ..registry import Settings
from .base import PICK_SEED_OFFSET, SAMPLERS, Lookahead, SamplerContext, Scorer, Selection
from .uniform import Uniform


def loss_delta(before: torch.Tensor, after: torch.Tensor, kind: str) -> torch.Tensor:
    """How much one step lowered the loss: ``before − after``, or relative to ``before``."""
    d = before - after
    if kind == "absolute":
        return d
    return torch.nan_to_num(d / before, nan=-torch.inf)  # 0/0: no candidate worth taking


@SAMPLERS.register("max-loss-delta")
class MaxLossDelta(Uniform):  # uniform's epoch split into batches, in another order
    wants_feedback = False
    tasks = ("classification",)  # scores candidates with cross-entropy
    wants_lookahead = True

    class Settings(Settings):
        attempts: int = Field(8, ge=1, le=4096, description="A: candidate batches tried per step")
        delta: Literal["absolute", "relative"] = Field("absolute", description="before - after, or divided by before")
        mode: Literal["eval", "train"] = Field("eval", description="model mode of the trial steps "
                                               "(eval: as the reference)")
        probe: Literal["candidate", "train"] = Field("candidate", description="measure the loss on the candidate, "
                                                     "or on probe_size training samples drawn each epoch")
        probe_size: int = Field(128, ge=1, le=1_000_000, description="samples of probe: train (the "
                                "reference's static_batch_size)")

    def __init__(self, ctx: SamplerContext, settings: Settings):
        super().__init__(ctx, settings)
        self.pick = torch.Generator().manual_seed(ctx.seed + PICK_SEED_OFFSET)
        self.left = torch.empty(0, dtype=torch.long)  # batch numbers of this epoch not used yet
        self.probe_idx = torch.empty(0, dtype=torch.long)

    def begin_epoch(self, epoch: int) -> int:
        steps = super().begin_epoch(epoch)
        self.left = torch.arange(steps)
        if self.settings.probe == "train":
            self.probe_idx = torch.randperm(self.ctx.n, generator=self.pick)[: self.settings.probe_size]
        return steps

    def batch(self, k: int) -> torch.Tensor:
        b = self.ctx.batch_size
        return self.order[k * b : (k + 1) * b]

    def next_batch(self, step_in_epoch: int, scorer: Scorer, lookahead: Lookahead | None = None) -> Selection:
        if len(self.left) >= 2:
            if lookahead is None:
                raise RuntimeError("max-loss-delta needs the training loop's lookahead")
            tried = torch.randperm(len(self.left), generator=self.pick)[: self.settings.attempts]
            probe = self.probe_idx if self.settings.probe == "train" else None
            before, after = lookahead([self.batch(int(self.left[t])) for t in tried], probe, self.settings.mode)
            chosen = int(tried[int(torch.argmax(loss_delta(before, after, self.settings.delta)))])
        else:
            chosen = 0
        k = int(self.left[chosen])
        self.left = torch.cat([self.left[:chosen], self.left[chosen + 1 :]])
        return Selection(self.batch(k))

    def cost_per_step(self, unit: str) -> float:
        """Expected work of a scored step (``forward_backward``): the real step and the trials."""
        b, st = self.ctx.batch_size, self.settings
        if unit != "forward_backward":
            return float(b)
        c = min(st.attempts, max(self.ctx.budget.steps_per_epoch, 1))
        if st.probe == "train":
            return b + c * (b + st.probe_size / 3) + st.probe_size / 3
        return b + c * b * 4 / 3

    def state_dict(self) -> dict:
        return {**super().state_dict(), "pick": self.pick.get_state(), "left": self.left, "probe": self.probe_idx}

    def load_state_dict(self, sd: dict) -> None:
        super().load_state_dict(sd)
        self.pick.set_state(sd["pick"])
        self.left, self.probe_idx = sd["left"], sd["probe"]
