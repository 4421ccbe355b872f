"""The verdict: chosen on validation accuracy, compared seed by seed, ties and thin evidence said plainly."""

import pytest

from trainwise.provenance import git_commit, provenance
from trainwise.stats import paired
from trainwise.study import report
from trainwise.study.report import write_report
from trainwise.study.verdict import NO_VAL, ONE_SEED, sentence, verdict


def row(regimen, seed, val, test, budget=0.3, cpu=2.0, wall=3.0, steps=10, status="done", error=None):
    metrics = dict(test_acc=test, best_test_acc=test, train_acc=0.9, wall_time=wall, steps=steps,
                   samples_forwarded=320, samples_backpropagated=320, time_to_target=None)
    if val is not None:
        metrics["val_acc"] = val
    if cpu is not None:
        metrics["cpu_time"] = cpu
    config = dict(regimen=regimen, budget=budget, seed=seed,
                  dataset=dict(name="arrays", fingerprint="abc123", val_fraction=0.1))
    return dict(trial_id=f"{regimen}-{budget}-{seed}", regimen=regimen, budget=budget, seed=seed,
                status=status, error=error, metrics=metrics, config=config)


def by_reg(v):
    return {c["regimen"]: c for c in v["comparisons"]}


def test_the_pick_is_by_validation_not_test():
    rows = [row("a", s, 0.80 + s / 1000, 0.95) for s in range(3)]  # best on test, worse on validation
    rows += [row("b", s, 0.85 + s / 1000, 0.70) for s in range(3)]
    (v,) = verdict(rows)
    assert v["pick"] == "b" and v["seeds"] == 3
    assert v["test"] == pytest.approx(0.70)  # the pick's test accuracy, however poor
    assert v["val"] == pytest.approx(0.851)
    s = sentence(v)
    assert s.startswith("At budget 0.3: **b** (validation 85.1%, test 70.0%")
    assert "better than a by 5.0 points" in s


def test_paired_intervals_match_stats_paired():
    vals = {"a": [0.81, 0.84, 0.80, 0.83], "b": [0.80, 0.81, 0.81, 0.79], "c": [0.70, 0.72, 0.69, 0.71]}
    rows = [row(reg, s, x, 0.5) for reg, xs in vals.items() for s, x in enumerate(xs)]
    rows.append(row("c", 9, 0.99, 0.5))  # a seed "a" did not run: left out of the paired comparison
    (v,) = verdict(rows)
    assert v["pick"] == "a"
    for reg in ("b", "c"):
        p = paired(vals["a"], vals[reg])
        c = by_reg(v)[reg]
        assert c["n"] == 4
        assert (c["mean"], c["lo"], c["hi"]) == pytest.approx((p["mean"], p["lo"], p["hi"]))
    assert by_reg(v)["b"]["outcome"] == "tied"  # the interval includes 0
    assert by_reg(v)["c"]["outcome"] == "better"


def test_tie_rule_interval_and_delta():
    base = [0.80, 0.82, 0.81, 0.83]
    rows = [row("pick", s, x, 0.5) for s, x in enumerate(base)]
    rows += [row("close", s, x - d, 0.5) for s, (x, d) in enumerate(zip(base, [0.003, 0.003, 0.002, 0.004]))]
    rows += [row("noisy", s, x - d, 0.5) for s, (x, d) in enumerate(zip(base, [0.05, -0.03, 0.04, -0.02]))]
    rows += [row("worse", s, x - d, 0.5) for s, (x, d) in enumerate(zip(base, [0.020, 0.021, 0.019, 0.020]))]
    (v,) = verdict(rows)
    c = by_reg(v)
    assert v["pick"] == "pick"
    assert c["close"]["lo"] > 0 and c["close"]["mean"] <= 0.005 and c["close"]["outcome"] == "tied"  # within δ
    assert c["noisy"]["lo"] < 0 and c["noisy"]["outcome"] == "tied"  # interval includes 0
    assert c["worse"]["lo"] > 0 and c["worse"]["outcome"] == "better"
    assert verdict(rows, delta=0.03)[0]["comparisons"][-1]["outcome"] == "tied"  # a wider δ ties it
    s = sentence(v)
    assert "tied with close (+0.3 points [" in s and "tied with noisy (" in s
    assert "better than worse by 2.0 points [" in s


def test_one_seed_gives_no_confidence():
    rows = [row("a", 0, 0.9, 0.8), row("b", 0, 0.8, 0.85)]
    (v,) = verdict(rows)
    assert v["pick"] == "a" and v["message"] == ONE_SEED
    c = v["comparisons"][0]
    assert c["outcome"] == "one seed" and c["lo"] is None and c["mean"] == pytest.approx(0.1)
    assert ONE_SEED in sentence(v)


