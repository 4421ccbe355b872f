"""Selective Backprop (Jiang et al., "Accelerating Deep Learning by Focusing on the Biggest
Losers", arXiv:1910.00762; public code angelajiang/SelectiveBackprop).

Every candidate gets a gradient-free forward pass (the loop's counted ``scorer``); its
loss is added to a history of the ``history`` most recent losses, and the candidate is
kept for backprop with probability P = percentile_rank(loss)^β, the rank being the
fraction of the history at or below the loss (β = 3 by default). Kept candidates queue up
and are handed to the loop in backward batches of exactly B; the loop's training step
forwards them again with gradients (as the public code does), so a kept sample costs a
scoring forward plus a training forward/backward.

Priming (as the reference ``SelectiveBackpropper``, whose ``PrimedSelector`` backpropagates
``num_images_to_prime`` = one epoch of images unselected before it starts selecting): the first
``prime_samples`` samples (default one budget epoch, ``budget.steps_per_epoch``·B; 0 = none)
are trained on as plain uniform batches. Selecting from the start, with a random model's
losses, costs a lot of accuracy at small budgets. During priming the reference still runs its
scoring forward (and discards it); we skip it, which changes nothing but the cost, and no loss
joins the history.

Choices where the paper is silent: candidates come from successive random permutations of
all N samples (``IndexStream``); a candidate batch of B is ranked after its B losses have
joined the history; a budget "epoch" is ``budget.steps_per_epoch`` backward batches, as for
``uniform``, so at equal optimizer steps both backprop the same number of samples while SB
forwards about (β+1)× as many after priming (E[U^β] = 1/(β+1) for uniform percentiles).

On a GPU each scoring pass reads its B losses to the host (one sync per pass): the keep test,
the loss history and the queue of kept candidates are host decisions.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..registry import Settings
from .base import SAMPLERS, SamplerContext, Scorer, Selection
from .weighted import IndexStream


def percentile_rank(history: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """Fraction of ``history`` at or below each loss (history must contain the losses)."""
    srt = torch.sort(history).values
    return torch.searchsorted(srt, loss, right=True).double() / len(srt)


@SAMPLERS.register("selective-backprop")
class SelectiveBackprop:
    wants_feedback = False

    class Settings(Settings):
        beta: float = Field(3.0, gt=0, le=1000, description="selectivity: P(keep) = percentile^beta")
        history: int = Field(1024, gt=0, le=10_000_000, description="number of recent losses that give the percentiles")
        prime_samples: int | None = Field(None, ge=0, le=10**12, description="samples trained on unselected first; "
                                          "default one budget epoch, 0 = no priming")

    def __init__(self, ctx: SamplerContext, settings: Settings):
        self.ctx, self.settings = ctx, settings
        self.gen = torch.Generator().manual_seed(ctx.seed)
        self.stream = IndexStream(ctx.n, self.gen)
        self.hist = torch.zeros(settings.history, dtype=torch.float32)
        self.hist_n = 0  # losses recorded so far (the ring buffer holds min(hist_n, history))
        self.pending = torch.empty(0, dtype=torch.long)
        p = settings.prime_samples
        self.prime = ctx.budget.steps_per_epoch * ctx.batch_size if p is None else p
        self.primed = 0  # samples handed out unselected so far

    def begin_epoch(self, epoch: int) -> int:
        return self.ctx.budget.steps_per_epoch

    def keep_probability(self, loss: torch.Tensor) -> torch.Tensor:
        """Record ``loss`` in the history; return percentile_rank(loss)^β for each."""
        h = self.settings.history
        loss = loss.detach().float().cpu()[-h:]
        pos = (self.hist_n + torch.arange(len(loss))) % h
        self.hist[pos] = loss
        self.hist_n += len(loss)
        return percentile_rank(self.hist[: min(self.hist_n, h)], loss) ** self.settings.beta

    def next_batch(self, step_in_epoch: int, scorer: Scorer) -> Selection:
        b = self.ctx.batch_size
        if self.primed < self.prime:  # priming: a plain uniform batch, no scoring forward
            cand = self.stream.take(b)
            self.primed += len(cand)
            return Selection(cand)
        while len(self.pending) < b:
            cand = self.stream.take(b)
            loss, _ = scorer(cand)
            keep = torch.rand(len(cand), generator=self.gen, dtype=torch.float64) < self.keep_probability(loss)
            self.pending = torch.cat([self.pending, cand[keep]])
        out, self.pending = self.pending[:b], self.pending[b:]
        return Selection(out)

    def feedback(self, idx, loss, p_true, probs=None) -> None:
        pass

    def cost_per_step(self, unit: str) -> float:
        """Expected work of the next optimizer step, for planning the LR schedule up front."""
        b = self.ctx.batch_size
        if unit == "forward_backward" and self.primed >= self.prime:
            # (β+1)·B scoring forwards at 1/3 + B training steps at 1
            return b * (self.settings.beta + 1) / 3 + b
        return float(b)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "stream": self.stream.state_dict(), "hist": self.hist,
                "hist_n": self.hist_n, "pending": self.pending, "primed": self.primed}

    def load_state_dict(self, sd: dict) -> None:
        self.gen.set_state(sd["gen"])
        self.stream.load_state_dict(sd["stream"])
        self.hist, self.hist_n, self.pending = sd["hist"], int(sd["hist_n"]), sd["pending"]
        self.primed = int(sd["primed"])
