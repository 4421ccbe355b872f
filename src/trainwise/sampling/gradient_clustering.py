"""Gradient clustering (GC): stratified sampling over clusters of per-example gradients (Faghri,
Duvenaud, Fleet & Ba, "A Study of Gradient Variance in Deep Learning", arXiv:2007.04532; public code
fartashf/gvar_code, ``gluster/``, ``estim/gluster.py``, ``data.py`` ``GlusterSampler``).

- Epoch 0 is plain uniform SGD (the very permutation ``uniform`` draws for the same seed): the
  reference starts GC after an epoch.
- A **snapshot** at the start of epoch 1 and then every ``snapshot_every`` epochs (1, 1 + k,
  1 + 2k, …) clusters the whole training set (all N samples, whatever the budget fraction):
  ``em_iters`` EM iterations of assign / split / update with rank-1 centres
  (``trainwise/gradstats/cluster.py``), each one pass of forward+backward in eval mode over the N
  samples, ``snapshot_batch`` at a time, plus the half cluster a split moves. The centres carry
  over from one snapshot to the next.
- Between snapshots each step draws B samples cycling through the M non-empty clusters, and
  weights each loss by M·N_k/N (``gradstats/stratified.py``): the weighted mini-batch gradient is
  an unbiased estimate of the full gradient, and its variance is small when the clusters are tight.

The loop gives the sampler its per-example passes through ``attach(probe)`` (a
``trainwise.gradstats.GradStats``; ``wants_gradstats = True``). Without one (the sampler built on
its own) it stays uniform.

Budget: each snapshot sample is a forward and a backward, counted in samples forwarded and
backpropagated. ``budget_unit: steps`` counts optimizer steps only, so snapshots are not charged
(as the scoring passes of other samplers are not); ``backprop_samples`` and ``forward_backward``
charge them (one unit per sample in both: one backward, or a forward 1/3 plus a backward 2/3).
There the loop reserves the work of the snapshots still to come (``reserved_work``) when it lays
out the LR schedule, and a snapshot that would leave less than one step of budget is skipped.

Classification only: the per-example gradients are those of the run's loss on one-hot targets of
the labels. Choices where the paper is silent: em_iters defaults to 2 (the reference: 10 passes per
snapshot, each an assign pass and an update pass), one snapshot per epoch; the reference's running
assignment counts, one split per pass and zero centres for empty clusters are kept.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..accel import to_device
from ..gradstats.cluster import em_iteration, init_centres
from ..gradstats.stratified import StratifiedCycle
from ..registry import Settings
from .base import SAMPLERS, SamplerContext, Scorer, Selection


@SAMPLERS.register("gradient-clustering")
class GradientClustering:
    wants_feedback = False
    wants_gradstats = True

    class Settings(Settings):
        clusters: int = Field(10, ge=1, le=100_000, description="C: number of gradient clusters")
        snapshot_every: int = Field(1, ge=1, le=100_000, description="epochs between snapshots (re-clustering); "
                                    "the first is at the start of epoch 1")
        em_iters: int = Field(2, ge=1, le=1000, description="EM passes over the training set per snapshot")
        min_size: int = Field(1, ge=0, le=10**9, description="a cluster smaller than this gets half of the "
                              "cluster of largest distortion (one split per pass)")
        snapshot_batch: int = Field(256, ge=1, le=65_536, description="samples per forward/backward of a "
                                    "snapshot pass")

    def __init__(self, ctx: SamplerContext, settings: Settings):
        self.ctx, self.settings = ctx, settings
        self.gen = torch.Generator().manual_seed(ctx.seed)
        self.probe = None
        self.order = torch.empty(0, dtype=torch.long)  # epoch 0's uniform order
        self.cycle: StratifiedCycle | None = None
        self.centres: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        self.epoch = -1
        self.drawn = 0  # samples handed out for training, all epochs
        self.epoch_drawn = 0
        self.snapshot_samples = 0  # samples forwarded and backpropagated by snapshots so far
        self.last_snapshot = 0  # samples of the last snapshot (the estimate of the next one's)
        self.snapshots = 0

    def attach(self, probe) -> None:
        self.probe = probe

    # ---- epochs and snapshots
    def snapshot_epoch(self, epoch: int) -> bool:
        return epoch >= 1 and (epoch - 1) % self.settings.snapshot_every == 0

    def epoch_samples(self) -> int:
        """Samples an epoch trains on (a dropped partial batch excluded)."""
        return min(self.ctx.budget.samples_per_epoch, self.ctx.budget.steps_per_epoch * self.ctx.batch_size)

    def snapshot_cost(self) -> int:
        return self.last_snapshot or self.settings.em_iters * self.ctx.n

    def work_left(self) -> int:
        """Budget left (samples of forward+backward) in the charged units, by this sampler's accounting."""
        return self.ctx.budget.total_steps * self.ctx.batch_size - self.drawn - self.snapshot_samples

    def affordable(self, left: int) -> bool:
        return left > self.snapshot_cost() + self.ctx.batch_size

    def begin_epoch(self, epoch: int) -> int:
        self.epoch, self.epoch_drawn = epoch, 0
        p = self.probe
        if (p is not None and not p.paused and self.snapshot_epoch(epoch)
                and (not p.charged or self.affordable(self.work_left()))):
            self.snapshot()
        if self.cycle is None:
            self.order = torch.randperm(self.ctx.n, generator=self.gen)[: self.ctx.budget.samples_per_epoch]
            return self.ctx.budget.batches(len(self.order))
        return self.ctx.budget.steps_per_epoch

    def snapshot(self) -> None:
        p, st = self.probe, self.settings
        done = 0

        def factors_of(idx):
            nonlocal done
            done += len(idx)
            return p.factors(idx)

        if self.centres is None:
            self.centres = init_centres(p.dims, st.clusters, self.gen)
        ci, co = ([c.to(p.device) for c in cs] for cs in self.centres)
        for _ in range(st.em_iters):
            assign, _, _, ci, co = em_iteration(factors_of, p.n, ci, co, st.min_size, self.gen, st.snapshot_batch)
        self.centres = (ci, co)
        self.cycle = StratifiedCycle(assign, st.clusters, self.gen)
        self.snapshots += 1
        self.snapshot_samples += done
        self.last_snapshot = done

    # ---- draws
    def next_batch(self, step_in_epoch: int, scorer: Scorer) -> Selection:
        b = self.ctx.batch_size
        k = min(b, self.ctx.budget.samples_per_epoch - step_in_epoch * b)
        self.drawn += k
        self.epoch_drawn += k
        if self.cycle is None:
            return Selection(self.order[step_in_epoch * b : step_in_epoch * b + k])
        idx, w = self.cycle.draw(k, self.gen)
        return Selection(idx, to_device(w, self.ctx.device))

    def feedback(self, idx, loss, p_true, probs=None) -> None:
        pass

    def reserved_work(self, unit: str) -> float:
        """Work (samples of forward+backward) of the snapshots still to come within the budget, for
        the loop's LR plan in the charged units; 0 in ``steps``."""
        if unit == "steps":
            return 0.0
        spe = self.epoch_samples()
        left = self.work_left() - (spe - self.epoch_drawn if self.epoch >= 0 else 0)
        reserved, e = 0, self.epoch + 1
        while left > 0:
            if self.snapshot_epoch(e) and self.affordable(left):
                left -= self.snapshot_cost()
                reserved += self.snapshot_cost()
            left -= spe
            e += 1
        return float(reserved)

    # ---- resume
    def state_dict(self) -> dict:
        ci, co = self.centres if self.centres is not None else ([], [])
        return {"gen": self.gen.get_state(), "order": self.order, "ci": ci, "co": co,
                "cycle": self.cycle.state_dict() if self.cycle is not None else {},
                "epoch": self.epoch, "drawn": self.drawn, "epoch_drawn": self.epoch_drawn,
                "snapshot_samples": self.snapshot_samples, "last_snapshot": self.last_snapshot,
                "snapshots": self.snapshots}

    def load_state_dict(self, sd: dict) -> None:
        self.gen.set_state(sd["gen"])
        self.order = sd["order"]
        self.centres = (list(sd["ci"]), list(sd["co"])) if len(sd["ci"]) else None
        self.cycle = StratifiedCycle.from_state(sd["cycle"]) if sd["cycle"] else None
        self.epoch, self.drawn, self.epoch_drawn = int(sd["epoch"]), int(sd["drawn"]), int(sd["epoch_drawn"])
        self.snapshot_samples, self.last_snapshot = int(sd["snapshot_samples"]), int(sd["last_snapshot"])
        self.snapshots = int(sd["snapshots"])
