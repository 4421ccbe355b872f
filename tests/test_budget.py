import math

import numpy as np

import pytest

from trainwise.budget import Budget, lr_at
from trainwise.errors import ConfigError


def test_budget_steps_and_samples():
    b = Budget(epochs=10, batch_size=64, n_train=1000, fraction=0.3)
    assert b.steps_per_full_epoch == 15  # floor(1000 / 64): the partial batch is dropped
    assert b.full_steps == 150
    assert b.samples_per_epoch == 300  # floor(0.3 * 1000)
    assert b.steps_per_epoch == 4  # floor(300 / 64)
    assert b.total_steps == 40  # exactly E = 10 epochs of 4 steps


def test_budget_without_drop_last_keeps_the_partial_batch():
    b = Budget(epochs=10, batch_size=64, n_train=1000, fraction=0.3, drop_last=False)
    assert b.steps_per_full_epoch == 16 and b.full_steps == 160
    assert b.steps_per_epoch == 5 and b.total_steps == 50  # ceil(300 / 64) per epoch, 10 epochs


def test_a_budget_epoch_smaller_than_a_batch_is_refused_with_drop_last():
    with pytest.raises(ConfigError, match="drop_last"):
        Budget(epochs=5, batch_size=64, n_train=100, fraction=0.5)  # 50 samples: no full batch
    assert Budget(5, 64, 100, 0.5, drop_last=False).total_steps == 5


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
    # the last budgeted step uses exactly final_lr (1e-6), as np.linspace(lr0, 1e-6, total) does
    assert lrs[-1] == pytest.approx(1e-6, abs=1e-12)
    assert lrs == pytest.approx(np.linspace(0.1, 1e-6, total).tolist(), abs=1e-12)
    assert lr_at(total - 1, total, 0.1, "linear", final_lr=0.01) == pytest.approx(0.01)


def test_step_schedule_milestones_are_budget_fractions():
    total = 100
    assert lr_at(49, total, 1.0, "step", milestones=[0.5, 0.75]) == 1.0
    assert lr_at(50, total, 1.0, "step", milestones=[0.5, 0.75]) == pytest.approx(0.1)
    assert lr_at(75, total, 1.0, "step", milestones=[0.5, 0.75]) == pytest.approx(0.01)


def test_cosine_and_onecycle():
    total = 100
    assert lr_at(0, total, 1.0, "cosine") == pytest.approx(1.0)
    assert lr_at(99, total, 1.0, "cosine") == pytest.approx(1e-6, abs=1e-12)  # final_lr at the last step
    mid = 1e-6 + 0.5 * (1 - 1e-6) * (1 + math.cos(math.pi * 50 / 99))
    assert lr_at(50, total, 1.0, "cosine") == pytest.approx(mid)
    warm = [lr_at(s, total, 1.0, "onecycle") for s in range(10)]
    assert warm == sorted(warm) and warm[-1] == pytest.approx(1.0)
    assert lr_at(99, total, 1.0, "onecycle") == pytest.approx(1e-6, abs=1e-12)
    assert math.isclose(lr_at(10, total, 1.0, "onecycle"), 1.0)
