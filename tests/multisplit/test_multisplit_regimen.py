"""A ``multisplit:`` regimen inside a study grid, next to an ordinary one, at the same budget."""

from __future__ import annotations

import json

import pytest

from trainwise.errors import ConfigError
from trainwise.study.config import StudyConfig, TrialConfig, parse_config
from trainwise.study.runner import run_study

BASE = dict(
    name="ms-regimen",
    dataset={"name": "synthetic", "synthetic": {"n_train": 240, "n_test": 60, "size": 8}},
    model={"name": "linear"},
    train={"epochs": 2, "batch_size": 20, "threads": 1},
    seeds=[0],
    budgets=[1.0],
)


def test_multisplit_regimen_runs_in_a_study(tmp_path):
    cfg = StudyConfig(**BASE, regimens=[
        {"name": "plain"},
        {"name": "ms", "multisplit": {"k": 2, "transfer": "greedy", "val_fraction": 0.25}},
    ])
    rows = {r["regimen"]: r for r in run_study(cfg, tmp_path / "s", echo=lambda *a: None)}
    assert {r["status"] for r in rows.values()} == {"done"}
    plain, ms = rows["plain"]["metrics"], rows["ms"]["metrics"]
    # equal compute: each of the K = 2 runs gets budget/2 of its (smaller, 75%) split's schedule
    assert ms["k"] == 2 and ms["steps"] <= plain["steps"]
    trial_dir = tmp_path / "s" / "trials" / rows["ms"]["trial_id"]
    stored = json.loads((trial_dir / "result.json").read_text())  # the multisplit run's own row
    assert (ms["test_acc"], ms["val_acc"], ms["val_own_acc"], ms["mean_process_test_acc"]) == (
        stored["test_acc"], stored["val_mean_acc"], stored["val_own_acc"], stored["mean_process_test_acc"])
    assert stored["init"] == "per_split" and ms["test_acc"] > 0.5 and ms["val_acc"] > 0.5  # trained: 10 classes
    offers = [json.loads(x) for x in (trial_dir / "offers.jsonl").read_text().splitlines()]
    assert len(offers) == ms["offers"] > 0 and sum(o["adopted"] for o in offers) == ms["adopted"]


def test_multisplit_setting_does_not_change_other_trials_hashes():
    assert TrialConfig(seed=3).config_hash() == TrialConfig(seed=3, multisplit=None).config_hash()


def test_bad_multisplit_settings_name_the_key():
    with pytest.raises(ConfigError, match="unknown multisplit setting 'kk'"):
        parse_config({**BASE, "regimens": [{"multisplit": {"kk": 2}}]}, StudyConfig)
    with pytest.raises(ConfigError, match="transfer needs k >= 2"):
        parse_config({**BASE, "regimens": [{"multisplit": {"k": 1, "transfer": "greedy"}}]}, StudyConfig)
    with pytest.raises(ConfigError, match="val_fraction must be 0"):
        parse_config({**BASE, "dataset": {"name": "digits", "val_fraction": 0.1},
                      "regimens": [{"multisplit": {"k": 2}}]}, StudyConfig)
