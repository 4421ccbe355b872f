"""Your own model: ``model: {name: "file.py:factory"}`` or ``{name: "module:factory"}``, its settings
passed through (and checked against the factory's signature), its source part of the trial id,
every problem one line."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest
import torch
import yaml

from helpers import stored_rows, trial_dict
from trainwise.cli import main
from trainwise.errors import ConfigError
from trainwise.models import build_model
from trainwise.models.user import factory_fingerprint, qualified_name, resolve_factory
from trainwise.models.wrapper import Normalized
from trainwise.study.config import ModelConfig, StudyConfig, TrialConfig, parse_config

NET = """
import torch
from torch import nn

CALLS = []


def factory(input_shape, num_classes, width=4, tag="plain"):
    CALLS.append((tuple(input_shape), num_classes, width, tag))
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], width),
                         nn.ReLU(), nn.Linear(width, num_classes))


def anything(input_shape, num_classes, **settings):
    CALLS.append(dict(settings))
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))


def needs_depth(input_shape, num_classes, *, depth):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))


def one_arg(input_shape):
    return nn.Identity()


def raises(input_shape, num_classes):
    raise ValueError("width must be even\\nsecond line")


def seven(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(7))


def not_a_module(input_shape, num_classes):
    return "a string"


class Broken(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.lin = nn.Linear(3, num_classes)

    def forward(self, x):
        return self.lin(x)  # x is (batch, 1, 8, 8): the shapes do not fit


WIDTH = 3
"""

SYNTH = {"name": "synthetic", "synthetic": {"n_train": 64, "n_test": 32, "size": 8}}
MEAN, STD = torch.zeros(1), torch.ones(1)


@pytest.fixture
def net(tmp_path, monkeypatch):
    """net.py (the factories above) in the working directory tmp_path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(NET)
    return tmp_path / "net.py"


@pytest.fixture
def module(tmp_path, monkeypatch):
    """The same factories as an importable module of a unique name (tmp_path on sys.path)."""
    name = f"usernet_{uuid.uuid4().hex[:8]}"
    pkg = tmp_path / "pkgs"
    pkg.mkdir()
    (pkg / f"{name}.py").write_text(NET)
    monkeypatch.syspath_prepend(str(pkg))
    yield name
    sys.modules.pop(name, None)


def test_file_factory_builds_a_normalized_model_with_its_settings(net, tmp_path):
    m = build_model("net.py:factory", (1, 8, 8), 10, MEAN, STD, width=5, tag="mine")
    assert isinstance(m, Normalized)
    assert m(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    calls = sys.modules[resolve_factory("net.py:factory").__module__].CALLS
    assert calls == [((1, 8, 8), 10, 5, "mine")]
    # the same file by its absolute path is the same module object, run once; no bytecode written beside it
    assert resolve_factory(f"{net}:factory") is resolve_factory("net.py:factory")
    assert not (tmp_path / "__pycache__").exists()
    assert sys.path.count(str(tmp_path)) == 0


def test_module_factory_and_kwargs_settings_pass_through(module):
    cfg = ModelConfig(name=f"{module}:anything", depth=3, layers=[8, {"k": None}], scale=0.5)
    assert cfg.settings == {"depth": 3, "layers": [8, {"k": None}], "scale": 0.5}
    assert cfg.fingerprint and len(cfg.fingerprint) == 16
    m = build_model(cfg.name, (1, 8, 8), 4, MEAN, STD, **cfg.settings)
    assert m(torch.rand(2, 1, 8, 8)).shape == (2, 4)
    assert sys.modules[module].CALLS == [{"depth": 3, "layers": [8, {"k": None}], "scale": 0.5}]
    assert qualified_name(cfg.name) == f"{module}:anything@sha256:{cfg.fingerprint}"


def test_a_class_is_a_factory(net):
    assert ModelConfig(name="net.py:Broken").settings == {}


@pytest.mark.parametrize("model,needle", [
    ({"name": "net.py:factory", "depth": 2}, "unknown setting(s) ['depth'] for model 'net.py:factory'; allowed: "
                                             "width, tag"),
    ({"name": "net.py:raises", "width": 2}, "allowed: none (the factory takes no settings)"),
    ({"name": "net.py:needs_depth"}, "model 'net.py:needs_depth' needs setting(s) depth"),
    ({"name": "net.py:one_arg"}, "must take (input_shape, num_classes, **settings)"),
    ({"name": "net.py:WIDTH"}, "'WIDTH' in"),
    ({"name": "net.py:nope"}, "has no attribute 'nope'; it defines factory, anything, needs_depth"),
    ({"name": "missing.py:factory"}, "missing.py not found; give the .py file's path relative to the working"),
    ({"name": "no_such_module_xyz:factory"}, "no module named 'no_such_module_xyz'; install it"),
    ({"name": "net.py:"}, "expected 'package.module:factory' or 'path/to/file.py:factory'"),
    ({"name": "net.py:factory", "width": float("nan")}, "setting 'width': nan is not plain data"),
    ({"name": "net.py:factory", "fingerprint": "0" * 16}, "changed since this config was made"),
    ({"name": "cnn", "fingerprint": "0" * 16}, "leave it out"),
    ({"name": "resnet1000"}, "unknown model 'resnet1000'; allowed: linear, mlp, cnn, preact-resnet18, two-tower, or your own"),
])
def test_bad_user_models_are_one_config_error_line(net, model, needle):
    with pytest.raises(ConfigError) as e:
        parse_config(trial_dict(model=model), TrialConfig, "c.yaml")
    msg = str(e.value)
    assert msg.startswith("c.yaml: 'model': ") and needle in msg and "\n" not in msg, msg


def test_build_model_errors_name_the_model(net):
    with pytest.raises(ConfigError, match=r"^model 'net.py:raises': the factory raised ValueError: width must be "
                                          r"even; fix the factory or its settings$"):
        build_model("net.py:raises", (1, 8, 8), 10, MEAN, STD)
    with pytest.raises(ConfigError, match="the factory returned a str, not a torch.nn.Module"):
        build_model("net.py:not_a_module", (1, 8, 8), 10, MEAN, STD)


def test_an_import_that_raises_is_one_line(net, tmp_path):
    (tmp_path / "bad.py").write_text("import torch\n\nx = 1 / 0\n")
    with pytest.raises(ConfigError, match=r"^model 'bad.py:f': running .*bad.py raised ZeroDivisionError: "
                                          r"division by zero; fix the file$"):
        resolve_factory("bad.py:f")
    assert not [k for k in sys.modules if k.endswith("_bad")]


def test_builtin_hashes_are_unchanged():
    # recorded before user models existed: built-in models carry no fingerprint
    assert TrialConfig(**trial_dict()).config_hash() == "df8b2b29c7909949"
    assert TrialConfig(**trial_dict(model={"name": "cnn", "width": 8})).config_hash() == "a995ecfa3152a313"
    assert TrialConfig().config_hash() == "83a25ca3ebb69d71"
    assert "fingerprint" not in TrialConfig(**trial_dict()).model_dump(exclude_defaults=True)["model"]


def test_the_trial_id_follows_the_model_file(net):
    def trial() -> TrialConfig:
        return TrialConfig(**trial_dict(model={"name": "net.py:factory", "width": 6}))

    first, old = trial(), resolve_factory("net.py:factory")
    assert first.model.fingerprint == factory_fingerprint("net.py:factory")
    assert trial().config_hash() == first.config_hash()
    # a round trip through JSON (as the executors' workers do) keeps the id
    assert TrialConfig(**first.model_dump(mode="json")).config_hash() == first.config_hash()
    net.write_text(NET.replace("nn.ReLU()", "nn.Tanh()"))
    second = trial()
    assert second.config_hash() != first.config_hash()
    assert resolve_factory("net.py:factory") is not old  # the new content runs as a fresh module
    with pytest.raises(ValueError, match="changed since this config was made"):
        TrialConfig(**first.model_dump(mode="json"))


def write_study(tmp_path, model: dict) -> str:
    cfg = dict(name="mine", dataset=SYNTH, model=model, train={"epochs": 1, "batch_size": 16, "threads": 1},
               seeds=[0], budgets=[1.0])
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_a_study_runs_end_to_end_with_a_file_model(net, tmp_path, capsys):
    cfg = write_study(tmp_path, {"name": "net.py:factory", "width": 6, "tag": "e2e"})
    threads = torch.get_num_threads()
    try:
        assert main(["study", cfg, "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = stored_rows(tmp_path / "out")
    assert [r["status"] for r in rows] == ["done"]
    assert rows[0]["config"]["model"] == {"name": "net.py:factory", "width": 6, "tag": "e2e",
                                          "fingerprint": factory_fingerprint("net.py:factory")}
    loaded = StudyConfig(**yaml.safe_load(open(cfg)))
    assert rows[0]["trial_id"] == loaded.trials()[0].config_hash()


@pytest.mark.parametrize("model,needle", [
    ({"name": "missing.py:factory"}, "missing.py not found"),
    ({"name": "no_such_module_xyz:factory"}, "no module named 'no_such_module_xyz'"),
    ({"name": "net.py:nope"}, "has no attribute 'nope'"),
    ({"name": "net.py:factory", "depth": 2}, "unknown setting(s) ['depth'] for model 'net.py:factory'; allowed: "
                                             "width, tag"),
    ({"name": "net.py:raises"}, "regimen 'uniform/none': model 'net.py:raises': the factory raised ValueError: "
                                "width must be even; fix the factory or its settings"),
    ({"name": "net.py:seven"}, "regimen 'uniform/none': model 'net.py:seven': output shape (4, 7) but the dataset "
                               "has 10 classes: the factory must return logits of shape (batch, num_classes)"),
    ({"name": "net.py:Broken"}, "regimen 'uniform/none': model 'net.py:Broken': the forward on a batch of shape "
                                "(4, 1, 8, 8) raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
])
def test_bad_user_models_through_the_cli(net, tmp_path, capsys, model, needle):
    cfg = write_study(tmp_path, model)
    threads = torch.get_num_threads()
    try:
        code = main(["study", cfg, "--out", str(tmp_path / "out"), "--no-progress"])
    finally:
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trainwise: error: ") and needle in lines[0], err
