"""Multi-split runs: the budget rule, no-transfer splits equal ordinary runs, every offer logged
and adopted only on improvement, the output chosen by mean validation score, and the same
results in-process, in local processes and on Ray actors."""

from __future__ import annotations

import json

import pytest
import ray
import torch
import yaml

from trainwise.cli import main
from trainwise.evaluate import evaluate
from trainwise.models import build_model
from trainwise.multisplit import MultiSplitConfig, run_arm
from trainwise.multisplit.run import split_seed, trial_dict
from trainwise.multisplit.transfer import better, unpack
from trainwise.multisplit.worker import split_data
from trainwise.study.config import TrialConfig
from trainwise.train import train

BASE = dict(
    dataset={"name": "synthetic", "synthetic": {"n_train": 480, "n_test": 120, "size": 8, "noise": 1.0}},
    model={"name": "mlp", "hidden": 32, "depth": 1},
    optimizer={"lr": 0.05},
    train={"epochs": 4, "batch_size": 32, "threads": 1},
    arms=[{"name": "conventional", "k": 1, "transfer": "none", "val_fraction": 0.2},
          {"name": "independent", "k": 3, "transfer": "none", "val_fraction": 0.2},
          {"name": "greedy", "k": 3, "transfer": "greedy", "val_fraction": 0.2},
          {"name": "soft", "k": 3, "transfer": "soft", "offer": "best", "val_fraction": 0.2},
          {"name": "pair", "k": 2, "transfer": "greedy", "val_fraction": 0.2}],
)
UNTIMED = lambda r: {k: v for k, v in r.items() if k not in ("wall_time", "train_time", "executor")}  # noqa: E731


@pytest.fixture(scope="module")
def cfg():
    return MultiSplitConfig(**BASE)


