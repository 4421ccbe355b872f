"""Studies: one row per trial, finished trials skipped, failures stored, executors agree, report written."""

from __future__ import annotations


import pytest
import yaml

from trainwise.cli import main
from trainwise.study.config import StudyConfig
from trainwise.study.runner import run_study
from helpers import stored_rows

BASE = dict(
    name="runner",
    dataset={"name": "synthetic", "synthetic": {"n_train": 192, "n_test": 64, "size": 8}},
    model={"name": "linear"},
    train={"epochs": 2, "batch_size": 32},
    seeds=[0, 1],
    budgets=[0.5, 1.0],
)


def test_study_runs_grid_and_skips_finished_trials(tmp_path):
    cfg = StudyConfig(**BASE)
    out = tmp_path / "s"
    first = run_study(cfg, out, echo=lambda *a: None)
    assert len(first) == 4 and all(r["status"] == "done" for r in first)
    assert {(r["budget"], r["seed"]) for r in first} == {(0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)}
    results = sorted(out.glob("trials/*/result.json"))
    stamps = [p.stat().st_mtime_ns for p in results]
    lines = []
    again = run_study(cfg, out, echo=lines.append)
    assert "4 already stored, 0 to run" in lines[0]
    assert [p.stat().st_mtime_ns for p in results] == stamps
    assert [r["metrics"] for r in again] == [r["metrics"] for r in first]


def test_failed_trial_is_stored_and_the_study_goes_on(tmp_path):
    out = tmp_path / "s"
    run_study(StudyConfig(**{**BASE, "seeds": [0]}), out, echo=lambda *a: None)
    # a second grid into the same directory whose trials diverge (weights overflow to inf)
    bad = StudyConfig(**{**BASE, "seeds": [0], "optimizer": {"lr": 1e38}, "schedule": {"name": "constant"},
                         "regimens": [{"name": "explodes"}]})
    got = run_study(bad, out, echo=lambda *a: None)
    assert {r["status"] for r in got} == {"failed"}
    assert all("loss became" in r["error"] for r in got)
    all_rows = stored_rows(out)
    assert sorted(r["status"] for r in all_rows) == ["done"] * 2 + ["failed"] * 2
    # failed trials are not rerun unless asked
    lines = []
    run_study(bad, out, echo=lines.append)
    assert "0 to run" in lines[0]
    lines.clear()
    run_study(bad, out, retry_failed=True, echo=lines.append)
    assert "2 to run" in lines[0]


def test_process_executor_matches_local(tmp_path):
    """Same trials, same numbers. Workers run with cores/N torch threads, so float reductions may
    differ in the last bits from an in-process run: counts are exact, losses equal to 1e-6."""
    cfg = StudyConfig(**{**BASE, "budgets": [1.0]})
    local = run_study(cfg, tmp_path / "local", echo=lambda *a: None)
    procs = run_study(cfg, tmp_path / "procs", workers=2, echo=lambda *a: None)
    assert [r["trial_id"] for r in local] == [r["trial_id"] for r in procs]
    for a, b in zip(local, procs):
        a, b = a["metrics"], b["metrics"]
        for k in ("steps", "epochs", "samples_forwarded", "samples_backpropagated", "test_acc"):
            assert a[k] == b[k], k
        for k in ("train_loss", "test_loss"):
            assert a[k] == pytest.approx(b[k], rel=1e-6), k


def test_cli_study_writes_report_and_report_command_regenerates(tmp_path, capsys):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**BASE, "target_accuracy": 0.5}))
    out = tmp_path / "s"
    assert main(["study", str(path), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "results (mean ± std over seeds)" in printed and str(out / "report.html") in printed
    for name in ("report.md", "report.html", "accuracy_vs_budget.png", "accuracy_vs_time.png"):
        assert (out / name).stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "| uniform/none | 0.5 | 2 |" in md and "![accuracy_vs_budget]" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3  # budget, time, Pareto (validation accuracy)
    # no val_fraction in the config: 10% of the training set was carved for the verdict
    assert "validation (10% of the training set" in md and "At budget 0.5: **" in md
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == md


def test_the_report_names_the_data_with_class_names(tmp_path):
    from trainwise.study.config import StudyConfig

    cfg = StudyConfig(name="d", dataset={"name": "digits"}, model={"name": "linear"},
                      train={"epochs": 1, "batch_size": 64, "threads": 1})
    run_study(cfg, tmp_path, report=True, echo=lambda *a: None)
    md = (tmp_path / "report.md").read_text()
    assert "Data: digits, inputs (1, 8, 8), " in md and "10 classes: 0, 1, 2" in md