def test_no_validation_split_no_verdict():
    rows = [row("a", s, None, 0.9) for s in range(3)] + [row("b", s, None, 0.7) for s in range(3)]
    (v,) = verdict(rows)
    assert v["pick"] is None and v["message"] == NO_VAL and v["test"] is None
    assert sentence(v) == f"At budget 0.3: no verdict — {NO_VAL}."


def test_costs_use_cpu_time_else_wall_time_and_failed_trials_are_left_out():
    rows = [row("a", s, 0.9, 0.8, cpu=4.0 + s, steps=100) for s in range(2)]
    rows += [row("b", s, 0.8, 0.8, cpu=1.0, steps=50) for s in range(2)]
    rows.append(row("c", 0, 0.99, 0.99, status="failed"))
    (v,) = verdict(rows)
    assert v["pick"] == "a" and v["cost_basis"] == "cpu_time"
    assert (v["cpu_time"], v["steps"]) == (4.5, 100)
    assert (by_reg(v)["b"]["cpu_time"], by_reg(v)["b"]["steps"]) == (1.0, 50) and "c" not in by_reg(v)
    (w,) = verdict([row("a", 0, 0.9, 0.8, cpu=None, wall=7.0), row("b", 0, 0.8, 0.8)])
    assert w["cost_basis"] == "wall_time" and w["cpu_time"] == 7.0 and "7.0 s wall" in sentence(w)


def test_budgets_are_judged_separately():
    rows = [row("a", s, 0.9, 0.8, budget=0.3) for s in range(2)] + [row("b", s, 0.8, 0.8, budget=0.3) for s in range(2)]
    rows += [row("a", s, 0.7, 0.8, budget=1.0) for s in range(2)] + [row("b", s, 0.8, 0.8, budget=1.0) for s in range(2)]
    assert [(v["budget"], v["pick"]) for v in verdict(rows)] == [(0.3, "a"), (1.0, "b")]


# --- in the report: at the top, escaped in HTML, provenance at the end


def report_rows():
    rows = [row("uniform/none", s, 0.80 + s / 100, 0.79, budget=b) for s in range(3) for b in (0.3, 1.0)]
    rows += [row("mixup/none", s, 0.84 + s / 100, 0.83, budget=b) for s in range(3) for b in (0.3, 1.0)]
    return rows


def test_report_md_opens_with_the_verdict_and_ends_with_provenance(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_plots", lambda rows: {})
    write_report(tmp_path, report_rows(), "study")
    md = (tmp_path / "report.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "# study" and lines[2].startswith("At budget 0.3: **mixup/none** (validation 85.0%, test 83.0%")
    assert lines[4].startswith("At budget 1: **mixup/none**")
    assert md.index("At budget") < md.index("| regimen |") < md.index("## Provenance")
    assert "test acc % (best, optimistic)" in md and "speed-up vs uniform@1.0 (CPU time)" in md
    tail = md[md.index("## Provenance"):]
    for key in ("cpu", "cores", "python", "torch", "numpy", "trainwise", "trainwise_commit"):
        assert f"- {key}: " in tail
    assert "- dataset: arrays (fingerprint abc123)" in tail
    write_report(tmp_path, report_rows(), "study")
    assert (tmp_path / "report.md").read_text() == md  # deterministic: no timestamps


def test_report_html_escapes_user_strings(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_plots", lambda rows: {})
    evil = "<script>alert(1)</script>"
    rows = [row(evil, s, 0.9, 0.8) for s in range(2)] + [row("uniform/none", s, 0.8, 0.8) for s in range(2)]
    rows.append(row("uniform/none", 5, None, None, status="failed", error=f"boom {evil}"))
    rows[-1]["metrics"] = None
    write_report(tmp_path, rows, f"title {evil}", notes=f"notes {evil}")
    html = (tmp_path / "report.html").read_text()
    assert "<script" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # title ×2, verdict, table, notes, error
    assert "<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>" in html  # the pick, in bold


def test_provenance_keys(tmp_path):
    p = provenance()
    assert set(p) == {"cpu", "cores", "gpu", "python", "torch", "numpy", "trainwise", "trainwise_commit"}
    assert isinstance(p["cores"], int) and p["cores"] >= 1
    assert p["python"].count(".") == 2 and p["torch"] and p["numpy"]
    assert p["trainwise_commit"] is None or len(p["trainwise_commit"]) == 40
    (tmp_path / "__init__.py").write_text("")
    assert git_commit(tmp_path) is None  # not a git checkout
    assert provenance() == p  # deterministic
