"""APGD-CE and APGD-DLR, and their ensemble ``autoattack-lite``.

From Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020 (arXiv:2003.01690), Algorithm 1 and §3-4:

- the step size η starts at 2ε and is halved, per example, at the checkpoints
  w_j = ceil(p_j·N) with p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06),
  when (condition 1) fewer than ρ·(w_j − w_{j−1}) of the steps since the last checkpoint raised
  the loss (ρ = 0.75), or (condition 2) η was not halved at the last checkpoint and the best
  loss has not improved since; a halving restarts that example from its best point x_max;
- the momentum step x(k+1) = P(x(k) + α(z(k+1) − x(k)) + (1 − α)(x(k) − x(k−1))) with
  z(k+1) = P(x(k) + η·s(∇f)), α = 0.75, and a plain first step;
- the DLR loss −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3), π the logits sorted descending, which is
  invariant to shifting and scaling the logits.

s(∇f) is sign(∇f) for ℓ∞ and ∇f/‖∇f‖₂ for ℓ2; P projects on the ε-ball and then clips to
[0, 1]. The ensemble runs APGD-CE, then APGD-DLR on the points still correctly classified; an
example counts as robust only if no iterate of any attack or restart misclassifies it.

Choices where the paper is silent (the reference code, fra31/auto-attack autopgd_base.py, was
read for comparison; this is an independent implementation):
- a checkpoint w_j is evaluated once x(w_j) exists, and condition 1 counts the w_j − w_{j−1}
  transitions f(x(i+1)) > f(x(i)) since the previous checkpoint, with the strict "<" of the
  paper (the reference uses "≤" and, for N = 100, the same checkpoints 22, 41, 57, 70, 80, 87,
  93, 99); after a restart from x_max the loss compared next is f(x_max);
- condition 2 at the first checkpoint compares with f(x(0)) and treats η as "not halved" at
  w_0 = 0, as the paper's formula reads (the reference skips condition 2 at the first one);
- after a restart, the momentum term is x_max − x(k) (the paper's update applied literally;
  the reference does the same) and the gradient at x_max is the one stored with it;
- the random start is uniform in the ε-ball (``attacks.random_start``; the reference draws a
  point on the ℓ2 sphere, or with ‖δ‖∞ = ε);
- an example is counted as fooled when ANY iterate misclassifies it, and that iterate is the
  returned adversarial input (as the reference does), not x_max;
- DLR needs three classes; with fewer, the ensemble runs APGD-CE only (the reference warns);
- restarts re-attack only the examples not yet fooled, each from a fresh random start.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .attacks import Norm, attack_mode, project, random_start, steepest_step

RHO = 0.75
MOMENTUM = 0.75


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example DLR loss −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12); needs ≥ 3 classes."""
    top = logits.sort(dim=1, descending=True).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).max(1).values
    return -(z_y - other) / (top[:, 0] - top[:, 2] + 1e-12)


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


LOSSES = {"ce": ce_loss, "dlr": dlr_loss}


