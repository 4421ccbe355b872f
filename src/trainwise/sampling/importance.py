"""Unbiased importance sampling (Katharopoulos & Fleuret, "Not All Samples Are Created Equal:
Deep Learning with Importance Sampling", ICML 2018, arXiv:1803.00942; public code
idiap/importance-sampling).

Each step presamples P·B candidates uniformly (successive random permutations of the data,
``IndexStream``), scores them with the loop's counted gradient-free forward — by their loss
(``score: loss``) or by the gradient-norm upper bound ‖softmax(z) − onehot(y)‖₂
(``score: gradnorm-ub``) — and draws B of them *with replacement* with p_i ∝ score_i. Each
drawn loss is weighted by 1/(P·B·p_i), so the weighted batch mean is an unbiased estimate of
the presample's mean gradient, itself unbiased for the full gradient.

Importance sampling is switched on only while the estimated variance reduction τ exceeds
τ_th = (P·B + 3B)/(3B) (the paper's eq. 29 with large batch P·B and small batch B; 2 for
P = 3). τ is tracked as an exponential moving average (``tau_momentum``) of
1/sqrt(1 − ‖g − u‖²/‖g‖²), g the normalised scores of the presample and u uniform (as in
the public code). While τ ≤ τ_th the first B presampled candidates are used unweighted
(uniform sampling); the presample is still scored, to keep τ up to date.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from ..registry import Settings
from .base import SAMPLERS, SamplerContext, Scorer, Selection
from .weighted import IndexStream, sample_with_replacement


def variance_reduction(scores: torch.Tensor) -> float:
    """The public code's estimate of the variance reduction of sampling ∝ ``scores``."""
    g = scores.double() / scores.sum()
    u = 1.0 / len(g)
    ratio = ((g - u) ** 2).sum() / (g**2).sum()
    return float(1.0 / torch.sqrt((1 - ratio).clamp_min(1e-12)))


def importance_draw(scores: torch.Tensor, k: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` positions drawn with replacement ∝ ``scores`` and their weights 1/(n·p_i)."""
    p = scores.double() / scores.sum()
    pos = sample_with_replacement(p, k, gen)
    return pos, (1.0 / (len(p) * p[pos])).float()


@SAMPLERS.register("importance")
class Importance:
    wants_feedback = False

    class Settings(Settings):
        presample: float = Field(3.0, gt=1, description="P: the presampled large batch is P·B")
        score: Literal["loss", "gradnorm-ub"] = "loss"
        tau_th: float | None = Field(None, ge=0, description="switch-on threshold; default (P·B+3B)/(3B)")
        tau_momentum: float = Field(0.9, ge=0, lt=1)

    def __init__(self, ctx: SamplerContext, settings: Settings):
        self.ctx, self.settings = ctx, settings
        self.gen = torch.Generator().manual_seed(ctx.seed)
        self.stream = IndexStream(ctx.n, self.gen)
        b = ctx.batch_size
        self.large = max(b, round(settings.presample * b))
        self.tau_th = settings.tau_th if settings.tau_th is not None else (self.large + 3 * b) / (3 * b)
        self.tau = 0.0
        self.steps_on = 0  # optimizer steps taken with importance sampling switched on

    def begin_epoch(self, epoch: int) -> int:
        return math.ceil(self.ctx.budget.samples_per_epoch / self.ctx.batch_size)

    def score(self, cand: torch.Tensor, scorer: Scorer) -> torch.Tensor:
        if self.settings.score == "loss":
            return scorer(cand)[0].detach().double().cpu()
        _, _, probs = scorer(cand, probs=True)
        onehot = torch.nn.functional.one_hot(self.ctx.labels[cand], probs.shape[1])
        return (probs.detach().double().cpu() - onehot).norm(dim=1)

    def next_batch(self, step_in_epoch: int, scorer: Scorer) -> Selection:
        b = self.ctx.batch_size
        cand = self.stream.take(self.large)
        s = self.score(cand, scorer)
        if not bool(s.sum() > 0):
            return Selection(cand[:b])
        m = self.settings.tau_momentum
        self.tau = m * self.tau + (1 - m) * variance_reduction(s)
        if self.tau <= self.tau_th:
            return Selection(cand[:b])
        pos, w = importance_draw(s, b, self.gen)
        self.steps_on += 1
        return Selection(cand[pos], w.to(self.ctx.device))

    def feedback(self, idx, loss, p_true) -> None:
        pass

    def cost_per_step(self, unit: str) -> float:
        b = self.ctx.batch_size
        return self.large / 3 + b if unit == "forward_backward" else float(b)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "stream": self.stream.state_dict(), "tau": self.tau,
                "steps_on": self.steps_on}

    def load_state_dict(self, sd: dict) -> None:
        self.gen.set_state(sd["gen"])
        self.stream.load_state_dict(sd["stream"])
        self.tau, self.steps_on = float(sd["tau"]), int(sd["steps_on"])
