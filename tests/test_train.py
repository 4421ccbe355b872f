"""The training loop: it learns, it is deterministic, it honours the budget, it resumes exactly."""

from __future__ import annotations

import copy
import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import trainwise.train
from trainwise.data import load_dataset
from trainwise.errors import CheckpointError, DivergedError
from trainwise.evaluate import evaluate
from trainwise.models import build_model
from trainwise.registry import Settings
from trainwise.sampling import SAMPLERS, Selection
from trainwise.study.config import TrialConfig
from trainwise.train import train
from helpers import cli_process, trial_dict


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


def history_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def saved_linear_model(run_dir: Path, data) -> torch.nn.Module:
    """The ``linear`` model a run wrote to ``model.pt``."""
    model = build_model("linear", data.input_shape, data.num_classes, *data.channel_stats())
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True))
    return model


def test_budget_sets_steps_samples_and_schedule(make_trial, tmp_path):
    # 256 samples, batch 32, 2 epochs: S = 16 full steps; b = 0.5 -> 2 epochs of 128 samples = 8 steps
    cfg = TrialConfig(**make_trial(budget=0.5, train={"epochs": 2, "batch_size": 32, "eval_every": 1}))
    r = train(cfg, tmp_path, progress=False)
    assert r["steps"] == r["total_steps"] == 8
    assert r["epochs"] == 2
    assert r["samples_backpropagated"] == r["samples_forwarded"] == 8 * 32
    history = history_of(tmp_path)
    assert [h["step"] for h in history] == list(range(1, 9))
    lrs = [h["lr"] for h in history]  # lr of step s-1: linear from 0.1 to exactly 1e-6 at the last step
    assert lrs == pytest.approx(np.linspace(0.1, 1e-6, 8).tolist(), abs=1e-12)


SAMPLER_SPECS = ["uniform", "p-sgd", "c-sgd", "selective-backprop", {"name": "importance", "tau_th": 0.0},
                 "importance", "infobatch"]


@pytest.mark.parametrize("sampler", SAMPLER_SPECS, ids=lambda s: s if isinstance(s, str) else "importance-always")
def test_every_sampler_runs_exactly_e_epochs_of_full_batches_and_ends_at_final_lr(make_trial, tmp_path, sampler):
    # 250 samples, b = 0.5: epochs of 125 samples -> floor(125 / 32) = 3 full batches (29 dropped), E = 3;
    # InfoBatch at b = 1 (7 batches an epoch) so that its pruning removes whole batches
    budget, per_epoch = (1.0, 7) if sampler == "infobatch" else (0.5, 3)
    cfg = TrialConfig(**make_trial(sampler=sampler, budget=budget, dataset={"synthetic": {"n_train": 250}},
                                   train={"epochs": 3, "batch_size": 32, "eval_every": 1}))
    r = train(cfg, tmp_path, progress=False)
    history = history_of(tmp_path)
    assert r["epochs"] == 3 and history[-1]["epoch"] == 2
    if sampler == "infobatch":  # the pruned epoch 1 is shorter; the last (unpruned) one is full
        assert r["steps"] == r["total_steps"] < 3 * per_epoch
        assert [h["epoch"] for h in history].count(2) == per_epoch
    else:
        assert r["steps"] == r["total_steps"] == 3 * per_epoch
    assert r["samples_backpropagated"] == 32 * r["steps"]  # no partial batch
    assert [h["step"] for h in history] == list(range(1, r["steps"] + 1))
    assert history[-1]["lr"] == pytest.approx(1e-6, abs=1e-12) and history[0]["lr"] == pytest.approx(0.1)


def test_drop_last_false_trains_the_partial_batch(make_trial):
    cfg = TrialConfig(**make_trial(budget=0.5, dataset={"synthetic": {"n_train": 250}},
                                   train={"epochs": 3, "batch_size": 32, "drop_last": False}))
    r = train(cfg, progress=False)
    assert r["steps"] == 3 * 4 and r["samples_backpropagated"] == 3 * 125


@SAMPLERS.register("test-fixed-weights")
class FixedWeights:
    """A test sampler: the same 6 indices every step, with unequal loss weights."""

    wants_feedback = False
    Settings = Settings
    IDX = torch.tensor([0, 5, 9, 17, 40, 41])
    WEIGHT = torch.tensor([0.2, 3.0, 1.0, 0.5, 2.0, 0.1])

    def __init__(self, ctx, settings):
        pass

    def begin_epoch(self, epoch):
        return 1

    def next_batch(self, step_in_epoch, scorer):
        return Selection(self.IDX, self.WEIGHT)

    def state_dict(self):
        return {}


