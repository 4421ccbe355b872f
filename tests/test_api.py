"""The public Python API: trainwise.run_study / trainwise.fit on the user's data and model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import trainwise
from trainwise.cli import main
from trainwise.models.user import resolve_factory

MODEL_PY = '''
from torch import nn

def small(input_shape, num_classes, hidden=16):
    d = 1
    for s in input_shape:
        d *= s
    return nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
'''


def arrays(seed=0, n=96):
    g = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = (g.random((n, 1, 8, 8)) * 80 + y[:, None, None, None] * 60).astype(np.uint8)
    return x[:64], y[:64], x[64:], y[64:]


STUDY = dict(name="api", train={"epochs": 2, "batch_size": 16, "threads": 1}, seeds=[0],
             regimens=[{"name": "uniform"}, {"name": "sb", "sampler": "selective-backprop"}])


def factory(input_shape, num_classes, hidden: int = 8) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))


def test_run_study_on_in_memory_arrays_records_the_data_and_the_model(tmp_path):
    rows = trainwise.run_study(STUDY, data=arrays(), model=factory, out=tmp_path / "s")
    assert [r["status"] for r in rows] == ["done", "done"]
    cfg = rows[0]["config"]
    assert cfg["dataset"]["name"] == "arrays" and len(cfg["dataset"]["fingerprint"]) == 16
    assert cfg["model"]["name"] == f"{factory.__module__}:factory"
    assert (tmp_path / "s" / "report.md").exists()
    again = trainwise.run_study(STUDY, data=arrays(), model=factory, out=tmp_path / "s")
    assert [r["trial_id"] for r in again] == [r["trial_id"] for r in rows]  # same data: stored, resumed
    changed = arrays()
    changed[0][0, 0, 0, 0] ^= 1  # one pixel of one training image
    other = trainwise.run_study(STUDY, data=changed, model=factory, out=tmp_path / "s")
    assert {r["trial_id"] for r in other}.isdisjoint(r["trial_id"] for r in rows)


def test_fit_takes_torch_datasets(tmp_path):
    xtr, ytr, xte, yte = arrays()
    train_ds = torch.utils.data.TensorDataset(torch.from_numpy(xtr), torch.from_numpy(ytr))
    test_ds = torch.utils.data.TensorDataset(torch.from_numpy(xte), torch.from_numpy(yte))
    r = trainwise.fit({"train": {"epochs": 2, "batch_size": 16, "threads": 1}}, data=(train_ds, test_ds),
                      model=factory, out=tmp_path / "run")
    assert r["steps"] == 8 and 0 <= r["test_acc"] <= 1 and (tmp_path / "run" / "model.pt").exists()


def test_api_and_cli_give_identical_trial_ids_and_results(tmp_path, monkeypatch):
    """The same study from YAML (model named by file) and from Python (the factory object)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(MODEL_PY)
    folder = tmp_path / "data"
    folder.mkdir()
    xtr, ytr, xte, yte = arrays()
    for k, v in dict(x_train=xtr, y_train=ytr, x_test=xte, y_test=yte).items():
        np.save(folder / f"{k}.npy", v)
    cfg = {**STUDY, "dataset": {"name": "arrays", "path": "data"}, "model": {"name": "net.py:small", "hidden": 8}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["study", "s.yaml", "--out", "cli", "--no-progress"]) == 0
    api = trainwise.run_study({**cfg, "model": {"hidden": 8}}, model=resolve_factory("net.py:small"), out="api")
    cli = json.loads((tmp_path / "cli" / "study.json").read_text())["trial_ids"]
    assert sorted(r["trial_id"] for r in api) == sorted(cli)
    by_id = {r["trial_id"]: r["metrics"]["test_acc"] for r in api}
    stored = {r["trial_id"]: r["metrics"]["test_acc"] for r in trainwise.run_study(cfg, out="cli")}
    assert by_id == stored


def test_bad_config_and_data_are_one_clear_error(tmp_path):
    with pytest.raises(trainwise.api.ConfigError, match="config must be"):
        trainwise.run_study(42, out=tmp_path)
    with pytest.raises(Exception, match="data= is of type"):
        trainwise.run_study(STUDY, data="nope", out=tmp_path)
