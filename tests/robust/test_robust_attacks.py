"""Attacks on deep models: perturbations stay in the ε-ball and in [0, 1]; on a linear model the
ℓ∞/ℓ2 FGSM step is the analytic worst case, and PGD succeeds exactly on the points whose
analytic minimal adversarial distance is below ε."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import three_class_linear
from trainwise.robust.attacks import ATTACKS, perturb, random_start


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 5))


def binary_linear(d: int, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A 2-class linear model on flattened inputs; returns it and Δw = w_1 − w_0."""
    torch.manual_seed(seed)
    lin = nn.Linear(d, 2)
    return nn.Sequential(nn.Flatten(), lin), (lin.weight[1] - lin.weight[0]).detach()


def score(model, x, y):
    """Signed margin z_y − z_other of a 2-class model."""
    with torch.no_grad():
        z = model(x)
    return z.gather(1, y[:, None]).squeeze(1) - z.gather(1, (1 - y)[:, None]).squeeze(1)


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_perturbation_in_ball_and_box(attack, norm):
    model = small_cnn()
    x = torch.rand(32, 1, 8, 8)
    x[:, :, :2] = 0.0  # pixels on the box edges: clipping must bind there
    x[:, :, -2:] = 1.0
    y = torch.randint(0, 5, (32,))
    eps = 0.1 if norm == "linf" else 1.0
    xa = perturb(model, x, y, eps, attack=attack, norm=norm, steps=5, gen=torch.Generator().manual_seed(0))
    d = (xa - x).flatten(1)
    size = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    assert (size <= eps * (1 + 1e-5)).all()
    assert size.max() > 0.5 * eps  # it did move
    assert xa.min() >= 0 and xa.max() <= 1


def test_model_mode_and_grads_restored():
    model = small_cnn().train()
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 5, (8,))
    bn_mean = model[1].running_mean.clone()
    perturb(model, x, y, 0.05)
    assert model.training
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert torch.equal(model[1].running_mean, bn_mean)  # eval mode during the attack: BN stats untouched