def test_one_step_applies_the_weighted_mean_loss(make_trial, tmp_path, monkeypatch):
    """The update of one SGD step equals lr * grad of mean(w_i * loss_i), computed here by hand."""
    built = {}
    real_build = trainwise.train.build_model

    def keep_initial(*a, **kw):
        built["model"] = real_build(*a, **kw)
        built["initial"] = copy.deepcopy(built["model"])
        return built["model"]

    monkeypatch.setattr(trainwise.train, "build_model", keep_initial)
    cfg = TrialConfig(**make_trial(sampler="test-fixed-weights", optimizer={"lr": 0.5, "momentum": 0.0, "weight_decay": 0.0},
                                   schedule={"name": "constant"}, budget=1 / 8,
                                   train={"epochs": 1, "batch_size": 32}))
    assert train(cfg, tmp_path, progress=False)["steps"] == 1
    data = load_dataset(cfg.dataset)
    model = built["initial"]
    x, y = data.x_train[FixedWeights.IDX], data.y_train[FixedWeights.IDX]
    losses = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
    (FixedWeights.WEIGHT * losses).sum().div(len(y)).backward()
    after = torch.load(tmp_path / "model.pt", weights_only=True)
    for name, p in model.named_parameters():
        assert torch.allclose(after[name], p.detach() - 0.5 * p.grad, atol=1e-6), name
    plain = torch.nn.functional.cross_entropy(model(x), y)  # the update if the weights were ignored
    unweighted = [p.detach() - 0.5 * g for p, g in zip(
        model.parameters(), torch.autograd.grad(plain, list(model.parameters())))]
    assert not all(torch.allclose(after[n], u, atol=1e-6) for (n, _), u in zip(model.named_parameters(), unweighted))


def test_records_metrics_and_time_to_target(make_trial, tmp_path):
    cfg = TrialConfig(**make_trial(target_accuracy=0.3, train={"epochs": 2, "batch_size": 32, "eval_every": 2}))
    r = train(cfg, tmp_path, progress=False)
    history = history_of(tmp_path)
    assert json.loads((tmp_path / "result.json").read_text()) == r
    assert r["test_acc"] == history[-1]["test_acc"]
    # best_test_acc is a diagnostic read off the test set (never used to select anything)
    assert r["best_test_acc"] == max(h["test_acc"] for h in history)
    first = next(h for h in history if h["test_acc"] >= 0.3)
    assert r["time_to_target"] == first["time"] and 0 < r["time_to_target"] <= r["wall_time"]
    data = load_dataset(cfg.dataset)  # model.pt holds the final weights: it reproduces test_acc
    assert evaluate(saved_linear_model(tmp_path, data), data.x_test, data.y_test)[1] == r["test_acc"]
    never = train(TrialConfig(**make_trial(target_accuracy=1.0)), progress=False)
    assert never["time_to_target"] is None


def test_validation_split_is_reported(make_trial, tmp_path):
    cfg = TrialConfig(**make_trial(dataset={"val_fraction": 0.25}))
    r = train(cfg, tmp_path, progress=False)
    data = load_dataset(cfg.dataset)
    assert len(data.y_val) == 60 and len(data.y_train) == 196  # stratified: 6 of each of 10 classes
    assert r["val_acc"] == evaluate(saved_linear_model(tmp_path, data), data.x_val, data.y_val)[1] > 1 / data.num_classes


def test_resume_restores_the_transform_generator(make_trial, tmp_path):
    """A run paused mid-way and resumed (in-process) equals an uninterrupted one with mixup, whose
    draws come from the loop's transform generator."""
    cfg = TrialConfig(**make_trial(augment=[{"name": "mixup", "alpha": 1.0}], train={"epochs": 2, "batch_size": 32}))
    whole = train(cfg, tmp_path / "whole", progress=False)
    assert train(cfg, tmp_path / "paused", progress=False, until=5)["steps"] == 5
    resumed = train(cfg, tmp_path / "paused", resume=True, progress=False)
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "paused" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a) and whole["test_loss"] == resumed["test_loss"]


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