@pytest.fixture(scope="module")
def runs(cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("ms")
    return {a.name: (run_arm(cfg, a, 0, root / a.name, echo=lambda *x: None), root / a.name) for a in cfg.arms}


def test_every_arm_spends_the_same_total_budget(cfg, runs):
    conv = runs["conventional"][0]["total_steps"]
    for name, (r, _) in runs.items():
        k = r["k"]
        assert len(r["steps_per_split"]) == k
        assert conv - k <= r["total_steps"] <= conv, name  # b/K of the schedule each, up to rounding
        assert len(set(r["steps_per_split"])) == 1


def test_without_transfer_each_split_is_an_ordinary_training_run(cfg, runs, tmp_path):
    """Rounds pause and resume the standard loop: split k's weights equal one uninterrupted train()."""
    arm = cfg.arms[1]
    out = runs["independent"][1]
    for k in range(arm.k):
        trial = TrialConfig(**trial_dict(cfg, arm, 0, k, 1))
        assert trial.budget == pytest.approx(cfg.budget / arm.k)
        data = split_data(cfg.dataset.model_dump(), arm.val_fraction, split_seed(0, k))
        train(trial, tmp_path / f"ref{k}", data=data, progress=False)
        got = torch.load(out / f"split{k}" / "model.pt", weights_only=True)
        ref = torch.load(tmp_path / f"ref{k}" / "model.pt", weights_only=True)
        assert all(torch.equal(got[n], ref[n]) for n in ref)
    assert not (out / "offers.jsonl").exists() and runs["independent"][0]["offers"] == 0


def test_every_offer_is_logged_and_adopted_only_if_it_improves(cfg, runs):
    for name, offer_per_receiver in (("greedy", 2), ("soft", None)):
        r, out = runs[name]
        lines = [json.loads(x) for x in (out / "offers.jsonl").read_text().splitlines()]
        transfer_rounds = r["rounds"] - 1  # no transfer after the last steps
        if offer_per_receiver:  # offer: all -> each receiver sees the K-1 others every round
            assert len(lines) == transfer_rounds * r["k"] * offer_per_receiver
        else:  # offer: best -> everyone but the best worker gets one offer
            assert len(lines) == transfer_rounds * (r["k"] - 1)
        assert len(lines) == r["offers"] and sum(x["adopted"] for x in lines) == r["adopted"]
        for key in {(x["round"], x["receiver"]) for x in lines}:
            recs = [x for x in lines if (x["round"], x["receiver"]) == key]
            assert all(x["donor"] != x["receiver"] for x in recs)
            assert sum(x["adopted"] for x in recs) <= 1
            for x in recs:
                assert x["improves"] == better((x["offer_val_acc"], x["offer_val_loss"]),
                                               (x["own_val_acc"], x["own_val_loss"]))
                if x["adopted"]:
                    assert x["improves"] and all(not better((o["offer_val_acc"], o["offer_val_loss"]),
                                                            (x["offer_val_acc"], x["offer_val_loss"])) for o in recs)
            if any(x["improves"] for x in recs):
                assert any(x["adopted"] for x in recs)
    assert runs["greedy"][0]["adopted"] > 0  # the synthetic task does give improving offers


def test_output_is_the_best_mean_validation_model_evaluated_once_on_test(cfg, runs):
    for name, (r, out) in runs.items():
        m = r["val_matrix"]  # m[j][i]: candidate i on validation split j
        means = [sum(m[j][i] for j in range(r["k"])) / r["k"] for i in range(r["k"])]
        assert r["val_mean_acc"] == pytest.approx(means[r["chosen"]])
        assert means[r["chosen"]] == max(means)
        state = unpack((out / "model.pt").read_bytes())
        data = split_data(cfg.dataset.model_dump(), 0.2, split_seed(0, r["chosen"]))
        model = build_model("mlp", data.input_shape, data.num_classes, *data.channel_stats(), hidden=32, depth=1)
        model.load_state_dict(state)
        loss, acc = evaluate(model, data.x_test, data.y_test)
        assert acc == r["test_acc"] and loss == pytest.approx(r["test_loss"], rel=1e-6)
    conv = runs["conventional"][0]
    assert conv["val_own_acc"] == conv["val_mean_acc"]  # one split: best-validation checkpoint


@pytest.mark.parametrize("executor", ["processes", "ray"])
def test_executors_give_identical_results(cfg, runs, executor, tmp_path):
    arm = cfg.arms[4]  # K = 2 with greedy transfer (two workers: spawning them is the slow part)
    ref, ref_dir = runs[arm.name]
    assert ref["offers"] > 0
    if executor == "ray":
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        got = run_arm(cfg, arm, 0, tmp_path / "x", executor=executor, echo=lambda *x: None)
    finally:
        if executor == "ray":
            ray.shutdown()
    assert got["executor"] == executor and UNTIMED(got) == UNTIMED(ref)
    assert (tmp_path / "x" / "offers.jsonl").read_text() == (ref_dir / "offers.jsonl").read_text()
    a, b = unpack((tmp_path / "x" / "model.pt").read_bytes()), unpack((ref_dir / "model.pt").read_bytes())
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_cli_runs_arms_by_seeds_and_rejects_bad_config(tmp_path, capsys):
    conf = {**BASE, "name": "tiny", "seeds": [0, 1], "arms": [BASE["arms"][0]],
            "train": {"epochs": 2, "batch_size": 32, "threads": 1}}
    p = tmp_path / "ms.yaml"
    p.write_text(yaml.safe_dump(conf))
    assert main(["multisplit", str(p), "--out", str(tmp_path / "o")]) == 0
    rows = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [(r["arm"], r["seed"]) for r in rows] == [("conventional", 0), ("conventional", 1)]
    assert "| conventional | 1 | none | 2 |" in (tmp_path / "o" / "report.md").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**conf, "arms": [{"name": "x", "k": 1, "transfer": "greedy"}]}))
    assert main(["multisplit", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "transfer needs k >= 2" in err[0]
