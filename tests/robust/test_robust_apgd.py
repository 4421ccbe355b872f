"""APGD and the autoattack-lite ensemble (Croce & Hein, arXiv:2003.01690): the published
checkpoint schedule, the two step-halving conditions, the DLR loss, iterates inside the ε-ball and
[0, 1], at least PGD-10's strength on a trained model, determinism, the config defaults, and a
cross-check against torchattacks when it is installed."""

from __future__ import annotations

import math
from functools import lru_cache

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import three_class_linear
from trainwise.robust.apgd import apgd, autoattack_lite, checkpoints, dlr_loss, halve_step
from trainwise.robust.attacks import attack_mode
from trainwise.robust.config import RobustnessConfig
from trainwise.robust.evaluate import robust_accuracy, robust_metrics

torch.set_num_threads(1)


def _data(n: int, seed: int):
    protos = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    return (protos[y] + 0.6 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1), y


@lru_cache(maxsize=1)
def trained():
    """A small 4-class MLP trained on noisy prototypes (~97% clean accuracy) and its test set."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4))
    x, y = _data(2000, 0)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    xt, yt = _data(300, 1)
    return model.eval(), xt, yt


def test_checkpoints_match_published_schedule():
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    p = [0.0, 0.22]  # the recursion of the paper, in floats, for other N
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    for n in (10, 37, 250):
        assert checkpoints(n) == sorted({math.ceil(round(q * n, 9)) for q in p if q * n <= n})


def test_dlr_loss_hand_computed():
    z = torch.tensor([[1.0, 3.0, 2.0, 0.5], [1.0, 3.0, 2.0, 0.5], [4.0, -1.0, 0.0, 2.0]])
    y = torch.tensor([0, 1, 0])
    # sorted descending: (3, 2, 1, .5), (3, 2, 1, .5), (4, 2, 0, -1)
    want = torch.tensor([-(1 - 3) / (3 - 1), -(3 - 2) / (3 - 1), -(4 - 2) / (4 - 0)])
    torch.testing.assert_close(dlr_loss(z, y), want)
    torch.testing.assert_close(dlr_loss(5 * z + 7, y), want)  # shift- and scale-invariant


def test_halve_step_conditions():
    ups = torch.tensor([10.0, 20.0, 20.0, 20.0])
    reduced_last = torch.tensor([False, False, True, False])
    f_max = torch.tensor([1.0, 1.0, 1.0, 2.0])
    f_last = torch.tensor([1.0, 1.0, 1.0, 1.0])
    # 0: condition 1 (10 < 0.75·22); 1: condition 2 (not reduced, no new best); 2: reduced last
    # time, so condition 2 does not apply; 3: improved
    assert halve_step(ups, 22, reduced_last, f_max, f_last).tolist() == [True, True, False, False]
    assert not halve_step(torch.tensor([16.5]), 22, torch.tensor([True]), f_max[:1], f_last[:1])  # strict <


class Recorder(nn.Module):
    """Wraps a model and keeps every input it is evaluated on."""

    def __init__(self, net):
        super().__init__()
        self.net, self.seen = net, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.net(x)


def test_step_halves_at_every_checkpoint_when_loss_is_flat():
    lin = nn.Linear(64, 4)
    nn.init.zeros_(lin.weight)  # the loss does not depend on x: no step ever raises it
    model = nn.Sequential(nn.Flatten(), lin)
    x, y = torch.rand(5, 1, 8, 8), torch.randint(0, 4, (5,))
    with attack_mode(model):
        run = apgd(model, x, y, 0.1, steps=100, gen=torch.Generator().manual_seed(0))
    torch.testing.assert_close(run.eta, torch.full((5,), 2 * 0.1 / 2 ** 8))  # 8 checkpoints after 0


def test_first_steps_by_hand():
    """x(1) = P(x(0) + η·∇/‖∇‖₂) with η = 2ε, then the momentum step
    x(2) = P(x(1) + α(z(2) − x(1)) + (1 − α)(x(1) − x(0))), z(2) = P(x(1) + η·∇/‖∇‖₂), α = 0.75,
    on a 3-class linear model (ℓ2 ball of radius 0.1, far from the box edges)."""
    model = three_class_linear()
    W, b = model[1].weight.detach(), model[1].bias.detach()
    rec = Recorder(model)
    x, y, eps = torch.tensor([[0.5, 0.4, 0.6, 0.5]]), torch.tensor([0]), 0.1

    def grad(p):
        return (torch.softmax(p @ W.T + b, 1) - F.one_hot(y, 3).float()) @ W

    def proj(p):
        return x + (p - x) * min(1.0, eps / (p - x).norm().item())

    x1 = proj(x + 2 * eps * grad(x) / grad(x).norm())
    z2 = proj(x1 + 2 * eps * grad(x1) / grad(x1).norm())
    x2 = proj(x1 + 0.75 * (z2 - x1) + 0.25 * (x1 - x))
    with attack_mode(rec):
        apgd(rec, x, y, eps, norm="l2", loss="ce", steps=2, random_init=False)
    torch.testing.assert_close(rec.seen[1], x1)
    torch.testing.assert_close(rec.seen[2], x2)
    assert (x2 - z2).abs().max() > 1e-3  # momentum made a difference


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_iterates_stay_in_ball_and_box(norm, eps, loss):
    model, x, y = trained()
    x = x[:40].clone()
    x[:, :, :2] = 0.0  # box edges: clipping must bind
    x[:, :, -2:] = 1.0
    rec = Recorder(model)
    with attack_mode(rec):
        run = apgd(rec, x, y[:40], eps, norm=norm, loss=loss, steps=30, gen=torch.Generator().manual_seed(0))
    assert len(rec.seen) == 31  # x(0) .. x(30)
    biggest = 0.0
    for xi in rec.seen + [run.x_adv]:
        d = (xi - x).flatten(1)
        size = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
        assert (size <= eps * (1 + 1e-5)).all() and xi.min() >= 0 and xi.max() <= 1
        biggest = max(biggest, size.max().item())
    assert biggest > 0.5 * eps  # it did move


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("linf", 0.1), ("l2", 0.5), ("l2", 1.0)])
def test_ensemble_at_least_as_strong_as_pgd10(norm, eps):
    model, x, y = trained()
    pgd = robust_accuracy(model, x, y, eps, attack="pgd", norm=norm, steps=10, gen=torch.Generator().manual_seed(0))
    aa = robust_accuracy(model, x, y, eps, attack="autoattack-lite", norm=norm, steps=50,
                         gen=torch.Generator().manual_seed(0))
    assert aa <= pgd
    clean = robust_accuracy(model, x, y, 0.0, attack="fgsm")
    assert aa < clean


def test_fooled_points_are_misclassified_and_survivors_unchanged():
    model, x, y = trained()
    xa = autoattack_lite(model, x, y, 0.1, steps=20, gen=torch.Generator().manual_seed(0))
    with torch.no_grad():
        wrong = model(xa).argmax(1) != y
        clean_ok = model(x).argmax(1) == y
    assert wrong.any() and torch.equal(xa[~wrong], x[~wrong])
    assert ((xa - x).flatten(1).abs().max(1).values <= 0.1 + 1e-6).all()
    assert (wrong | clean_ok).all()


def test_deterministic_for_a_seed():
    model, x, y = trained()

    def run(seed):
        return autoattack_lite(model, x[:60], y[:60], 0.1, steps=20, restarts=2,
                               gen=torch.Generator().manual_seed(seed))

    assert torch.equal(run(3), run(3))
    with attack_mode(model):
        a = apgd(model, x[:60], y[:60], 0.1, steps=5, gen=torch.Generator().manual_seed(0))
        b = apgd(model, x[:60], y[:60], 0.1, steps=5, gen=torch.Generator().manual_seed(1))
    assert not torch.equal(a.x_adv, b.x_adv)  # the random start depends on the seed


def test_two_classes_run_ce_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    x, y = torch.rand(20, 1, 4, 4), torch.randint(0, 2, (20,))
    xa = autoattack_lite(model, x, y, 0.3, steps=10, gen=torch.Generator().manual_seed(0))
    assert torch.isfinite(xa).all() and ((xa - x).abs() <= 0.3 + 1e-6).all()


def test_config_defaults_and_validation():
    assert RobustnessConfig(eps=[0.1]).steps == 10
    assert RobustnessConfig(eps=[0.1], attack="autoattack-lite").steps == 100
    assert RobustnessConfig(eps=[0.1], attack="autoattack-lite", steps=7).steps == 7
    aa = RobustnessConfig(eps=[0.1], attack="autoattack-lite")
    assert RobustnessConfig(**aa.model_dump()).steps == 100  # survives a round trip
    # new settings at their defaults do not enter config hashes (which leave defaults out)
    assert RobustnessConfig(eps=[0.1]).model_dump(exclude_defaults=True) == {"eps": [0.1]}
    with pytest.raises(ValueError, match="step_fraction"):
        RobustnessConfig(eps=[0.1], attack="autoattack-lite", step_fraction=0.1)


def test_robust_metrics_with_autoattack_lite():
    model, x, y = trained()
    cfg = RobustnessConfig(attack="autoattack-lite", eps=[0.05, 0.1], steps=20, samples=100,
                           stronger_factor=2)
    m = robust_metrics(model, x, y, cfg, seed=0)
    assert m["robust_attack"] == "autoattack-lite-linf-20"
    assert m["robust_acc@0.1"] <= m["robust_acc@0.05"] <= m["robust_clean_acc"]
    assert m["robust_acc@large"] == 0.0 and m["robust_stronger_eps"] in (0.05, 0.1)
    assert m == {**robust_metrics(model, x, y, cfg, seed=0), "robust_time": m["robust_time"]}


def test_restarts_are_worst_case():
    model, x, y = trained()
    one = robust_accuracy(model, x, y, 0.1, attack="pgd", steps=3, gen=torch.Generator().manual_seed(0))
    three = robust_accuracy(model, x, y, 0.1, attack="pgd", steps=3, restarts=3, gen=torch.Generator().manual_seed(0))
    assert three <= one  # the first restart is the single run (same generator state)


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.0)])
def test_cross_check_with_torchattacks(norm, eps):
    ta = pytest.importorskip("torchattacks")
    model, x, y = trained()
    ours = robust_accuracy(model, x, y, eps, attack="autoattack-lite", norm=norm, steps=50,
                           gen=torch.Generator().manual_seed(0))
    survive = torch.ones_like(y, dtype=torch.bool)
    for loss in ("ce", "dlr"):
        atk = ta.APGD(model, norm="Linf" if norm == "linf" else "L2", eps=eps, steps=50, n_restarts=1,
                      seed=0, loss=loss)
        with torch.no_grad():
            survive &= model(atk(x, y)).argmax(1) == y
    theirs = survive.float().mean().item()
    assert abs(ours - theirs) <= 0.03, (ours, theirs)
