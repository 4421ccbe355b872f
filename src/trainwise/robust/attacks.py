"""Gradient attacks on deep models: FGSM, BIM, MIM and PGD in the ℓ∞ and ℓ2 norms.

As used by Faghri et al., "Bridging the Gap Between Adversarial Robustness and Optimization
Bias" (arXiv:2102.08868, public code fartashf/robust_bias) for robust accuracy next to clean
accuracy. The attacks themselves come from:

- FGSM: Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015
  (one step of size ε along the steepest-ascent direction of the norm).
- BIM: Kurakin, Goodfellow & Bengio, "Adversarial Examples in the Physical World", 2017
  (iterated FGSM with step α, projected back to the ε-ball, no random start).
- MIM: Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018 (BIM whose step
  follows g_t = μ·g_{t-1} + ∇/‖∇‖₁, μ = 1).
- PGD: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018
  (BIM from a uniformly random start inside the ε-ball).

Inputs live in [0, 1] (normalisation sits inside the model), so every iterate is projected
onto the ε-ball of the stated norm and then clipped to [0, 1]; clipping only shrinks the
perturbation, so it stays inside the ball. The model runs in eval mode with its parameters
frozen (no weight gradients are computed); both are restored afterwards. Untargeted attacks
ascend the cross-entropy of the true label; targeted ones descend that of ``target``.
Choices where the papers are silent: the ℓ2 steepest-ascent step is α·∇/‖∇‖₂ per sample; the
ℓ2 random start is uniform in the ball; MIM normalises by the mean absolute gradient (ℓ1 / D).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F

from ..accel import to_device

Norm = Literal["linf", "l2"]
ATTACKS = ("fgsm", "bim", "mim", "pgd")
NORMS = ("linf", "l2")
_TINY = 1e-12


def _flat_norm(v: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample norm, shaped to broadcast against ``v``."""
    return v.flatten(1).norm(p=p, dim=1).clamp_min(_TINY).view(-1, *([1] * (v.dim() - 1)))


def steepest_step(grad: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The unit-norm direction that maximises <grad, δ>: sign(grad) for ℓ∞, grad/‖grad‖₂ for ℓ2."""
    if norm == "linf":
        return grad.sign()
    return grad / _flat_norm(grad, 2)


def project(delta: torch.Tensor, eps: float, norm: Norm) -> torch.Tensor:
    """Euclidean projection of each sample's perturbation onto the ε-ball of ``norm``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = _flat_norm(delta, 2)
    return delta * (eps / n).clamp(max=1.0)


def random_start(x: torch.Tensor, eps: float, norm: Norm, gen: torch.Generator | None = None) -> torch.Tensor:
    """A perturbation drawn uniformly from the ε-ball (ℓ∞: the cube; ℓ2: the ball's volume)."""
    if norm == "linf":
        u = to_device(torch.rand(x.shape, generator=gen, device="cpu"), x.device)
        return (2 * u - 1) * eps
    g = to_device(torch.randn(x.shape, generator=gen, device="cpu"), x.device)
    d = x[0].numel()
    r = to_device(torch.rand(len(x), generator=gen, device="cpu"), x.device) ** (1.0 / d)
    return g / _flat_norm(g, 2) * (eps * r).view(-1, *([1] * (x.dim() - 1)))


@contextmanager
def attack_mode(model: torch.nn.Module):
    """Eval mode and frozen parameters for the duration of an attack; both restored after."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, f in flags:
            p.requires_grad_(f)
        model.train(was_training)


def _input_grad(model, x: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (g,) = torch.autograd.grad(-loss if targeted else loss, x)
    return g


def perturb(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
            attack: str = "pgd", norm: Norm = "linf", steps: int = 10, step_size: float | None = None,
            random_init: bool | None = None, momentum: float = 1.0, targeted: bool = False,
            gen: torch.Generator | None = None) -> torch.Tensor:
    """Return adversarial inputs for one batch ``x`` in [0, 1].

    ``y`` holds the true labels (untargeted) or the target labels (``targeted=True``).
    ``attack`` is fgsm | bim | mim | pgd; ``step_size`` defaults to ε for FGSM and
    2.5·ε/steps otherwise (Madry et al.); ``random_init`` defaults to True for PGD only.
    The model is run in eval mode with frozen parameters.
    """
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; allowed: {', '.join(ATTACKS)}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; allowed: {', '.join(NORMS)}")
    x = x.detach()
    if eps <= 0:
        return x.clone()
    if attack == "fgsm":
        steps, alpha, rand = 1, (step_size or eps), bool(random_init)
    else:
        alpha = step_size if step_size is not None else 2.5 * eps / steps
        rand = (attack == "pgd") if random_init is None else random_init
    delta = random_start(x, eps, norm, gen) if rand else torch.zeros_like(x)
    delta = (x + delta).clamp(0, 1) - x
    velocity = torch.zeros_like(x) if attack == "mim" else None
    with attack_mode(model):
        for _ in range(steps):
            g = _input_grad(model, x + delta, y, targeted)
            if velocity is not None:
                velocity = momentum * velocity + g / g.abs().flatten(1).mean(1).clamp_min(_TINY).view(
                    -1, *([1] * (g.dim() - 1)))
                g = velocity
            delta = project(delta + alpha * steepest_step(g, norm), eps, norm)
            delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def fgsm(model, x, y, eps, norm: Norm = "linf", **kw) -> torch.Tensor:
    return perturb(model, x, y, eps, attack="fgsm", norm=norm, **kw)


def bim(model, x, y, eps, norm: Norm = "linf", steps: int = 10, **kw) -> torch.Tensor:
    return perturb(model, x, y, eps, attack="bim", norm=norm, steps=steps, **kw)


def mim(model, x, y, eps, norm: Norm = "linf", steps: int = 10, **kw) -> torch.Tensor:
    return perturb(model, x, y, eps, attack="mim", norm=norm, steps=steps, **kw)


def pgd(model, x, y, eps, norm: Norm = "linf", steps: int = 10, **kw) -> torch.Tensor:
    return perturb(model, x, y, eps, attack="pgd", norm=norm, steps=steps, **kw)
