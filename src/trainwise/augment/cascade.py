"""Schedules of the number K of summed inputs in Cascading Sum Augmentation (Simionescu,
"Deep Learning Training Procedure Augmentations", arXiv:2211.14395; public code
Tensor-Reloaded/Cascading-Sum-Augmentation). Plain functions of the step; the transform in
``cascading_sum.py`` applies them.

- ``cascade``: K halves from K0 down to 1 (K0, K0//2, ..., 1). Stage i ends at a validation
  plateau or, at the latest, at its deadline: a fraction of the budget (by default the budget
  split equally between the stages), so the whole cascade fits inside the run's budget.
- ``gradual``: the effective K falls linearly from K0 to 1 over the first ``decay`` fraction
  of the budget, the weight of the last active group fading linearly to 0; each integer drop
  of K multiplies the peak lr by gamma and restarts a cosine schedule; the rest of the budget
  trains on clean inputs (K = 1) under a last cosine cycle.
"""

from __future__ import annotations

import math

import torch


def cascade_ks(k0: int) -> list[int]:
    """K0, K0//2, ..., 1."""
    ks = [k0]
    while ks[-1] > 1:
        ks.append(max(1, ks[-1] // 2))
    return ks


def stage_deadlines(n_stages: int, total: int, fractions: list[float] | None = None) -> list[int]:
    """Last step (exclusive) of each stage; the final stage always ends at ``total``."""
    if fractions is None:
        fractions = [(i + 1) / n_stages for i in range(n_stages - 1)]
    return [max(1, round(f * total)) for f in fractions] + [total]


def gradual_k(step: int, total: int, k0: int, decay: float) -> float:
    """Effective K at ``step``: linear from K0 to 1 over the first ``decay`` of the budget."""
    t = step / max(total, 1)
    if k0 <= 1 or t >= decay:
        return 1.0
    return k0 - (k0 - 1) * t / decay


def group_weights(k_eff: float) -> torch.Tensor:
    """Raw weights of the active groups for an effective K: ones, and the last active group
    weighted by the fractional part (it fades linearly to 0 before K drops)."""
    m = max(1, math.ceil(k_eff - 1e-9))
    w = torch.ones(m)
    w[-1] = k_eff - (m - 1)
    return w


def gradual_segments(total: int, k0: int, decay: float) -> list[int]:
    """Step boundaries of the cosine cycles: one per integer K from K0 down to 2, then clean."""
    drops = [round(j * decay * total / (k0 - 1)) for j in range(k0)] if k0 > 1 else [0]
    return drops + [total]


def gradual_lr(step: int, total: int, lr0: float, k0: int, decay: float, gamma: float,
               final_lr: float = 0.0) -> float:
    """Cosine with restarts: cycle j runs from lr0 * gamma**j down to ``final_lr``."""
    b = gradual_segments(total, k0, decay)
    j = max(i for i in range(len(b) - 1) if b[i] <= step) if step < total else len(b) - 2
    start, end = b[j], max(b[j + 1], b[j] + 1)
    t = (step - start) / (end - start)
    peak = lr0 * gamma**j
    return final_lr + 0.5 * (peak - final_lr) * (1 + math.cos(math.pi * t))