@pytest.mark.parametrize("norm,dual", [("linf", 1), ("l2", 2)])
def test_fgsm_linear_is_analytic_worst_case(norm, dual):
    model, dw = binary_linear(64)
    x = 0.4 + 0.2 * torch.rand(50, 1, 8, 8)  # interior: ε-steps never clip
    y = torch.randint(0, 2, (50,))
    eps = 0.02 if norm == "linf" else 0.1
    before = score(model, x, y)
    after = score(model, perturb(model, x, y, eps, attack="fgsm", norm=norm), y)
    torch.testing.assert_close(before - after, torch.full_like(before, eps * dw.norm(p=dual).item()),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm,dual", [("linf", 1), ("l2", 2)])
def test_pgd_linear_reaches_minimal_distance(norm, dual):
    model, dw = binary_linear(64, seed=1)
    x = 0.45 + 0.1 * torch.rand(400, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)  # every point correctly classified
    dist = score(model, x, y) / dw.norm(p=dual)  # analytic minimal adversarial distance
    eps = float(dist.median())
    keep = (dist / eps - 1).abs() > 0.02  # leave out the points within 2% of ε
    xa = perturb(model, x, y, eps, attack="pgd", norm=norm, steps=20, gen=torch.Generator().manual_seed(0))
    with torch.no_grad():
        flipped = model(xa).argmax(1) != y
    assert torch.equal(flipped[keep], (dist < eps)[keep])


def test_targeted_attack_moves_towards_target():
    model = small_cnn(2)
    x = torch.rand(64, 1, 8, 8)
    target = torch.randint(0, 5, (64,))
    with torch.no_grad():
        before = F.cross_entropy(model.eval()(x), target)
    xa = perturb(model, x, target, 0.1, attack="pgd", steps=10, targeted=True, gen=torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = F.cross_entropy(model(xa), target)
        hit = (model(xa).argmax(1) == target).float().mean()
    assert after < before and hit > (model(x).argmax(1) == target).float().mean()


def test_deterministic_for_a_seed():
    model = small_cnn()
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 5, (16,))
    a = perturb(model, x, y, 0.1, gen=torch.Generator().manual_seed(3))
    b = perturb(model, x, y, 0.1, gen=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("d", [3, 16])
def test_l2_random_start_is_uniform_in_the_ball(d):
    """Uniform in the ball: direction uniform on the sphere, radius ε·U^(1/D), so (r/ε)^D ~ U(0, 1)
    (not all radii equal to ε, as a start on the sphere would give)."""
    eps, n = 0.7, 20000
    delta = random_start(torch.zeros(n, d), eps, "l2", torch.Generator().manual_seed(0))
    r = delta.norm(dim=1)
    assert (r <= eps * (1 + 1e-6)).all()
    u = (r / eps).pow(d).sort().values  # its empirical CDF must be that of U(0, 1)
    ks = (u - torch.arange(1, n + 1) / n).abs().max()
    assert ks < 0.015  # Kolmogorov-Smirnov; the 1% critical value for n = 20000 is 0.0115
    assert (delta / r[:, None]).mean(0).norm() < 0.05  # no preferred direction


def test_linf_random_start_is_uniform_in_the_cube():
    eps = 0.3
    delta = random_start(torch.zeros(20000, 4), eps, "linf", torch.Generator().manual_seed(0))
    assert delta.abs().max() <= eps
    torch.testing.assert_close(delta.var(0), torch.full((4,), eps ** 2 / 3), rtol=0.05, atol=0)


def _zero_grad_model():
    lin = nn.Linear(64, 3)
    nn.init.zeros_(lin.weight)  # ∂loss/∂x = 0: the iterates never move from the start
    return nn.Sequential(nn.Flatten(), lin)


def test_pgd_starts_from_a_seeded_random_point():
    x, y = 0.2 + 0.6 * torch.rand(8, 1, 8, 8), torch.randint(0, 3, (8,))
    model = _zero_grad_model()
    a = perturb(model, x, y, 0.1, attack="pgd", gen=torch.Generator().manual_seed(0))
    b = perturb(model, x, y, 0.1, attack="pgd", gen=torch.Generator().manual_seed(1))
    assert not torch.equal(a, x) and (a - x).abs().max() <= 0.1 + 1e-7  # first iterate is not x
    assert (a - b).abs().mean() > 0.02  # and depends on the seed
    assert torch.equal(perturb(model, x, y, 0.1, attack="pgd", random_init=False), x)
    cnn, yc = small_cnn(), torch.randint(0, 5, (8,))
    a = perturb(cnn, x, yc, 0.1, attack="pgd", steps=5, gen=torch.Generator().manual_seed(0))
    b = perturb(cnn, x, yc, 0.1, attack="pgd", steps=5, gen=torch.Generator().manual_seed(1))
    assert not torch.equal(a, b)


def test_mim_takes_the_momentum_step():
    """Two MIM steps on a 3-class linear model, by hand: ∇_x CE = Wᵀ(softmax(Wx + b) − e_y),
    v_t = μ·v_{t−1} + ∇/mean|∇|, x_t = x_{t−1} + α·v_t/‖v_t‖₂ (no projection binds)."""
    model = three_class_linear()
    W, b = model[1].weight.detach(), model[1].bias.detach()
    x = torch.tensor([[0.5, 0.4, 0.6, 0.5]])
    y = torch.tensor([0])
    alpha, eps = 0.2, 1.0

    def grad(p):
        return (torch.softmax(p @ W.T + b, 1) - F.one_hot(y, 3).float()) @ W

    g1 = grad(x)
    v1 = g1 / g1.abs().mean()
    x1 = x + alpha * v1 / v1.norm()
    g2 = grad(x1)
    v2 = 1.0 * v1 + g2 / g2.abs().mean()
    want = x1 + alpha * v2 / v2.norm()
    got = perturb(model, x, y, eps, attack="mim", norm="l2", steps=2, step_size=alpha)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    no_momentum = x1 + alpha * g2 / g2.norm()
    assert (no_momentum - want).abs().max() > 0.01  # the test can tell the two apart
