"""The linear optimisation-bias lab: the max-margin programs match a brute-force search on small
toys, the linear attacks are exact worst cases, and the optimisers converge to the max-margin
direction of their norm (coordinate descent: ℓ1, i.e. maximal ℓ∞ robustness)."""

from __future__ import annotations

import numpy as np
import pytest

from trainwise.robust.linear_attack import adversarial_error, attack_linear
from trainwise.robust.linear_data import make_data
from trainwise.robust.linear_train import train_linear
from trainwise.robust.max_margin import NotSeparable, max_margin
from trainwise.robust.norms import ATTACK_NORMS, DUAL, margin, norm

TOY = (np.array([[2.0, 0.5], [1.0, 2.0], [-1.0, -0.3], [-0.2, -1.5], [1.5, -0.4]]),
       np.array([1.0, 1.0, -1.0, -1.0, 1.0]))


@pytest.mark.parametrize("attack", ATTACK_NORMS)
def test_max_margin_matches_brute_force_2d(attack):
    X, y = TOY
    th = np.linspace(0, 2 * np.pi, 200_001)
    W = np.stack([np.cos(th), np.sin(th)], 1)
    best = np.max((y * (W @ X.T)).min(1) / norm(W, DUAL[attack]))
    w, g = max_margin(X, y, DUAL[attack])
    assert g == pytest.approx(best, rel=1e-4)
    assert margin(w, X, y, attack) == pytest.approx(g, rel=1e-6)


def test_fourier_program_matches_brute_force_3d():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, 3))
    y = np.array([1.0, -1.0])
    # directions on a fine sphere grid, then a local refinement around the best
    u, v = np.meshgrid(np.linspace(0, np.pi, 601), np.linspace(0, 2 * np.pi, 1201))
    W = np.stack([np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)], -1).reshape(-1, 3)
    m = (y * (W @ X.T)).min(1) / norm(W, "dft-l1")
    best = W[np.argmax(m)]
    for scale in (1e-2, 1e-3, 1e-4):
        cand = best + scale * rng.standard_normal((20000, 3))
        mc = (y * (cand @ X.T)).min(1) / norm(cand, "dft-l1")
        if mc.max() > margin(best, X, y, "dft-linf"):
            best = cand[np.argmax(mc)]
    _, g = max_margin(X, y, "dft-l1")
    assert g == pytest.approx(margin(best, X, y, "dft-linf"), rel=1e-4)


def test_not_separable_is_reported():
    X = np.array([[1.0, 0.0], [2.0, 0.0]])
    with pytest.raises(NotSeparable):
        max_margin(X, np.array([1.0, -1.0]), "l2")


@pytest.mark.parametrize("attack", ATTACK_NORMS)
def test_linear_attack_is_exact_worst_case(attack):
    D = make_data(16, 8, 0)
    X, y = D["X"], D["y"]
    w, g = max_margin(X, y, DUAL[attack])
    delta = attack_linear(w, X, y, 0.3, attack) - X
    assert np.allclose(norm(delta, attack), 0.3)  # on the sphere of the attack norm
    shift = y * (X @ w) - y * ((X + delta) @ w)
    assert np.allclose(shift, 0.3 * norm(w, DUAL[attack]))  # Hölder's bound is attained
    assert adversarial_error(w, X, y, g, attack) == 0.0  # the max-margin classifier survives ε = γ*
    assert adversarial_error(w, X, y, 1.01 * g, attack) > 0.0  # and no more


@pytest.mark.parametrize("method,attack", [("cd", "linf"), ("gd", "l2"), ("signgd", "l1")])
def test_optimiser_reaches_its_max_margin(method, attack):
    D = make_data(30, 10, 0)
    X, y = D["X"], D["y"]
    _, g = max_margin(X, y, DUAL[attack])
    rec = train_linear(method, X, y, 4000)
    ratios = [margin(rec[t], X, y, attack) / g for t in sorted(rec)]
    assert ratios[-1] > 0.97 and ratios[-1] <= 1 + 1e-9
    assert ratios[-1] > ratios[len(ratios) // 2]  # still climbing towards 1, not stuck
    # and it is the max-margin of *its* norm: in another norm it stays clearly below 1
    other = "l1" if attack == "linf" else "linf"
    _, g2 = max_margin(X, y, DUAL[other])
    assert margin(rec[max(rec)], X, y, other) / g2 < 0.9
