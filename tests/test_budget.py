import math

import pytest

from trainwise.budget import Budget, lr_at
from trainwise.errors import ConfigError


def test_budget_steps_and_samples():
    b = Budget(epochs=10, batch_size=64, n_train=1000, fraction=0.3)
    assert b.steps_per_full_epoch == 16
    assert b.full_steps == 160
    assert b.total_steps == 48  # floor(0.3 * 160)
    assert b.samples_per_epoch == 300  # floor(0.3 * 1000)


@pytest.mark.parametrize("frac", [0.0, -0.5, 1.5])
def test_budget_outside_unit_interval(frac):
    with pytest.raises(ConfigError, match="outside"):
        Budget(10, 64, 1000, frac)


def test_impossible_budget():
    with pytest.raises(ConfigError, match="impossible budget"):
        Budget(epochs=1, batch_size=64, n_train=100, fraction=0.1)


def test_linear_schedule_is_laid_over_budgeted_steps():
    total = 48
    lrs = [lr_at(s, total, 0.1, "linear") for s in range(total)]
    assert lrs[0] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    # the value the schedule reaches at step `total` is ~0 (1e-6): it decays over exactly the budget
    assert lr_at(total, total, 0.1, "linear") == pytest.approx(1e-6)
    assert lrs[total // 2] == pytest.approx(0.1 + (1e-6 - 0.1) * 0.5)


def test_step_schedule_milestones_are_budget_fractions():
    total = 100
    assert lr_at(49, total, 1.0, "step", milestones=[0.5, 0.75]) == 1.0
    assert lr_at(50, total, 1.0, "step", milestones=[0.5, 0.75]) == pytest.approx(0.1)
    assert lr_at(75, total, 1.0, "step", milestones=[0.5, 0.75]) == pytest.approx(0.01)


def test_cosine_and_onecycle():
    total = 100
    assert lr_at(0, total, 1.0, "cosine") == pytest.approx(1.0)
    assert lr_at(50, total, 1.0, "cosine") == pytest.approx(0.5, abs=1e-5)
    warm = [lr_at(s, total, 1.0, "onecycle") for s in range(10)]
    assert warm == sorted(warm) and warm[-1] == pytest.approx(1.0)
    assert lr_at(99, total, 1.0, "onecycle") < 0.01
    assert math.isclose(lr_at(10, total, 1.0, "onecycle"), 1.0)
