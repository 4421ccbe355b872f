"""Report cells are the mean ± sample standard deviation over a group's seeds, from stored rows."""

import json

import numpy as np

from trainwise.study.report import table


def row(regimen, budget, seed, test_acc, wall_time, status="done"):
    metrics = dict(test_acc=test_acc, best_test_acc=test_acc, wall_time=wall_time, steps=10,
                   samples_forwarded=320, samples_backpropagated=320, time_to_target=None)
    return dict(regimen=regimen, budget=budget, seed=seed, status=status, metrics=metrics)


def test_cells_are_mean_and_sample_std_over_seeds():
    accs = {0: 0.812, 1: 0.845, 2: 0.790}
    rows = [row("uniform/none", 0.3, s, a, 10.0 + s) for s, a in accs.items()]
    rows += [row("uniform/none", 1.0, 0, 0.9, 20.0), row("uniform/none", 0.3, 3, 0.1, 1.0, status="failed")]
    header, body = table(rows)
    cells = {(b[0], b[1]): dict(zip(header, b)) for b in body}  # keyed by (regimen, budget "0.3")
    cell = cells[("uniform/none", "0.3")]
    a = np.array(list(accs.values())) * 100
    assert cell["seeds"] == "3"  # the failed row is not counted
    assert cell["test acc % (final)"] == f"{a.mean():.2f} ± {a.std(ddof=1):.2f}"
    w = np.array([10.0, 11.0, 12.0])
    assert cell["wall time s"] == f"{w.mean():.1f} ± {w.std(ddof=1):.1f}"
    assert cells[("uniform/none", "1")]["test acc % (final)"] == "90.00 ± 0.00"  # one seed


# --- writing the report: never emptied, never half-written, shrinking is announced; console width


import errno
import os

import pytest

from trainwise.errors import TrainwiseError
from trainwise.study import report
from trainwise.study.report import console_table, write_report


def study_rows(n):
    return [row("uniform/none", 0.5, s, 0.8 + s / 100, 10.0) for s in range(n)]


