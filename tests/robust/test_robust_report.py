"""Robust metrics in the study report (columns and the accuracy-vs-ε plot appear only when trials
carry them) and the ``trainwise robust linear`` command end to end."""

from __future__ import annotations

from trainwise.cli import main
from trainwise.study.report import table, write_report


def _row(reg, seed, robust=True, warn=()):
    m = dict(test_acc=0.9, best_test_acc=0.9, wall_time=1.0, steps=10, samples_forwarded=100,
             samples_backpropagated=100, time_to_target=None)
    if robust:
        m.update({"robust_attack": "pgd-linf-10", "robust_clean_acc": 0.9, "robust_acc@0.01": 0.7,
                  "robust_acc@0.1": 0.1, "robust_warnings": list(warn)})
    return dict(regimen=reg, budget=1.0, seed=seed, status="done", metrics=m, error=None)


def test_report_has_robust_columns_and_plot(tmp_path):
    rows = [_row("a", 0), _row("a", 1, warn=["robust acc rises with eps"]), _row("b", 0)]
    header, body = table(rows)
    assert "pgd-linf-10 acc % @ε=0.01" in header and "robustness warnings" in header
    i = header.index("pgd-linf-10 acc % @ε=0.1")
    assert body[0][i] == "10.00 ± 0.00"
    assert body[0][header.index("robustness warnings")] == "robust acc rises with eps"
    assert body[1][header.index("robustness warnings")] == "none"
    write_report(tmp_path, rows, "t")
    assert (tmp_path / "accuracy_vs_eps.png").stat().st_size > 1000
    assert "accuracy_vs_eps.png" in (tmp_path / "report.md").read_text()


def test_report_without_robust_metrics_is_unchanged(tmp_path):
    rows = [_row("a", 0, robust=False)]
    header, _ = table(rows)
    assert not any("@ε" in h or "robust" in h for h in header)
    write_report(tmp_path, rows, "t")
    assert not (tmp_path / "accuracy_vs_eps.png").exists()


def test_robust_linear_cli(tmp_path, capsys):
    rc = main(["robust", "linear", "--out", str(tmp_path), "--seeds", "0", "--dim", "12",
               "--d-over-n", "3", "--iters", "300", "--lams", "1e-3"])
    assert rc == 0
    md = (tmp_path / "linear_bias.md").read_text()
    assert "| cd | ℓ∞ |" in md and "Made by: `trainwise robust linear" in md
    assert (tmp_path / "linear_bias_margin.png").stat().st_size > 1000
    assert main(["robust", "linear", "--out", str(tmp_path), "--iters", "0"]) == 2
