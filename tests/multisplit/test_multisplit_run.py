"""Multi-split runs: the budget rule, no-transfer splits equal ordinary runs, every offer logged
and adopted only on improvement, the output chosen by mean validation score, and the same
results in-process, in local processes and on Ray actors."""

from __future__ import annotations

import json

import pytest
import ray
import torch
import yaml

from trainwise.budget import Budget
from trainwise.cli import main
from trainwise.evaluate import evaluate
from trainwise.models import build_model
from trainwise.multisplit import MultiSplitConfig, run_arm
from trainwise.multisplit.run import split_seed, trial_dict
from trainwise.multisplit.transfer import better, unpack
from trainwise.multisplit.worker import split_data
from trainwise.study.config import TrialConfig
from trainwise.train import CHECKPOINT, train

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
    epochs, n_train = cfg.train.epochs, split_data(cfg.dataset.model_dump(), 0.2, 0).n_train
    for name, (r, _) in runs.items():
        k = r["k"]
        assert r["steps_per_split"] == [Budget(epochs, 32, n_train, cfg.budget / k).total_steps] * k, name
        assert conv - k * epochs <= r["total_steps"] <= conv, name  # b/K each, up to per-epoch rounding


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


@pytest.mark.parametrize("init", ["per_split", "shared"])
def test_per_split_init_gives_each_process_its_own_weights_and_random_streams(cfg, init, tmp_path):
    """per_split: split k's run is seeded from (seed, k), so its initial weights and its sample order
    differ from the other splits'; shared: all K start identical (and, on the same data, stay so)."""
    arm = cfg.arms[2].model_copy(update={"init": init})
    data = split_data(cfg.dataset.model_dump(), arm.val_fraction, split_seed(0, 0))  # the same data for all K
    inits, ckpts = [], []
    for k in range(arm.k):
        trial = TrialConfig(**trial_dict(cfg, arm, 0, k, 1))
        torch.manual_seed(trial.seed)  # what train() does before building the model
        inits.append(build_model("mlp", data.input_shape, data.num_classes, *data.channel_stats(),
                                 hidden=32, depth=1).state_dict())
        train(trial, tmp_path / f"s{k}", data=data, progress=False, until=1)
        ckpts.append(torch.load(tmp_path / f"s{k}" / CHECKPOINT, weights_only=False))
    same = lambda a, b: all(torch.equal(a[n], b[n]) for n in a)  # noqa: E731
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        agree = [same(inits[i], inits[j]), same(ckpts[i]["model"], ckpts[j]["model"]),
                 torch.equal(ckpts[i]["sampler"]["order"], ckpts[j]["sampler"]["order"]),
                 torch.equal(ckpts[i]["gen"], ckpts[j]["gen"])]
        assert agree == ([True] * 4 if init == "shared" else [False] * 4), (i, j)


def test_same_config_and_seed_give_identical_results(cfg, runs, tmp_path):
    ref, ref_dir = runs["greedy"]
    again = run_arm(cfg, cfg.arms[2], 0, tmp_path / "again", echo=lambda *x: None)
    assert UNTIMED(again) == UNTIMED(ref) and again["adopted"] > 0
    assert (tmp_path / "again" / "offers.jsonl").read_text() == (ref_dir / "offers.jsonl").read_text()
    other = run_arm(cfg, cfg.arms[2], 1, tmp_path / "seed1", echo=lambda *x: None)
    assert other["test_acc_per_split"] != ref["test_acc_per_split"]


def test_mean_process_accuracy_is_the_mean_of_the_stored_per_split_accuracies(cfg, runs):
    for name, (r, out) in runs.items():
        k = r["k"]
        for field, per in (("mean_process_test_acc", "test_acc_per_split"),
                           ("mean_process_final_test_acc", "final_test_acc_per_split"),
                           ("mean_process_val_acc", "val_own_acc_per_split"),
                           ("mean_process_train_acc", "train_acc_per_split")):
            assert len(r[per]) == k and r[field] == pytest.approx(sum(r[per]) / k), (name, field)
        assert r["test_acc_per_split"][r["chosen"]] == r["test_acc"]
        assert r["train_acc_per_split"][r["chosen"]] == r["train_acc"]
        for i in range(k):  # each split's final model, as stored, scores its stored test accuracy
            data = split_data(cfg.dataset.model_dump(), 0.2, split_seed(0, i))
            model = build_model("mlp", data.input_shape, data.num_classes, *data.channel_stats(), hidden=32, depth=1)
            model.load_state_dict(torch.load(out / f"split{i}" / "model.pt", weights_only=True))
            assert evaluate(model, data.x_test, data.y_test)[1] == r["final_test_acc_per_split"][i]
    indep = runs["independent"][0]  # no transfer: a process's best snapshot is its own, scored on its own val
    assert indep["val_own_acc_per_split"] == [indep["val_matrix"][i][i] for i in range(indep["k"])]


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
        assert evaluate(model, data.x_train, data.y_train)[1] == r["train_acc"]  # on its own split's train set
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
    assert "| conventional | 1 | none | per_split | 2 |" in (tmp_path / "o" / "report.md").read_text()
    # a finished run is reused by the same settings only
    assert main(["multisplit", str(p), "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.count("already done") == 2
    p.write_text(yaml.safe_dump({**conf, "arms": [{**conf["arms"][0], "val_fraction": 0.25}]}))
    assert main(["multisplit", str(p), "--out", str(tmp_path / "o")]) == 0
    assert "already done" not in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**conf, "arms": [{"name": "x", "k": 1, "transfer": "greedy"}]}))
    assert main(["multisplit", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "transfer needs k >= 2" in err[0]


def test_multisplit_on_an_unreachable_ray_address_is_one_line_not_a_hang(tmp_path, capsys, monkeypatch):
    import time

    monkeypatch.setenv("TRAINWISE_RAY_CONNECT_TIMEOUT", "2")
    cfg = dict(name="m", dataset={"name": "synthetic", "synthetic": {"n_train": 64, "n_test": 32, "size": 8}},
               model={"name": "linear"}, train={"epochs": 1, "batch_size": 16, "threads": 1},
               arms=[{"name": "two", "k": 2, "transfer": "greedy"}])
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(cfg))
    t0 = time.monotonic()
    code = main(["multisplit", str(path), "--out", str(tmp_path / "out"), "--executor", "ray",
                 "--address", "127.0.0.1:1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "127.0.0.1:1" in err, err
    assert time.monotonic() - t0 < 30