def report_files(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_no_rows_keep_the_existing_report(tmp_path):
    """Defect: an empty results.db made `trainwise report` replace a good report with an empty table."""
    write_report(tmp_path, study_rows(2), "t")
    before = report_files(tmp_path)
    with pytest.raises(TrainwiseError, match="no trials stored in .*the existing report is kept"):
        write_report(tmp_path, [], "t")
    assert report_files(tmp_path) == before


def test_a_report_covering_fewer_trials_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_plots", lambda rows: {})
    said = []
    write_report(tmp_path, study_rows(3), "t", echo=said.append)
    write_report(tmp_path, study_rows(3), "t", echo=said.append)
    assert said == []
    write_report(tmp_path, study_rows(2), "t", echo=said.append)
    assert len(said) == 1 and "covers 2 trial(s)" in said[0] and "covered 3" in said[0]
    assert json.loads((tmp_path / "report.json").read_text())["trials"] == 2


# the first file fails, or report.html after three files were staged; EACCES: a read-only directory
@pytest.mark.parametrize("err, fail_at", [(errno.ENOSPC, 1), (errno.ENOSPC, 4), (errno.EACCES, 1)])
def test_write_error_keeps_the_previous_report(tmp_path, monkeypatch, err, fail_at):
    """OSError while writing (full disk, no permission) is one error line; no file of the previous
    report changes, and no staged file is left behind."""
    write_report(tmp_path, study_rows(2), "old")
    before = report_files(tmp_path)
    calls, real = [], report.atomic_write_bytes

    def failing(path, data):
        calls.append(path)
        if len(calls) == fail_at:
            raise OSError(err, os.strerror(err))
        real(path, data)

    monkeypatch.setattr(report, "atomic_write_bytes", failing)
    with pytest.raises(TrainwiseError) as e:
        write_report(tmp_path, study_rows(3), "new")
    assert os.strerror(err) in str(e.value) and "previous report is kept" in str(e.value)
    assert "\n" not in str(e.value)
    assert report_files(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_keeps_the_previous_report(tmp_path):
    write_report(tmp_path, study_rows(2), "old")
    before = report_files(tmp_path)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(TrainwiseError, match="previous report is kept"):
            write_report(tmp_path, study_rows(3), "new")
    finally:
        tmp_path.chmod(0o755)
    assert report_files(tmp_path) == before


def wide_rows():
    rows = study_rows(3) + [row("importance-sampling-with-a-long-name/randaugment", 0.25, 0, 0.7, 5.0)]
    for r in rows:
        r["metrics"].update(train_acc=0.9, test_acc_tta_sum=0.81, time_to_target=3.0)
    return rows


def test_console_table_fits_the_terminal(monkeypatch):
    """Defect: the console table was rendered 200 columns wide whatever the terminal. Now the least
    important columns are left out (report.md has them), long regimen names and headers wrap."""
    full = console_table(wide_rows(), width=300)
    assert "samples fwd" in full and "(TTA sum)" in full and "more column" not in full
    monkeypatch.setenv("COLUMNS", "80")  # shutil.get_terminal_size reads it first
    text = console_table(wide_rows())
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "81.00 ± 1.00" in text and "10.0 ± 0.0" in text  # final test accuracy and wall time kept
    assert "samples fwd" not in text and "more column(s) in report.md" in text
    assert "importance-sampling-with-a-long" in text and "-name/randaugment" in text  # wrapped, not cut
    narrow = console_table(wide_rows(), width=40)
    assert max(len(line) for line in narrow.splitlines()) <= 40 and "81.00 ±" in narrow


# --- the HTML report renders in a real browser


import shutil
import subprocess


def test_report_html_renders_in_chromium(tmp_path):
    """report.html, verdict and plots included, renders in headless Chromium to a screenshot that
    is not blank."""
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium)")
    from PIL import Image

    rows = []
    for b in (0.3, 1.0):
        for s in range(3):
            for reg, v in (("uniform/none", 0.80), ("mixup/none", 0.84)):
                r = row(reg, b, s, v - 0.01 + s / 100, 10.0 * b + s)
                r["metrics"].update(val_acc=v + s / 100, cpu_time=8.0 * b + s, train_acc=0.9)
                r["config"] = dict(dataset=dict(name="arrays", fingerprint="abc123"))
                rows.append(r)
    html = write_report(tmp_path, rows, "render <check>")
    png = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={png}",
                    "--window-size=1200,1600", html.resolve().as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert png.exists() and png.stat().st_size > 10_000
    with Image.open(png) as im:
        assert im.size == (1200, 1600)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50  # text, table borders and plots, not a blank page


def test_pareto_front_keeps_only_points_nothing_cheaper_beats():
    from trainwise.study.report import pareto_front

    pts = [(3.0, 90.0), (1.0, 80.0), (2.0, 79.0), (2.0, 85.0), (4.0, 88.0), (5.0, 95.0)]
    assert pareto_front(pts) == [(1.0, 80.0), (2.0, 85.0), (3.0, 90.0), (5.0, 95.0)]


def test_report_has_a_pareto_plot_only_with_validation_data(tmp_path):
    from trainwise.study.report import _plots

    def row(reg, seed, val):
        m = {"test_acc": 0.8, "wall_time": 1.0 + seed, "cpu_time": 1.0 + seed, "steps": 10}
        if val is not None:
            m["val_acc"] = val
        return dict(trial_id=f"{reg}{seed}", regimen=reg, budget=1.0, seed=seed, status="done", error=None,
                    metrics=m, config={})

    with_val = [row("a", 0, 0.8), row("a", 1, 0.82), row("b", 0, 0.85), row("b", 1, 0.81)]
    assert "pareto_validation_vs_cost" in _plots(with_val)
    assert "pareto_validation_vs_cost" not in _plots([row("a", 0, None), row("b", 0, None)])
