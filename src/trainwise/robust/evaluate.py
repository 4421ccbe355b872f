"""Robust accuracy (accuracy on adversarial inputs) and the sanity checks that flag gradient
masking, after Faghri et al., arXiv:2102.08868 (robust accuracy reported next to clean
accuracy) and the evaluation checklist of Carlini et al., "On Evaluating Adversarial
Robustness", arXiv:1902.06705 (§5: an iterative attack must beat a single step, accuracy must
fall with ε and reach ~0 at a large ε).

Checks, each a warning string when violated (``tolerance`` absorbs random-start noise):
  1. robust accuracy ≤ clean accuracy at every ε;
  2. robust accuracy non-increasing in ε;
  3. the configured (iterative) attack no weaker than FGSM at every ε;
  4. at a large ε (default: ℓ∞ 0.5, ℓ2 0.5·√D, enough to turn any image grey) accuracy is near
     0 (≤ ``max(tolerance, 0.01)`` — Carlini et al. expect ~0; an attack that fails there is broken
     or the gradients are masked);
  5. a stronger attack (the same attack with ``stronger_factor``× the steps — default 5 — and,
     where the attack has one, a fresh random start) lowers robust accuracy by at most
     ``stronger_tolerance`` (default 0.01) — Carlini et al. §5 ("more iterations / restarts
     should not lower accuracy further"), as AutoAttack's flags do. It runs at one ε: among the configured radii below the large ε, the one whose
     robust accuracy is closest to half the clean accuracy (the most room to fall; ties go to
     the larger ε), so that a check at an ε where accuracy is already 0 cannot pass vacuously.
     Not run for FGSM (single step).

``attack: autoattack-lite`` is the APGD-CE + APGD-DLR ensemble of ``apgd.py`` (Croce & Hein,
arXiv:2003.01690). With ``restarts`` > 1 an example counts as robust only if it survives every
run.
"""

from __future__ import annotations

import math
import time

import torch

from ..data.base import as_float
from .apgd import autoattack_lite
from .attacks import perturb
from .config import RobustnessConfig


def robust_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                    attack: str = "pgd", norm: str = "linf", steps: int = 10,
                    step_fraction: float | None = None, random_start: bool | None = None,
                    batch_size: int = 500, gen: torch.Generator | None = None, restarts: int = 1) -> float:
    """Accuracy of ``model`` on adversarial versions of (x, y), attacked batch by batch; an
    example counts as correct only if it survives all ``restarts`` runs of the attack. ``x`` holds
    stored inputs (uint8 or float, on ``y``'s device or memory-mapped on the CPU), converted per batch."""
    correct = 0
    step_size = None if step_fraction is None else step_fraction * eps
    for i in range(0, len(x), batch_size):
        yb = y[i:i + batch_size]
        xb = as_float(x[i:i + batch_size].to(yb.device))  # stored inputs (uint8 or float) -> [0, 1] floats
        if attack == "autoattack-lite":
            runs = [autoattack_lite(model, xb, yb, eps, norm=norm, steps=steps, restarts=restarts,
                                    random_init=random_start is not False, gen=gen)]
        else:
            runs = [perturb(model, xb, yb, eps, attack=attack, norm=norm, steps=steps, step_size=step_size,
                            random_init=random_start, gen=gen) for _ in range(restarts)]
        survive = torch.ones_like(yb, dtype=torch.bool)
        with torch.no_grad():
            was = model.training
            model.eval()
            for xa in runs:
                survive &= model(xa).argmax(1) == yb
            model.train(was)
        correct += survive.sum().item()
    return correct / max(len(x), 1)


def sanity_warnings(clean: float, robust: dict[float, float], fgsm: dict[float, float] | None = None,
                    large: tuple[float, float] | None = None, tolerance: float = 0.005,
                    attack: str = "pgd", stronger: tuple[float, float, float] | None = None,
                    stronger_tolerance: float = 0.01) -> list[str]:
    """The gradient-masking checks; returns one human-readable warning per violation.
    ``stronger`` is (ε, robust acc of the configured attack, robust acc of the stronger one)."""
    out = []
    eps = sorted(robust)
    for e in eps:
        if robust[e] > clean + tolerance:
            out.append(f"robust acc {robust[e]:.3f} at eps={e:g} exceeds clean acc {clean:.3f}")
    for a, b in zip(eps, eps[1:]):
        if robust[b] > robust[a] + tolerance:
            out.append(f"robust acc rises with eps: {robust[a]:.3f} at {a:g} -> {robust[b]:.3f} at {b:g}")
    for e, f in sorted((fgsm or {}).items()):
        if e in robust and robust[e] > f + tolerance:
            out.append(f"{attack} weaker than FGSM at eps={e:g}: {robust[e]:.3f} > {f:.3f}")
    if large is not None:
        e, acc = large
        if acc > max(tolerance, 0.01):
            out.append(f"accuracy {acc:.3f} at large eps={e:g} is not near 0 (gradient masking?)")
    if stronger is not None:
        e, base, strong = stronger
        if base - strong > stronger_tolerance:
            out.append(f"a stronger {attack} (more steps) lowers robust acc at eps={e:g}: {base:.3f} -> "
                       f"{strong:.3f}; the reported robust accuracy is an overestimate")
    return out


