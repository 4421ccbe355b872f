"""``train.budget_unit``: the budget b*S*B counted in samples backpropagated or in forward+backward
work stops the run, and the LR schedule is laid over the steps that budget yields."""

import pytest
import torch

from helpers import trial_dict
from trainwise.budget import Budget
from trainwise.errors import ConfigError
from trainwise.study.config import TrialConfig, parse_config
from trainwise.train import train

FULL = Budget(2, 32, 256, 1.0)  # the helper's trial: 256 samples, batch 32, 2 epochs -> 16 steps


def run(sampler, unit, tmp_path):
    cfg = TrialConfig(**trial_dict(sampler=sampler, train={"budget_unit": unit}))
    r = train(cfg, tmp_path, progress=False)
    history = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["history"]
    return r, history[-1]["lr"]


def test_backprop_samples_budget(tmp_path):
    r, lr = run("uniform", "backprop_samples", tmp_path)
    limit = FULL.total_steps * 32
    assert r["samples_backpropagated"] >= limit > r["samples_backpropagated"] - 32
    assert r["steps"] == r["total_steps"]


def test_forward_backward_budget_charges_scoring_forwards(tmp_path):
    sb, lr = run("selective-backprop", "forward_backward", tmp_path / "sb")
    work = sb["samples_forwarded"] / 3 + 2 * sb["samples_backpropagated"] / 3
    limit = FULL.total_steps * 32
    assert work >= limit and sb["steps"] < FULL.total_steps  # scoring forwards cost budget: fewer steps
    last_step_work = work - limit
    assert last_step_work < 32 * 12  # stopped at the first step past the budget
    assert sb["steps"] == sb["total_steps"] and lr <= 0.1 / sb["steps"] + 1e-6  # LR ran down over the real steps
    same, _ = run("uniform", "forward_backward", tmp_path / "u")
    assert same["steps"] == FULL.total_steps  # uniform: a sample costs 1/3 + 2/3 = one step's share


def test_unknown_unit_is_a_config_error():
    with pytest.raises(ConfigError, match="budget_unit"):
        parse_config(trial_dict(train={"budget_unit": "epochs"}), TrialConfig)
