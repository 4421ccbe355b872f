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
1/sqrt(1 − ‖g − u‖²/‖g‖²), g the normalised scores and u uniform (as in the public code).

While τ ≤ τ_th the step is plain uniform SGD: B candidates from the stream, unweighted, with no
scoring forward; τ is updated from the scores of that batch's own training forward (its losses,
or ‖softmax − onehot‖₂ from its softmax, via ``feedback``), as the public code's conditional
start does, so the method costs no more than uniform until it switches on. Once on, each step
presamples P·B, scores them with a counted eval-mode forward, and τ follows those scores.

Unbiasedness needs per-sample losses that do not depend on the rest of the batch: with
train-mode BatchNorm the batch statistics depend on which samples were drawn (and on duplicates
of a with-replacement draw), so the weighted gradient is then no longer an unbiased estimate of
the full gradient. The cnn and preact-resnet18 have BatchNorm; linear and mlp do not.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from ..accel import to_device
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
    wants_feedback = True

    class Settings(Settings):
        presample: float = Field(3.0, gt=1, le=100, description="P: the presampled large batch is P·B")
        score: Literal["loss", "gradnorm-ub"] = "loss"
        tau_th: float | None = Field(None, ge=0, le=1e12, description="switch-on threshold; default (P·B+3B)/(3B)")
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
        self.uniform_step = True  # whether the current step's batch is a plain uniform one
        self.labels = to_device(ctx.labels, ctx.device)  # for gradnorm-ub scores, where the softmax is

    def begin_epoch(self, epoch: int) -> int:
        return self.ctx.budget.steps_per_epoch

    @property
    def on(self) -> bool:
        """Importance sampling switched on: τ above τ_th (τ_th = 0: always, from the first step)."""
        return self.tau > self.tau_th or self.tau_th == 0

    def scores(self, idx: torch.Tensor, loss: torch.Tensor, probs: torch.Tensor | None) -> torch.Tensor:
        """Importance scores of samples ``idx`` from their losses or softmax outputs, computed where
        they are and read to the host once (the draw and τ are host decisions: one sync per step)."""
        if self.settings.score == "loss":
            return loss.detach().double().cpu()
        onehot = torch.nn.functional.one_hot(self.labels[to_device(idx, probs.device)], probs.shape[1])
        return (probs.detach().double() - onehot).norm(dim=1).cpu()

    def update_tau(self, s: torch.Tensor) -> None:
        if bool(s.sum() > 0):
            m = self.settings.tau_momentum
            self.tau = m * self.tau + (1 - m) * variance_reduction(s)

    def next_batch(self, step_in_epoch: int, scorer: Scorer) -> Selection:
        b = self.ctx.batch_size
        self.uniform_step = not self.on
        if self.uniform_step:  # uniform SGD; τ is updated from this batch's training forward (feedback)
            return Selection(self.stream.take(b))
        cand = self.stream.take(self.large)
        out = scorer(cand, probs=True) if self.settings.score == "gradnorm-ub" else scorer(cand)
        s = self.scores(cand, out[0], out[-1])
        self.update_tau(s)
        if not bool(s.sum() > 0):
            return Selection(cand[:b])
        pos, w = importance_draw(s, b, self.gen)
        self.steps_on += 1
        return Selection(cand[pos], to_device(w, self.ctx.device))

    def feedback(self, idx, loss, p_true, probs=None) -> None:
        if self.uniform_step:  # the training batch was uniform: its scores keep τ current
            self.update_tau(self.scores(idx, loss, probs))

    def cost_per_step(self, unit: str) -> float:
        """Expected work of the next step: B while off, plus the P·B scoring forwards when on."""
        b = self.ctx.batch_size
        return self.large / 3 + b if unit == "forward_backward" and self.on else float(b)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "stream": self.stream.state_dict(), "tau": self.tau,
                "steps_on": self.steps_on}

    def load_state_dict(self, sd: dict) -> None:
        self.gen.set_state(sd["gen"])
        self.stream.load_state_dict(sd["stream"])
        self.tau, self.steps_on = float(sd["tau"]), int(sd["steps_on"])
