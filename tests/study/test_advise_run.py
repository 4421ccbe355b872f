"""trainwise advise live (study/advise_run.py): real trials in a study directory, the files it
writes, reuse of stored trials, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers import snapshot, stored_rows
from trainwise.cli import main
from trainwise.study.advise_run import is_control
from trainwise.study.config import RegimenConfig

CONFIG = dict(
    name="adv",
    dataset={"name": "synthetic", "synthetic": {"n_train": 600, "n_test": 200, "size": 8, "noise": 1.0}},
    model={"name": "mlp", "hidden": 16, "depth": 1},
    train={"epochs": 9, "batch_size": 32, "threads": 1},
    seeds=[0, 1, 2],
    regimens=[{"name": "uniform", "sampler": "uniform"},
              {"name": "<script>alert(1)</script>", "augment": [{"name": "mixup", "alpha": 0.3}]},
              {"name": "sb", "sampler": {"name": "selective-backprop", "beta": 3.0}}],
)


def write(tmp_path, cfg=CONFIG):
    path = tmp_path / "adv.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


ADVISE = ["--budget", "0.9", "--advice-budget", "1", "--no-progress"]


@pytest.fixture(scope="module")
def advised(tmp_path_factory):
    """One advise run on CONFIG, shared by the tests below (which train nothing more): a generous
    advice budget (the whole grid) so that the rungs and the B runs all happen."""
    tmp = tmp_path_factory.mktemp("advise")
    path, out = write(tmp), tmp / "out"
    assert main(["advise", str(path), "--out", str(out), *ADVISE]) == 0
    return path, out


def test_advise_runs_rungs_as_stored_trials_and_writes_its_answer(advised, tmp_path):
    path, out = advised
    a = json.loads((out / "advise.json").read_text())
    assert a["rungs"] == [0.1, 0.3, 0.9] and a["control"] == "uniform"
    assert a["pick"] in a["regimens"]
    assert a["spent"] <= a["advice_budget"] * 1.5  # CPU time is measured, so allow the estimate's error
    rows = stored_rows(out)
    # every trial advise ran is a stored study trial, at a rung budget, chosen on validation data
    assert {r["budget"] for r in rows} <= {0.1, 0.3, 0.9} and all("val_acc" in r["metrics"] for r in rows)
    assert {r["regimen"] for r in rows if r["budget"] == 0.1} == set(a["regimens"])  # all at B/9
    for name, r in a["regimens"].items():
        for b, seeds in r["trials"].items():
            assert len(seeds) >= 2, (name, b)
    md = (out / "advise.md").read_text()
    assert md.startswith("# trainwise advise: adv at budget 0.9") and "| uniform (control) |" in md
    assert f"use {a['pick']}" in md
    rec = yaml.safe_load((out / "recommended.yaml").read_text())
    assert rec["budgets"] == [0.9] and [r["name"] for r in rec["regimens"]] == [a["pick"]]
    assert rec["dataset"]["val_fraction"] == 0.1  # the carved validation split, written down
    html = (out / "report.html").read_text()
    assert "<h2>Advice</h2>" in html and "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    calibration = json.loads((out / "calibration.json").read_text())
    assert sorted(e["regimen"] for e in calibration["trials"].values()) == sorted(a["regimens"])
    # the recommended config runs as a study
    assert main(["study", str(out / "recommended.yaml"), "--out", str(tmp_path / "rec"), "--no-progress"]) == 0


def test_the_same_advise_again_trains_nothing_and_gives_the_same_answer(advised, capsys):
    """The calibration is reused from calibration.json and every trial from results.db, whose
    recorded cost is its estimate: the same decisions, the same answer, the same bill."""
    path, out = advised
    first = json.loads((out / "advise.json").read_text())
    before = snapshot(out / "trials")
    capsys.readouterr()
    assert main(["advise", str(path), "--out", str(out), *ADVISE]) == 0
    printed = capsys.readouterr().out
    assert "0 to run" in printed and f"{len(first['regimens'])} reused from calibration.json" in printed
    assert snapshot(out / "trials") == before
    assert json.loads((out / "advise.json").read_text()) == first


def test_seconds_is_converted_to_a_budget_with_the_calibration(advised, capsys):
    """--seconds S: the budget B whose control trial takes S CPU seconds, i.e. S / (the control's
    CPU time per step x the steps of its full schedule). Asked for the seconds of B = 0.9, advise
    answers at 0.9, from the trials it stored for --budget 0.9."""
    path, out = advised
    first = json.loads((out / "advise.json").read_text())
    cal = next(e for e in json.loads((out / "calibration.json").read_text())["trials"].values()
               if e["regimen"] == "uniform")
    seconds = 0.9 * cal["cpu_per_step"] * cal["full_steps"]
    capsys.readouterr()
    assert main(["advise", str(path), "--out", str(out), "--seconds", repr(seconds), "--advice-budget", "1",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"--seconds {seconds:g}: budget 0.9 of the full schedule (uniform)" in printed and "0 to run" in printed
    a = json.loads((out / "advise.json").read_text())
    assert a["budget"] == 0.9 and a["seconds"] == pytest.approx(seconds) and first["seconds"] is None
    assert (a["pick"], a["tied"], a["spent"]) == (first["pick"], first["tied"], first["spent"])


def test_units_are_converted_to_a_budget_in_the_configs_budget_unit(advised, capsys):
    """--units N: the budget whose run spends N of train.budget_unit. In steps (CONFIG's unit) the
    full schedule is 9 epochs x 16 batches of 32 (540 training samples after the validation split),
    so 0.9 of it is 129.6 steps; counted in samples, N is divided by the batch size as well."""
    from trainwise.study.advise_run import budget_of_units

    assert budget_of_units(129.6, 144, 32, "steps") == pytest.approx(0.9)
    assert budget_of_units(129.6 * 32, 144, 32, "backprop_samples") == pytest.approx(0.9)
    assert budget_of_units(129.6 * 32, 144, 32, "forward_backward") == pytest.approx(0.9)
    path, out = advised
    first = json.loads((out / "advise.json").read_text())
    cal = json.loads((out / "calibration.json").read_text())
    assert {e["full_steps"] for e in cal["trials"].values()} == {144}
    capsys.readouterr()
    assert main(["advise", str(path), "--out", str(out), "--units", "129.6", "--advice-budget", "1",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "--units 129.6 (steps): budget 0.9 of the full schedule" in printed and "0 to run" in printed
    a = json.loads((out / "advise.json").read_text())
    assert (a["budget"], a["units"], a["budget_unit"]) == (0.9, 129.6, "steps")
    assert (a["pick"], a["tied"], a["spent"]) == (first["pick"], first["tied"], first["spent"])


def test_bad_advise_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    path = write(tmp_path)
    out = tmp_path / "out"
    for args, needle in [
        ([], "give the target budget as --budget B"),
        (["--budget", "0.5", "--seconds", "3"], "one of the three"),
        (["--units", "1e9"], "--units 1e+09 asks for budget"),
        (["--budget", "0.001"], "too small for advise's first rung"),
    ]:
        code = main(["advise", str(path), "--out", str(out), *args])
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and len(err.splitlines()) == 1 and "Traceback" not in err, (args, err)
    with pytest.raises(SystemExit) as e:  # argparse: usage, then the one error line
        main(["advise", str(path), "--out", str(out), "--budget", "1.5"])
    assert e.value.code == 2 and "expected a fraction in (0, 1]" in capsys.readouterr().err
    assert not (out / "advise.json").exists() and not (out / "results.db").exists()


def test_the_control_is_uniform_sampling_with_no_or_standard_augmentation():
    assert is_control(RegimenConfig(sampler="uniform"))
    assert is_control(RegimenConfig(sampler="uniform", augment=["standard"]))
    assert not is_control(RegimenConfig(sampler="uniform", augment=["standard", "mixup"]))
    assert not is_control(RegimenConfig(sampler="p-sgd"))
    assert not is_control(RegimenConfig(sampler="uniform", loss="bce"))


def test_a_retrieval_study_is_advised_on_validation_r_sum_as_mean_recall(tmp_path, capsys):
    cfg = {"name": "ret", "task": "retrieval", "loss": "sum-of-hinges",
           "dataset": {"name": "synthetic-paired", "synthetic": {"n_train": 1200, "n_test": 200}},
           "model": {"name": "two-tower", "embed_dim": 8, "hidden": 16},
           "optimizer": {"name": "adam", "lr": 0.002, "weight_decay": 0},
           "train": {"epochs": 6, "batch_size": 20, "threads": 1}, "seeds": [0, 1],
           "regimens": [{"name": "SH"}, {"name": "MH", "loss": "max-of-hinges"}]}
    path = tmp_path / "ret.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["advise", str(path), "--budget", "0.9", "--advice-budget", "1.0", "--out", str(tmp_path / "o")]) == 0
    a = json.loads((tmp_path / "o" / "advise.json").read_text())
    assert a["control"] == "SH" and a["metric"] == "mean recall (R-sum / 6)"  # uniform with the study's own loss
    for name, reg in a["regimens"].items():  # what the rule ranked: each regimen's validation R-sum at B / 600
        at_b = [r["metrics"]["val_rsum"] for r in stored_rows(tmp_path / "o")
                if r["regimen"] == name and r["budget"] == a["budget"] and r["status"] == "done"]
        if reg["val_acc"] is not None:
            assert reg["val_acc"] == pytest.approx(sum(at_b) / len(at_b) / 600)
    assert any(reg["val_acc"] is not None for reg in a["regimens"].values())  # some were run at B
    assert "validation mean recall" in (tmp_path / "o" / "advise.md").read_text()
    assert is_control(RegimenConfig(sampler="uniform"), "sum-of-hinges")
    assert not is_control(RegimenConfig(sampler="uniform", loss="max-of-hinges"), "sum-of-hinges")