def stronger_check_eps(clean: float, robust: dict[float, float], large_eps: float) -> float | None:
    """The ε of check 5: below ``large_eps``, robust accuracy closest to clean/2 (ties: larger ε)."""
    cands = [e for e in robust if e < large_eps]
    return min(cands, key=lambda e: (abs(robust[e] - clean / 2), -e)) if cands else None


def default_large_eps(norm: str, input_numel: int) -> float:
    return 0.5 if norm == "linf" else 0.5 * math.sqrt(input_numel)


def robust_metrics(model: torch.nn.Module, x_test: torch.Tensor, y_test: torch.Tensor,
                   cfg: RobustnessConfig, seed: int = 0) -> dict:
    """Run the configured attack at every ε on a fixed random subset of the test set.

    Returns JSON-ready metrics: ``robust_acc@<eps>`` for each ε, ``robust_clean_acc`` (clean
    accuracy on the same subset), ``fgsm_acc@<eps>`` and ``robust_acc@large`` when the sanity
    checks run, ``robust_stronger_eps`` / ``robust_stronger_acc`` when check 5 runs,
    ``robust_warnings`` (a list of strings) and ``robust_time`` (seconds).
    """
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(10_000 + seed)
    n = len(x_test)
    if cfg.samples is not None and cfg.samples < n:
        idx = torch.randperm(n, generator=gen)[: cfg.samples].sort().values
        x, y = x_test[idx.to(x_test.device)], y_test[idx.to(y_test.device)]  # the attacked subset
    else:
        x, y = x_test, y_test
    kw = dict(norm=cfg.norm, steps=cfg.steps, step_fraction=cfg.step_fraction,
              random_start=cfg.random_start, batch_size=cfg.batch_size, gen=gen, restarts=cfg.restarts)
    clean = robust_accuracy(model, x, y, 0.0, attack="fgsm", batch_size=cfg.batch_size)
    robust = {e: robust_accuracy(model, x, y, e, attack=cfg.attack, **kw) for e in cfg.eps}
    name = f"{cfg.attack}-{cfg.norm}-{cfg.steps if cfg.attack != 'fgsm' else 1}"
    out: dict = {"robust_attack": name + (f"x{cfg.restarts}" if cfg.restarts > 1 else ""),
                 "robust_samples": len(x), "robust_clean_acc": clean}
    out.update({f"robust_acc@{e:g}": a for e, a in robust.items()})
    warnings: list[str] = []
    if cfg.sanity:
        fg = None
        if cfg.attack != "fgsm":
            fg = {e: robust_accuracy(model, x, y, e, attack="fgsm", norm=cfg.norm,
                                     batch_size=cfg.batch_size) for e in cfg.eps}
            out.update({f"fgsm_acc@{e:g}": a for e, a in fg.items()})
        big = cfg.large_eps or default_large_eps(cfg.norm, x[0].numel())
        big_acc = robust_accuracy(model, x, y, big, attack=cfg.attack, **kw)
        out["robust_large_eps"], out["robust_acc@large"] = big, big_acc
        strong = None
        e = stronger_check_eps(clean, robust, big)
        if cfg.stronger_factor > 1 and cfg.attack != "fgsm" and e is not None:
            more = {**kw, "steps": cfg.steps * cfg.stronger_factor}
            acc = robust_accuracy(model, x, y, e, attack=cfg.attack, **more)
            out["robust_stronger_eps"], out["robust_stronger_acc"] = e, acc
            strong = (e, robust[e], acc)
        warnings = sanity_warnings(clean, robust, fg, (big, big_acc), cfg.tolerance, cfg.attack,
                                   strong, cfg.stronger_tolerance)
    out["robust_warnings"] = warnings
    out["robust_time"] = time.perf_counter() - t0
    return out
