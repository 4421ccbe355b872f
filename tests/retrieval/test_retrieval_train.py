"""Retrieval through the loop: the warm-up switch, the collapse detector, resume, a CLI study."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from trainwise import tasks
from trainwise.cli import main
from trainwise.config import TrialConfig
from trainwise.errors import TrainwiseError
from trainwise.train import train

N_TRAIN, BATCH = 400, 40  # 10 steps per epoch


def config(**kw) -> TrialConfig:
    d = {"task": "retrieval", "dataset": {"name": "synthetic-paired", "synthetic": {"n_train": N_TRAIN, "n_test": 200}},
         "model": {"name": "two-tower", "embed_dim": 16, "hidden": 32},
         "loss": {"name": "max-of-hinges", "warmup_epochs": 2},
         "optimizer": {"name": "adam", "lr": 0.002, "weight_decay": 0},
         "train": {"epochs": 4, "batch_size": BATCH, "threads": 1}}
    d.update(kw)
    return TrialConfig(**d)


def test_warm_up_trains_exactly_its_epochs_with_sum_of_hinges_then_switches(tmp_path, monkeypatch):
    calls = []
    for name, fn in list(tasks.HINGE_FNS.items()):
        monkeypatch.setitem(tasks.HINGE_FNS, name, lambda a, b, m, name=name, fn=fn: calls.append(name) or fn(a, b, m))
    r = train(config(), tmp_path, progress=False)
    assert r["steps"] == 40
    assert calls == ["sum-of-hinges"] * 20 + ["max-of-hinges"] * 20  # epochs 0-1, then 2-3
    hist = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(h["epoch"], h["loss_fn"]) for h in hist] == [(0, "sum-of-hinges"), (1, "sum-of-hinges"),
                                                         (2, "max-of-hinges"), (3, "max-of-hinges")]
    # per batch, SH sums B-1 hinges per query, MH one: the logged loss drops at the switch
    assert hist[1]["train_loss"] > 3 * hist[2]["train_loss"]
    assert r["test_rsum"] > 150 and r["collapsed"] is False  # it learns: chance R-sum is 2·(1+5+10)/200·100 = 16


def test_the_switch_is_logged(tmp_path, capsys):
    train(config(), tmp_path, progress=None)  # not a terminal: plain log lines
    assert "step 20: epoch 2: warm-up over, loss sum-of-hinges -> max-of-hinges" in capsys.readouterr().err


CONSTANT = '''
import torch
from torch import nn


class Constant(nn.Module):
    """Every pair gets the same embedding for both views: a collapsed model."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.ones(8))

    def forward(self, x):
        e = nn.functional.normalize(self.p, dim=0)
        return e.expand(len(x), 2, 8) + 0 * x[:, :1, None]


def constant(input_shape, num_classes):
    return Constant()
'''


@pytest.mark.parametrize("loss, flat", [("max-of-hinges", 2 * BATCH * 0.2), ("sum-of-hinges", 2 * BATCH * (BATCH - 1) * 0.2)])
def test_a_collapsed_model_sits_at_the_constant_and_the_detector_warns(tmp_path, capsys, loss, flat):
    (tmp_path / "m.py").write_text(CONSTANT)
    cfg = config(model={"name": f"{tmp_path / 'm.py'}:constant"}, loss=loss)
    r = train(cfg, tmp_path / "run", progress=False)
    assert r["train_loss"] == pytest.approx(flat) and r["test_spread"] == pytest.approx(0, abs=1e-6)
    assert r["collapsed"] is True and r["test_r1_ab"] == 0  # ties count against: nothing ranks first
    err = capsys.readouterr().err
    assert err.count("training collapsed at step 10") == 1  # warned once, at the first evaluation
    assert f"the loss sits at {flat:g}" in err


def test_collapse_stop_ends_the_run_with_one_clear_error(tmp_path):
    (tmp_path / "m.py").write_text(CONSTANT)
    cfg = config(model={"name": f"{tmp_path / 'm.py'}:constant"}, loss={"name": "max-of-hinges", "collapse": "stop"})
    with pytest.raises(TrainwiseError, match=r"training collapsed at step 10: .* \(loss warmup_epochs: 1\)"):
        train(cfg, tmp_path / "run", progress=False)


def test_a_retrieval_run_resumes_to_the_same_weights(tmp_path):
    cfg = config(sampler="infobatch")
    ref = train(cfg, tmp_path / "ref", progress=False)
    assert train(cfg, tmp_path / "cut", progress=False, until=25) == {"steps": 25, "total_steps": ref["total_steps"]}
    got = train(cfg, tmp_path / "cut", progress=False, resume=True)
    a = torch.load(tmp_path / "ref" / "model.pt")
    b = torch.load(tmp_path / "cut" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert got["test_rsum"] == ref["test_rsum"]


def test_a_retrieval_study_from_the_cli_ranks_regimens_by_validation_r_sum(tmp_path, capsys):
    cfg = {"name": "ret", "task": "retrieval",
           "dataset": {"name": "synthetic-paired", "synthetic": {"n_train": N_TRAIN, "n_test": 200, "positives": 2}},
           "model": {"name": "two-tower", "embed_dim": 16, "hidden": 32},
           "optimizer": {"name": "adam", "lr": 0.002, "weight_decay": 0},
           "train": {"epochs": 2, "batch_size": BATCH, "threads": 1},
           "seeds": [0, 1], "budgets": [1.0],
           "regimens": [{"name": "MH", "loss": "max-of-hinges"}, {"name": "SH", "loss": "sum-of-hinges"},
                        {"name": "MH-infobatch", "loss": "max-of-hinges", "sampler": "infobatch"}]}
    path = tmp_path / "ret.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["study", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    verdict = next(line for line in out.splitlines() if line.startswith("At budget 1: "))
    assert "(validation R-sum " in verdict and "; 2 seeds;" in verdict and "points [" in verdict
    md = (tmp_path / "out" / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| regimen |"))
    assert "| val R-sum (final) | test R-sum (final) | test R@1 a→b % | test R@1 b→a % |" in header
    assert "| collapsed |" in header and "acc" not in header
    assert "highest mean validation R-sum" in md  # the rule names what it ranks by
    assert "![r_sum_vs_budget](r_sum_vs_budget.png)" in md and (tmp_path / "out" / "r_sum_vs_time.png").is_file()


def test_the_reports_data_line_describes_pairs_and_groups():
    from trainwise.config_load import parse_config
    from trainwise.data import load_dataset
    from trainwise.study.config import StudyConfig
    from trainwise.study.runner import describe_data

    cfg = parse_config({"task": "retrieval", "dataset": {"name": "synthetic-paired", "synthetic": {"positives": 5}},
                        "model": {"name": "two-tower"}, "loss": "max-of-hinges"}, StudyConfig)
    line = describe_data(cfg, load_dataset(cfg.dataset))
    assert line == ("Data: synthetic-paired, two views (16,) and (16,), 100 test groups (queries per direction), "
                    "1800 train pairs / 200 validation (10% of the training set, whole groups, split_seed 0; carved "
                    "because the config names no val_fraction) / 500 test pairs.")
