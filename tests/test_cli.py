"""The CLI basics: --version, list, help with examples, --set, --dry-run, exit 3 for failed trials."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers import snapshot
from trainwise import __version__
from trainwise.cli import main

TINY = dict(name="tiny", dataset={"name": "synthetic", "synthetic": {"n_train": 128, "n_test": 64, "size": 8}},
            model={"name": "linear"}, train={"epochs": 1, "batch_size": 32, "threads": 1}, seeds=[0],
            samplers=["uniform", "selective-backprop"])


def write(tmp_path, cfg, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"trainwise {__version__}"


def test_help_has_examples_and_no_docstring_markup(capsys):
    for argv in (["--help"], ["study", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "examples:" in out and "--dry-run" in out and "``" not in out


def test_list_names_every_registered_component_with_defaults(capsys):
    from trainwise.augment import TRANSFORMS
    from trainwise.models import MODELS
    from trainwise.sampling import SAMPLERS

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [*SAMPLERS.names(), *TRANSFORMS.names(), *MODELS, "fashion-mnist", "autoattack-lite"]:
        assert f"\n  {name}" in out, name
    assert "beta=3.0" in out and "prime_samples=None" in out  # settings with their defaults


def test_set_overrides_dotted_keys_and_is_validated(tmp_path, capsys):
    cfg = write(tmp_path, TINY)
    out = tmp_path / "out"
    assert main(["study", cfg, "--out", str(out), "--no-progress", "--set", "train.epochs=2",
                 "--set", "seeds=[3]", "--set", "samplers=[uniform]"]) == 0
    rows = json.loads((out / "study.json").read_text())
    assert rows["config"]["train"]["epochs"] == 2 and rows["config"]["seeds"] == [3]
    assert len(rows["trial_ids"]) == 1
    capsys.readouterr()
    assert main(["study", cfg, "--out", str(tmp_path / "o2"), "--set", "train.epochs=-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.epochs" in err


def test_dry_run_reports_the_grid_and_an_estimate_and_writes_nothing(tmp_path, capsys):
    cfg = write(tmp_path, {**TINY, "seeds": [0, 1]})
    out = tmp_path / "out"
    assert main(["study", cfg, "--out", str(out), "--no-progress", "--set", "samplers=[uniform]"]) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main(["study", cfg, "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 regimens x 1 budgets x 2 seeds = 4 trials; 2 stored, 2 to run" in text
    assert "ms per step" in text and "estimated training time" in text
    assert snapshot(out) == before
    assert main(["study", cfg, "--out", str(tmp_path / "fresh"), "--dry-run"]) == 0
    assert not (tmp_path / "fresh").exists()


def test_a_study_with_failed_trials_exits_3_with_a_summary(tmp_path, capsys):
    """Trials that diverge at run time fail; the study stores them, writes the report, exits 3."""
    bad = {**TINY, "optimizer": {"lr": 1e7, "momentum": 0.9}, "schedule": {"name": "constant"},
           "train": {"epochs": 5, "batch_size": 32, "threads": 1}}
    cfg = write(tmp_path, bad)
    out = tmp_path / "out"
    code = main(["study", cfg, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err[-1].startswith("trainwise: 2 of 2 trials failed") and "--retry-failed" in err[-1]
    assert (out / "report.md").exists()
