"""The training loop: it learns, it is deterministic, it honours the budget, it resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from trainwise.errors import CheckpointError, DivergedError
from trainwise.study.config import TrialConfig
from trainwise.train import train


def test_small_cnn_learns_digits():
    """A real learning test: the benchmark CNN reaches >= 95% test accuracy on the 8x8 digits."""
    cfg = TrialConfig(dataset={"name": "digits"}, model={"name": "cnn", "width": 16},
                      optimizer={"lr": 0.05}, train={"epochs": 10, "batch_size": 64}, seed=0)
    r = train(cfg, progress=False)
    assert r["test_acc"] >= 0.95


def test_same_seed_same_numbers(make_trial):
    a = train(TrialConfig(**make_trial()), progress=False)
    b = train(TrialConfig(**make_trial()), progress=False)
    c = train(TrialConfig(**make_trial(seed=1)), progress=False)
    for k in ("test_acc", "test_loss", "train_loss"):
        assert a[k] == b[k]
    assert a["test_loss"] != c["test_loss"]


def test_budget_sets_steps_samples_and_schedule(make_trial, tmp_path):
    # 256 samples, batch 32, 2 epochs: S = 16 full steps; b = 0.5 -> 8 steps, 128 samples per epoch
    cfg = TrialConfig(**make_trial(budget=0.5, train={"epochs": 2, "batch_size": 32, "eval_every": 1}))
    r = train(cfg, tmp_path, progress=False)
    assert r["steps"] == r["total_steps"] == 8
    assert r["epochs"] == 2
    assert r["samples_backpropagated"] == r["samples_forwarded"] == 8 * 32
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == list(range(1, 9))
    lrs = [h["lr"] for h in history]  # lr of step s-1, linear from 0.1 to ~0 over exactly 8 steps
    assert lrs == pytest.approx([0.1 + (1e-6 - 0.1) * s / 8 for s in range(8)])


def test_records_metrics_and_time_to_target(make_trial, tmp_path):
    r = train(TrialConfig(**make_trial(target_accuracy=0.3)), tmp_path, progress=False)
    for k in ("steps", "samples_forwarded", "samples_backpropagated", "wall_time", "train_loss",
              "test_loss", "test_acc", "best_test_acc", "time_to_target"):
        assert k in r
    assert r["best_test_acc"] >= r["test_acc"]
    assert 0 < r["time_to_target"] <= r["wall_time"]
    assert (tmp_path / "model.pt").is_file() and (tmp_path / "result.json").is_file()
    never = train(TrialConfig(**make_trial(target_accuracy=1.0)), progress=False)
    assert never["time_to_target"] is None


def test_validation_split_is_reported(make_trial):
    r = train(TrialConfig(**make_trial(dataset={"val_fraction": 0.25})), progress=False)
    assert 0 <= r["val_acc"] <= 1


def test_nan_loss_stops_and_keeps_last_good_checkpoint(make_trial, tmp_path):
    cfg = TrialConfig(**make_trial(optimizer={"lr": 1e6, "momentum": 0.9}, schedule={"name": "constant"},
                                   train={"epochs": 20, "batch_size": 32, "checkpoint_every": 1}))
    with pytest.raises(DivergedError, match="lower optimizer.lr"):
        train(cfg, tmp_path, progress=False)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_resume_refuses_other_config_and_truncated_checkpoint(make_trial, tmp_path):
    train(TrialConfig(**make_trial()), tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="another config"):
        train(TrialConfig(**make_trial(seed=5)), tmp_path, resume=True, progress=False)
    data = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train(TrialConfig(**make_trial()), tmp_path, resume=True, progress=False)


def _cli(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "trainwise.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def test_resume_after_sigkill_gives_identical_weights(tmp_path):
    cfg = dict(dataset={"name": "digits"}, model={"name": "cnn", "width": 8},
               optimizer={"lr": 0.05}, train={"epochs": 40, "batch_size": 64, "checkpoint_every": 25,
                                              "threads": 1},
               augment=[{"name": "crop-flip", "pad": 1}], seed=3)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    assert _cli(["train", str(path), "--out", str(ref), "--no-progress"]).wait() == 0

    proc = _cli(["train", str(path), "--out", str(killed), "--no-progress"])
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    step = torch.load(killed / "checkpoint.pt", weights_only=True)["state"]["step"]
    assert 0 < step < 40 * 23, "the kill must interrupt the run mid-way"
    assert not (killed / "model.pt").exists()

    assert _cli(["train", str(path), "--out", str(killed), "--resume", "--no-progress"]).wait() == 0
    a = torch.load(ref / "model.pt", weights_only=True)
    b = torch.load(killed / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert json.loads((ref / "result.json").read_text())["test_acc"] == \
        json.loads((killed / "result.json").read_text())["test_acc"]
