"""The exhaustive order probe (arXiv:2211.14395): every order of k batches exactly once, the same
order gives the same numbers, the identity order is one plain ``uniform`` epoch, the subset comes
from the training split only, and an interrupted probe resumes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import trainwise.study.probe_order as po
from trainwise.cli import main
from trainwise.data import TensorData
from trainwise.errors import ConfigError, TrainwiseError
from trainwise.interrupt import Interrupted
from trainwise.study.config import TrialConfig, parse_config
from trainwise.study.probe_order import ProbeConfig, Prober, order_of, probe_data, run_chunk, splits, trial_config
from trainwise.study.probe_report import percentile, persistence
from trainwise.study.probe_runner import ProbeStore, kept_prefixes, run_probe
from trainwise.train import train

SYNTH = {"name": "synthetic", "synthetic": {"n_train": 120, "n_test": 60, "size": 6, "num_classes": 3}}


def small(**over) -> ProbeConfig:
    """4 batches of 2 (24 orders) of two synthetic classes; a small MLP."""
    d = dict(dataset=SYNTH, model={"name": "mlp", "hidden": 8, "depth": 1}, classes=[0, 2], train_samples=8,
             batch_size=2, clusters=2, chunk=6, greedy=[{"name": "max-loss-delta", "attempts": 8}])
    d.update(over)
    return ProbeConfig(**d)


@pytest.mark.parametrize("k", [2, 4, 6])
def test_order_ids_enumerate_each_of_the_k_factorial_orders_once(k):
    orders = [order_of(i, k) for i in range(math.factorial(k))]
    assert orders == list(itertools.permutations(range(k)))  # lexicographic: 0 is the identity
    assert len(set(orders)) == math.factorial(k)


def test_the_reference_defaults_give_720_orders():
    cfg = ProbeConfig()
    assert (cfg.train_samples, cfg.batch_size, cfg.batches, cfg.orders) == (48, 8, 6, 720)
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.nesterov, cfg.optimizer.weight_decay) == \
        (0.05, 0.9, True, 1e-4)


def test_probe_stores_k_factorial_rows_per_prefix_and_writes_the_report(tmp_path):
    cfg = small(epochs=2)
    run_probe(cfg, tmp_path, echo=lambda m: None)
    store = ProbeStore(tmp_path / "probe.db", cfg)
    try:
        assert len(store.rows(0, [])) == 24
        prefixes = [json for (json,) in store.db.execute("SELECT DISTINCT prefix FROM orders WHERE epoch = 1")]
        assert 2 <= len(prefixes) <= cfg.clusters + 2
        n = store.db.execute("SELECT COUNT(*) FROM orders WHERE epoch = 1").fetchone()[0]
        assert n == 24 * len(prefixes)
    finally:
        store.close()
    md = (tmp_path / "probe.md").read_text()
    assert "| 1 | 24 |" in md and "| 2 | " in md and "Pearson" in md and (tmp_path / "probe.png").stat().st_size


def test_the_same_order_gives_bit_identical_results():
    cfg = small(epochs=2)
    job = {"task": "probe-order", "probe": cfg.model_dump(mode="json"), "epoch": 1, "prefix": [13],
           "orders": [0, 24]}
    a = run_chunk(job)["rows"]
    po._CACHE.clear()  # a fresh worker: data, model and splits rebuilt
    b = run_chunk(job)["rows"]
    assert a == b
    c = run_chunk({**job, "orders": [5, 6]})["rows"]  # one order alone = the same order in a chunk
    assert c == [a[5]]
    assert len({(r[1], r[2]) for r in a}) > 1  # and the orders do differ


def test_identity_order_equals_one_plain_uniform_epoch(tmp_path):
    cfg = small()
    data = probe_data(cfg)
    prober = Prober(cfg, data)
    split = splits(cfg, data.n_train, 1)[0]
    got = prober.run(prober.start([]), [split[i] for i in order_of(0, cfg.batches)])
    ref = train(TrialConfig(**trial_config(cfg, "uniform", 1)), tmp_path, progress=False, data=data)
    assert got == (ref["test_loss"], ref["test_acc"])
    weights = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(torch.equal(weights[k], v) for k, v in prober.model.state_dict().items())


def test_a_max_loss_delta_epoch_is_one_of_the_probed_orders_bit_for_bit(tmp_path):
    """Its trial steps leave nothing behind: its epoch's result is exactly a probed order's."""
    cfg = small()
    data = probe_data(cfg)
    prober = Prober(cfg, data)
    split = splits(cfg, data.n_train, 1)[0]
    state = prober.start([])
    rows = {prober.run(state, [split[i] for i in order_of(o, cfg.batches)]) for o in range(cfg.orders)}
    for mode in ("eval", "train"):
        r = train(TrialConfig(**trial_config(cfg, {"name": "max-loss-delta", "attempts": 8, "mode": mode}, 1)),
                  progress=False, data=data)
        assert (r["test_loss"], r["test_acc"]) in rows


def test_probe_data_come_only_from_the_training_split():
    """Sample ids coded into the pixels: train 0.., validation and test far away."""
    n, c = 90, 3
    ids = torch.arange(300, dtype=torch.float32)
    x = ids.view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone() / 1000
    y = torch.arange(300) % c
    data = TensorData("coded", x[:n], y[:n], x[200:260], y[200:260], c, x_val=x[100:130], y_val=y[100:130])
    cfg = small(classes=[2, 0], train_samples=12, batch_size=3, test_per_class=5)
    sub = probe_data(cfg, data)
    got = (sub.x_train[:, 0, 0, 0] * 1000).round().long()
    assert (got < n).all() and len(set(got.tolist())) == 12
    assert torch.equal(sub.y_train, torch.tensor([0] * 6 + [1] * 6))  # relabelled in ``classes`` order
    assert ((got % c) == torch.tensor([2] * 6 + [0] * 6)).all()
    test = (sub.x_test[:, 0, 0, 0] * 1000).round().long()
    assert ((test >= 200) & (test < 260)).all() and len(test) == 10
    assert sub.x_val is None


def test_an_interrupted_probe_resumes_with_the_missing_orders_only(tmp_path, monkeypatch):
    cfg = small()
    run_probe(cfg, tmp_path / "ref", echo=lambda m: None)
    real, calls = po.run_chunk, []

    def flaky(job, run_dir=None):
        calls.append(job["orders"][0])
        if len(calls) == 3:
            raise Interrupted()
        return real(job, run_dir)

    monkeypatch.setattr(po, "run_chunk", flaky)
    with pytest.raises(Interrupted):
        run_probe(cfg, tmp_path / "cut", echo=lambda m: None)
    calls.clear()
    run_probe(cfg, tmp_path / "cut", echo=lambda m: None)
    assert sorted(calls) == [12, 18]  # the two jobs that had not finished
    a, b = ProbeStore(tmp_path / "ref" / "probe.db", cfg), ProbeStore(tmp_path / "cut" / "probe.db", cfg)
    assert a.rows(0, []) == b.rows(0, [])
    a.close(), b.close()


def test_a_probe_directory_refuses_other_settings(tmp_path):
    ProbeStore(tmp_path / "probe.db", small()).close()
    ProbeStore(tmp_path / "probe.db", small(epochs=3, clusters=5)).close()  # only later epochs change
    with pytest.raises(TrainwiseError, match="other settings"):
        ProbeStore(tmp_path / "probe.db", small(seed=4))


def test_processes_executor_gives_the_same_rows(tmp_path):
    cfg = small()
    run_probe(cfg, tmp_path / "local", echo=lambda m: None)
    run_probe(cfg, tmp_path / "procs", executor="processes", workers=2, echo=lambda m: None)
    a, b = ProbeStore(tmp_path / "local" / "probe.db", cfg), ProbeStore(tmp_path / "procs" / "probe.db", cfg)
    assert a.rows(0, []) == b.rows(0, []) and len(a.rows(0, [])) == 24
    a.close(), b.close()


def test_kept_prefixes_hold_the_best_the_worst_and_one_per_cluster():
    losses = [0.5, 0.1, 0.9, 0.11, 0.52, 0.88, 0.3]
    rows = [([4], o, loss) for o, loss in enumerate(losses)]
    kept = kept_prefixes(rows, 3, 0)
    assert [4, 1] in kept and [4, 2] in kept and 3 <= len(kept) <= 5
    assert all(p[:1] == [4] for p in kept)


def test_percentile_and_persistence():
    v = np.array([0.1, 0.2, 0.3, 0.4])
    assert percentile(v, 0.35) == 75 and percentile(v, 0.2) == 37.5 and percentile(v, 0.2, False) == 62.5
    prev = [([], 0, 1.0, 0), ([], 1, 2.0, 0), ([], 2, 3.0, 0)]
    rows = [([0], 0, 0.5, 0), ([1], 0, 0.7, 0), ([2], 0, 0.9, 0), ([2], 1, 0.8, 0)]
    r, rho, n = persistence(prev, rows)
    assert n == 4 and r > 0.9 and rho > 0.9


def test_bad_probe_settings_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="multiple of batch_size"):
        parse_config({"train_samples": 50}, ProbeConfig)
    with pytest.raises(ConfigError, match="2 to 8"):
        parse_config({"train_samples": 72, "batch_size": 8}, ProbeConfig)
    cfg = tmp_path / "p.yaml"
    cfg.write_text("dataset: {name: synthetic, synthetic: {n_train: 60, n_test: 30, size: 6, num_classes: 3}}\n"
                   "classes: [0, 7]\ntrain_samples: 8\nbatch_size: 2\n")
    assert main(["probe-order", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "classes [7]" in err[0] and "pick others" in err[0]


def test_cli_probe_order_writes_probe_md(tmp_path, capsys):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("dataset: {name: synthetic, synthetic: {n_train: 60, n_test: 30, size: 6, num_classes: 3}}\n"
                   "model: {name: linear}\nclasses: [0, 1]\ntrain_samples: 6\nbatch_size: 2\nclusters: 2\n"
                   "greedy: [{name: multi-attempt, attempts: 2}]\n")
    assert main(["probe-order", str(cfg), "--out", str(tmp_path / "o"), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | 6 |" in out and "multi-attempt (A=2)" in out and (tmp_path / "o" / "probe.md").exists()


def test_the_example_configs_are_valid():
    from pathlib import Path

    from trainwise.study.config import StudyConfig, load_config

    root = Path(__file__).resolve().parents[2] / "examples"
    probe = load_config(root / "order_probe.yaml", ProbeConfig)
    assert probe.orders == 720 and probe.classes == [0, 6]
    study = load_config(root / "ordering_budget.yaml", StudyConfig)
    assert {r.sampler["name"] for r in study.regimen_list()} == {"uniform", "multi-attempt", "max-loss-delta"}
