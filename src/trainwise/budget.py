"""Budgets and budget-aware learning-rate schedules (Arazo et al., "How Important is
Importance Sampling for Deep Budgeted Training?", BMVC 2021, arXiv:2110.14283, section 3;
Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020).

A full schedule is E epochs over N samples with batch B: S = E * ceil(N / B) optimizer
steps. A budget b in (0, 1] allows floor(b * S) steps. Each epoch visits floor(b * N)
samples, so the run still has E epochs (the last one may be cut at the step limit).
The learning-rate schedule is laid over exactly the budgeted steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Budget:
    epochs: int
    batch_size: int
    n_train: int
    fraction: float = 1.0

    def __post_init__(self):
        if not (0 < self.fraction <= 1):
            raise ConfigError(f"budget {self.fraction} is outside (0, 1]; use a fraction like 0.3")
        if self.total_steps < 1 or self.samples_per_epoch < 1:
            raise ConfigError(
                f"impossible budget {self.fraction}: {self.epochs} epochs of {self.n_train} samples "
                f"at batch {self.batch_size} leave {self.total_steps} optimizer steps; "
                "raise the budget or the number of epochs"
            )

    @property
    def steps_per_full_epoch(self) -> int:
        return math.ceil(self.n_train / self.batch_size)

    @property
    def full_steps(self) -> int:
        return self.epochs * self.steps_per_full_epoch

    @property
    def total_steps(self) -> int:
        return math.floor(self.fraction * self.full_steps + 1e-9)

    @property
    def samples_per_epoch(self) -> int:
        return math.floor(self.fraction * self.n_train + 1e-9)


def lr_at(step: int, total_steps: int, lr0: float, name: str = "linear", **s) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of a run of ``total_steps``.

    - ``linear``: linear decay from lr0 to ``final_lr`` (1e-6) over the budgeted steps.
    - ``step``: lr0 multiplied by ``gamma`` (0.1) at each of ``milestones`` (fractions of the budget).
    - ``cosine``: cosine decay from lr0 to ``final_lr``.
    - ``onecycle``: linear warm-up over ``warmup`` (0.1) of the budget, then cosine decay.
    Every schedule accepts ``warmup`` (fraction of the budget, linear ramp from 0).
    """
    final = s.get("final_lr", 1e-6)
    warmup = s.get("warmup", 0.1 if name == "onecycle" else 0.0)
    t = step / max(total_steps, 1)
    w_steps = warmup * total_steps
    if w_steps > 0 and step < w_steps:
        return lr0 * (step + 1) / w_steps
    if w_steps > 0:  # progress over the post-warm-up part
        t = (step - w_steps) / max(total_steps - w_steps, 1)
    if name == "linear":
        return lr0 + (final - lr0) * t
    if name in ("cosine", "onecycle"):
        return final + 0.5 * (lr0 - final) * (1 + math.cos(math.pi * t))
    if name == "step":
        milestones = s.get("milestones", [0.5, 0.75])
        gamma = s.get("gamma", 0.1)
        return lr0 * gamma ** sum(t >= m for m in milestones)
    if name == "constant":
        return lr0
    raise ConfigError(f"unknown schedule {name!r}; allowed: linear, step, cosine, onecycle, constant")
