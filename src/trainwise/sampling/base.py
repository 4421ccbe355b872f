"""The ``Sampler`` protocol: which sample indices each optimizer step uses.

The training loop calls, in order:

- ``begin_epoch(epoch) -> steps``: plan epoch ``epoch`` (0-based); return its number of steps
  (``ctx.budget.batches(n)`` for an epoch of n samples: a partial batch is dropped by default).
- ``next_batch(step_in_epoch, scorer) -> Selection``: the indices (and optional loss weights)
  of the next optimizer step. ``scorer(idx)`` runs a counted, gradient-free forward pass and
  returns per-sample (loss, p_true) for samplers that choose by the model's current view.
  Samplers with ``wants_lookahead = True`` (max-loss-delta) are called as
  ``next_batch(step_in_epoch, scorer, lookahead=lookahead)``: ``lookahead(candidates, probe=None,
  mode="eval") -> (before, after)`` takes, for each candidate index batch, the loss, one real
  optimizer step on the loop's model and optimizer (at this step's learning rate), and the loss
  again (on the candidate, or on the ``probe`` indices), then restores model, optimizer state,
  BatchNorm buffers, gradients and RNG bit for bit (``trainwise/lookahead.py``). Its forwards and
  backwards are counted like the scorer's, and nothing of a trial leaks into the real run.
  Samplers with ``wants_gradstats = True`` (gradient-clustering) get, once before the first epoch,
  ``attach(probe)``: a ``trainwise.gradstats.GradStats`` whose ``factors(idx)`` returns the
  per-example rank-1 gradient factors of every Linear/Conv2d weight (eval mode, counted).
- ``feedback(idx, loss, p_true, probs)``: per-sample results of the training forward pass
  (``probs`` is the softmax, B x C), for samplers with ``wants_feedback = True``.
- ``state_dict()`` / ``load_state_dict(sd)``: everything needed to resume exactly (tensors and
  plain Python values only, so checkpoints load with ``weights_only=True``).

Optional hooks the loop uses for ``train.budget_unit`` (see ``train.py``): ``planned_steps()``,
the run's total steps when the sampler sets them itself (InfoBatch's shrinking epochs), and
``cost_per_step(unit)``, the expected work of one step, to plan the LR schedule up front, and
``reserved_work(unit)``, one-off work still to come (gradient-clustering's snapshots), taken off the
work left when the steps are planned.
The gradient-variance meter (``gradstats/meter.py``) draws batches from any sampler between steps and
restores it with ``load_state_dict``: a sampler's state must be all in its ``state_dict``.

Samplers get a ``SamplerContext`` describing the data and the budget. ``tasks`` (a class
attribute, default classification only) names the tasks a sampler works for (``trainwise/tasks.py``):
retrieval has no p(true class) and no cross-entropy scorer, so only samplers that need neither
(``uniform``, ``infobatch``: loss feedback) declare it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from ..budget import Budget
from ..registry import Registry, Settings

PICK_SEED_OFFSET = 0x9E3779B9  # orderers' candidate-draw generator: seed + this (apart from the epoch order's)

Scorer = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# candidates (list of index tensors), probe, mode -> (loss before, loss after) per candidate
Lookahead = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Selection:
    idx: torch.Tensor
    weight: torch.Tensor | None = None  # per-sample loss weights; None means plain mean


@dataclass
class SamplerContext:
    budget: Budget
    seed: int
    labels: torch.Tensor  # training labels (on CPU), for samplers that stratify
    device: torch.device

    @property
    def n(self) -> int:
        return self.budget.n_train

    @property
    def batch_size(self) -> int:
        return self.budget.batch_size


class Sampler(Protocol):
    name: str

    def begin_epoch(self, epoch: int) -> int: ...

    def next_batch(self, step_in_epoch: int, scorer: Scorer) -> Selection: ...

    def feedback(self, idx: torch.Tensor, loss: torch.Tensor, p_true: torch.Tensor,
                 probs: torch.Tensor | None = None) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, sd: dict) -> None: ...


class EpochOrderSampler:
    """Base for samplers that fix an epoch's order up front and then walk it in batches.

    Subclasses implement ``plan_epoch(epoch) -> LongTensor`` of the indices to visit.
    The planned order is part of the state, so a resumed run continues mid-epoch exactly.
    """

    Settings = Settings

    def __init__(self, ctx: SamplerContext, settings: Settings):
        self.ctx = ctx
        self.settings = settings
        self.gen = torch.Generator().manual_seed(ctx.seed)
        self.order = torch.empty(0, dtype=torch.long)

    def plan_epoch(self, epoch: int) -> torch.Tensor:
        raise NotImplementedError

    def begin_epoch(self, epoch: int) -> int:
        self.order = self.plan_epoch(epoch)
        return self.ctx.budget.batches(len(self.order))

    def next_batch(self, step_in_epoch: int, scorer: Scorer) -> Selection:
        b = self.ctx.batch_size
        return Selection(self.order[step_in_epoch * b : (step_in_epoch + 1) * b])

    def feedback(self, idx, loss, p_true, probs=None) -> None:
        pass

    def state_dict(self) -> dict:
        return {"order": self.order, "gen": self.gen.get_state()}

    def load_state_dict(self, sd: dict) -> None:
        self.order = sd["order"]
        self.gen.set_state(sd["gen"])


SAMPLERS = Registry("sampler")