def checkpoints(n_iter: int) -> list[int]:
    """The published checkpoints w_j = ceil(p_j·N) ≤ N (p in exact hundredths: no rounding drift)."""
    p = [0, 22]  # percent
    while p[-1] < 100:
        p.append(p[-1] + max(p[-1] - p[-2] - 3, 6))
    w = {-(-q * n_iter // 100) for q in p}  # ceil(q·N/100) in integers
    return sorted(v for v in w if v <= n_iter)


def halve_step(ups: torch.Tensor, span: int, reduced_last: torch.Tensor, f_max: torch.Tensor,
               f_max_last: torch.Tensor, rho: float = RHO) -> torch.Tensor:
    """Per example, whether η is halved at a checkpoint: condition 1 (``ups`` successful steps
    out of ``span`` is < ρ·span) or condition 2 (not halved last time and no new best loss)."""
    return (ups < rho * span) | (~reduced_last & (f_max <= f_max_last))


class APGDRun(NamedTuple):
    x_adv: torch.Tensor   # the misclassifying iterate where one was found, else x_max
    fooled: torch.Tensor  # bool per example: some iterate was misclassified
    eta: torch.Tensor     # final per-example step size
    f_max: torch.Tensor   # best loss reached


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def _loss_grad(model, x, y, loss_fn):
    x = x.detach().requires_grad_(True)
    z = model(x)
    f = loss_fn(z, y)
    (g,) = torch.autograd.grad(f.sum(), x)
    return f.detach(), g, z.detach().argmax(1) != y


def apgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, norm: Norm = "linf",
         loss: str = "ce", steps: int = 100, random_init: bool = True, rho: float = RHO,
         momentum: float = MOMENTUM, gen: torch.Generator | None = None) -> APGDRun:
    """One run of APGD (Algorithm 1) maximising ``loss`` (ce | dlr) of the true labels ``y``.
    Call inside ``attack_mode(model)``."""
    loss_fn = LOSSES[loss]
    x = x.detach()

    def proj(p):
        return (x + project(p - x, eps, norm)).clamp(0, 1)

    cur = proj(x + random_start(x, eps, norm, gen)) if random_init else x.clone()
    f, g, wrong = _loss_grad(model, cur, y, loss_fn)
    prev = cur
    x_max, f_max, g_max = cur, f, g
    fooled, x_adv = wrong, cur.clone()
    eta = torch.full((len(x),), 2.0 * eps, device=x.device)
    marks = set(checkpoints(steps)) - {0}
    last, ups = 0, torch.zeros(len(x), device=x.device)
    reduced_last, f_max_last = torch.zeros_like(fooled), f_max
    for k in range(steps):
        z = proj(cur + _bcast(eta, x) * steepest_step(g, norm))
        new = z if k == 0 else proj(cur + momentum * (z - cur) + (1 - momentum) * (cur - prev))
        f_new, g, wrong = _loss_grad(model, new, y, loss_fn)
        ups = ups + (f_new > f)
        better = f_new > f_max
        x_max, g_max = torch.where(_bcast(better, x), new, x_max), torch.where(_bcast(better, x), g, g_max)
        f_max = torch.where(better, f_new, f_max)
        x_adv = torch.where(_bcast(wrong & ~fooled, x), new, x_adv)
        fooled = fooled | wrong
        prev, cur, f = cur, new, f_new
        if k + 1 in marks:
            halve = halve_step(ups, k + 1 - last, reduced_last, f_max, f_max_last, rho)
            eta = torch.where(halve, eta / 2, eta)
            h = _bcast(halve, x)
            cur, g, f = torch.where(h, x_max, cur), torch.where(h, g_max, g), torch.where(halve, f_max, f)
            last, ups, reduced_last, f_max_last = k + 1, torch.zeros_like(ups), halve, f_max
    x_adv = torch.where(_bcast(fooled, x), x_adv, x_max)
    return APGDRun(x_adv.detach(), fooled, eta, f_max)


def autoattack_lite(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                    norm: Norm = "linf", steps: int = 100, restarts: int = 1, random_init: bool = True,
                    gen: torch.Generator | None = None) -> torch.Tensor:
    """APGD-CE then APGD-DLR (``restarts`` runs each) on the examples not yet misclassified.
    Returns adversarial inputs: a misclassifying point where one was found, else ``x``."""
    x = x.detach()
    out = x.clone()
    if eps <= 0:
        return out
    with attack_mode(model):
        with torch.no_grad():
            logits = model(x)
        alive = logits.argmax(1) == y
        losses = ("ce", "dlr") if logits.shape[1] >= 3 else ("ce",)
        for loss in losses:
            for _ in range(restarts):
                idx = alive.nonzero().squeeze(1)
                if len(idx) == 0:
                    return out
                run = apgd(model, x[idx], y[idx], eps, norm=norm, loss=loss, steps=steps,
                           random_init=random_init, gen=gen)
                hit = idx[run.fooled]
                out[hit] = run.x_adv[run.fooled]
                alive[hit] = False
    return out


__all__ = ["apgd", "autoattack_lite", "checkpoints", "dlr_loss", "halve_step", "APGDRun"]