def test_resume_after_sigkill_gives_identical_weights(tmp_path):
    cfg = dict(dataset={"name": "digits"}, model={"name": "cnn", "width": 8},
               optimizer={"lr": 0.05}, train={"epochs": 40, "batch_size": 64, "checkpoint_every": 25,
                                              "threads": 1},
               augment=[{"name": "crop-flip", "pad": 1}], seed=3)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    assert cli_process(["train", str(path), "--out", str(ref), "--no-progress"]).wait() == 0

    proc = cli_process(["train", str(path), "--out", str(killed), "--no-progress"])
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    step = torch.load(killed / "checkpoint.pt", weights_only=True)["state"]["step"]
    assert 0 < step < 40 * 23, "the kill must interrupt the run mid-way"
    assert not (killed / "model.pt").exists()

    assert cli_process(["train", str(path), "--out", str(killed), "--resume", "--no-progress"]).wait() == 0
    a = torch.load(ref / "model.pt", weights_only=True)
    b = torch.load(killed / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert json.loads((ref / "result.json").read_text())["test_acc"] == \
        json.loads((killed / "result.json").read_text())["test_acc"]


@pytest.mark.parametrize("over", [dict(sampler="infobatch"),
                                  dict(sampler="selective-backprop", train={"budget_unit": "forward_backward"})],
                         ids=["infobatch", "forward_backward"])
def test_resume_of_a_finished_run_without_its_result_keeps_the_planned_steps(make_trial, tmp_path, over):
    """A resume that found the final checkpoint but no result.json wrote total_steps = the budget's
    T (InfoBatch 246 vs 204; forward_backward 147 vs 73), not the run's own plan."""
    train_over = {"epochs": 3, "batch_size": 16, **over.get("train", {})}
    cfg = TrialConfig(**make_trial(**{**over, "train": train_over}))
    first = train(cfg, tmp_path, progress=False)
    assert first["total_steps"] != cfg.make_budget(256).total_steps  # the plan differs from T here
    (tmp_path / "result.json").unlink()
    again = train(cfg, tmp_path, resume=True, progress=False)
    assert again["total_steps"] == first["total_steps"] and again["steps"] == first["steps"]


def test_resume_with_other_thread_count_says_so(make_trial, tmp_path, capsys):
    cfg = TrialConfig(**make_trial())
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        train(cfg, tmp_path, progress=False, until=3)
        torch.set_num_threads(2)
        capsys.readouterr()
        train(cfg, tmp_path, resume=True, progress=False)
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err
    assert "written with 1 torch threads, resuming with 2" in err


def test_checkpoint_with_the_right_hash_but_wrong_contents_is_one_error(make_trial, tmp_path):
    cfg = TrialConfig(**make_trial())
    train(cfg, tmp_path, progress=False, until=3)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    ck["model"] = {k: torch.zeros(3) for k in ck["model"]}  # wrong shapes
    torch.save(ck, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="does not fit this run"):
        train(cfg, tmp_path, resume=True, progress=False)
    del ck["sampler"]  # a missing key
    torch.save(ck, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not a trainwise checkpoint"):
        train(cfg, tmp_path, resume=True, progress=False)


def test_stale_temporary_files_of_a_killed_write_are_removed(make_trial, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    train(TrialConfig(**make_trial()), tmp_path, progress=False)
    assert not stale.exists() and not list(tmp_path.glob(".*.tmp"))


def test_divergence_without_a_checkpoint_does_not_claim_one(make_trial, tmp_path):
    cfg = TrialConfig(**make_trial(optimizer={"lr": 1e6, "momentum": 0.9}, schedule={"name": "constant"},
                                   train={"epochs": 20, "batch_size": 32, "checkpoint_every": 1000,
                                          "eval_every": 1000, "checkpoint_seconds": 0}))
    with pytest.raises(DivergedError) as e:
        train(cfg, tmp_path, progress=False)
    assert "checkpoint" not in str(e.value) and not (tmp_path / "checkpoint.pt").exists()


def test_result_records_process_cpu_time_next_to_wall_time(make_trial):
    r = train(TrialConfig(**make_trial()), progress=False)
    assert r["cpu_time"] > 0 and r["wall_time"] > 0


def test_data_passed_in_must_carry_the_validation_split_the_config_asks_for(make_trial):
    """train(cfg, data=...) silently ignored dataset.val_fraction."""
    from trainwise.errors import TrainwiseError

    cfg = TrialConfig(**make_trial(dataset={"val_fraction": 0.2}))
    raw = load_dataset(TrialConfig(**make_trial()).dataset)
    with pytest.raises(TrainwiseError, match="validation split"):
        train(cfg, data=raw, progress=False)
    assert "val_acc" in train(cfg, data=load_dataset(cfg.dataset), progress=False)


def test_time_to_target_is_read_on_validation_accuracy_when_there_is_a_split(tmp_path):
    """The test set decides nothing: with a validation split, the target is checked on val_acc."""
    cfg = TrialConfig(**trial_dict(dataset={"val_fraction": 0.25}, target_accuracy=0.5,
                                   train={"epochs": 4, "batch_size": 32, "eval_every": 2}))
    result = train(cfg, tmp_path)
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
               if '"val_acc"' in line]
    first = next(h for h in history if h["val_acc"] >= 0.5)
    assert result["time_to_target"] == pytest.approx(first["time"])
    assert any(h["test_acc"] != h["val_acc"] for h in history)  # two different criteria
