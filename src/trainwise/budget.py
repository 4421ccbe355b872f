"""Budgets and budget-aware learning-rate schedules (Arazo et al., "How Important is
Importance Sampling for Deep Budgeted Training?", BMVC 2021, arXiv:2110.14283, section 3;
Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020).

A budget b in (0, 1] keeps the E epochs of the full schedule but each epoch visits only
n_b = floor(b * N) samples (the paper: an epoch keeps its length in time, not in samples).
With ``drop_last`` (the default, as the reference code's DataLoader) an epoch is
floor(n_b / B) optimizer steps and a partial last batch is dropped; without it, ceil(n_b / B).
The run is exactly E such epochs: E * floor(n_b / B) ~ b * S steps, where S = E * floor(N / B)
is the full schedule. The learning-rate schedule is laid over exactly the budgeted steps and
reaches ``final_lr`` at the last one (the reference's ``np.linspace(lr0, 1e-6, steps)``).
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
    drop_last: bool = True

    def __post_init__(self):
        if not (0 < self.fraction <= 1):
            raise ConfigError(f"budget {self.fraction} is outside (0, 1]; use a fraction like 0.3")
        if self.total_steps < 1 or self.samples_per_epoch < 1:
            raise ConfigError(
                f"impossible budget {self.fraction}: epochs of {self.samples_per_epoch} of the "
                f"{self.n_train} samples at batch {self.batch_size} leave {self.total_steps} optimizer steps"
                + (" (train.drop_last drops a partial batch)" if self.drop_last else "")
                + "; raise the budget or lower the batch size"
            )

    def batches(self, n: int) -> int:
        """Optimizer steps an epoch of ``n`` samples takes."""
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def steps_per_full_epoch(self) -> int:
        return self.batches(self.n_train)

    @property
    def full_steps(self) -> int:
        return self.epochs * self.steps_per_full_epoch

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps of one budgeted epoch (of ``samples_per_epoch`` samples)."""
        return self.batches(self.samples_per_epoch)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def samples_per_epoch(self) -> int:
        return math.floor(self.fraction * self.n_train + 1e-9)


def lr_at(step: int, total_steps: int, lr0: float, name: str = "linear", **s) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of a run of ``total_steps``.

    - ``linear``: linear decay from lr0 at step 0 to ``final_lr`` (1e-6) at the last step.
    - ``step``: lr0 multiplied by ``gamma`` (0.1) at each of ``milestones`` (fractions of the budget).
    - ``cosine``: cosine decay from lr0 to ``final_lr`` at the last step.
    - ``onecycle``: linear warm-up over ``warmup`` (0.1) of the budget, then cosine decay.
    Every schedule accepts ``warmup`` (fraction of the budget, linear ramp from 0).
    """
    final = s.get("final_lr", 1e-6)
    warmup = s.get("warmup", 0.1 if name == "onecycle" else 0.0)
    w_steps = warmup * total_steps
    if w_steps > 0 and step < w_steps:
        return lr0 * (step + 1) / w_steps
    first = math.ceil(w_steps - 1e-9)  # the first step after the warm-up
    t = min((step - first) / max(total_steps - 1 - first, 1), 1.0)  # 0 at that step, 1 at the last
    if name == "linear":
        return lr0 + (final - lr0) * t
    if name in ("cosine", "onecycle"):
        return final + 0.5 * (lr0 - final) * (1 + math.cos(math.pi * t))
    if name == "step":
        t = step / max(total_steps, 1)  # milestones are fractions of the budget
        milestones = s.get("milestones", [0.5, 0.75])
        gamma = s.get("gamma", 0.1)
        return lr0 * gamma ** sum(t >= m for m in milestones)
    if name == "constant":
        return lr0
    raise ConfigError(f"unknown schedule {name!r}; allowed: linear, step, cosine, onecycle, constant")
