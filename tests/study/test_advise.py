"""trainwise advise's rule (study/advise.py) on synthetic accuracy curves and on real exported grids."""

from __future__ import annotations

import math
import random
import zlib
from pathlib import Path

import pytest

from trainwise.study.advise import (Outcome, Request, advise, predict_all, read_export, replay_many,
                                    rung_budgets, successive_halving)

GRIDS = Path(__file__).resolve().parents[2] / "benchmarks" / "grids"


def curves_runner(curves: dict[str, tuple[float, float]], B: float, sigma: float, salt: int = 0,
                  cost: dict[str, float] | None = None):
    """Complete runs whose validation accuracy is a + s*ln(b/B) + N(0, sigma), the noise fixed by
    (regimen, budget, seed, salt); a trial costs b * cost[regimen]."""
    cost = cost or {}
    calls: list[Request] = []

    def acc(q: Request) -> float:
        a, s = curves[q.regimen]
        rng = random.Random(zlib.crc32(f"{q.regimen}|{q.budget:.4g}|{q.seed}|{salt}".encode()))
        return a + s * math.log(q.budget / B) + rng.gauss(0, sigma)

    def run(reqs):
        calls.extend(reqs)
        return {q: Outcome(acc(q), q.budget * cost.get(q.regimen, 1.0)) for q in reqs}

    def estimate(regimen, budget):
        return budget * cost.get(regimen, 1.0)

    return run, estimate, calls


def grid_cost(regimens, seeds, estimate, B):
    return sum(estimate(r, B) for r in regimens for _ in seeds)


def test_rungs_are_b_over_9_and_3_rounded_to_4_digits():
    assert rung_budgets(1.0) == [0.1111, 0.3333, 1.0]
    assert rung_budgets(0.3) == [0.03333, 0.1, 0.3]


def test_extrapolation_is_the_line_through_the_two_largest_rungs_in_log_budget():
    cells = {("a", 0.1111): {0: 0.70, 1: 0.72}, ("a", 0.3333): {0: 0.76, 1: 0.78},
             ("b", 0.3333): {0: 0.80, 1: 0.80}, ("b", 1.0): {0: 0.85, 1: 0.86}}
    preds, df = predict_all(cells, ["a", "b"], 1.0)
    # a: 0.71 at B/9, 0.77 at B/3, equally spaced in log budget -> 0.83 at B (up to the rounding
    # of 1/9 and 1/3 to 4 digits); b: measured
    assert preds["a"]["pred"] == pytest.approx(0.83, abs=1e-4)
    assert preds["b"]["pred"] == pytest.approx(0.855)
    # seed noise is pooled per rung: B/9 one cell (variance 0.0002, 1 df), B/3 two cells (0.0001,
    # 2 df), B one cell (0.00005, 1 df)
    assert df == 1
    var_a = 4 * 0.0001 / 2 + 0.0002 / 2  # k = 1 up to rounding
    df_a = var_a ** 2 / ((4 * 0.0001 / 2) ** 2 / 2 + (0.0002 / 2) ** 2 / 1)  # Welch-Satterthwaite: 3
    assert preds["a"]["df"] == pytest.approx(df_a, rel=1e-3) and df_a == pytest.approx(3)
    assert preds["a"]["hi"] - preds["a"]["pred"] == pytest.approx(3.1824463 * math.sqrt(var_a), rel=1e-3)  # t(.975, 3)
    assert preds["b"]["hi"] - preds["b"]["pred"] == pytest.approx(12.7062047 * math.sqrt(0.00005 / 2), rel=1e-6)


def test_a_slope_that_is_mostly_seed_noise_is_shrunk_for_the_ranking_only():
    """Five regimens level at B/3; one had a lucky B/9 seed pair, so its line is flatter than the
    others' by about the slopes' noise. The ranking shrinks its slope to the mean (the slopes
    spread no more than their noise), so it is not ranked last; its interval stays its own line's."""
    cells = {}
    for r, low in [("a", 0.70), ("b", 0.70), ("c", 0.70), ("d", 0.70), ("lucky", 0.73)]:
        cells[(r, 0.1111)] = {0: low - 0.02, 1: low + 0.02}
        cells[(r, 0.3333)] = {0: 0.79, 1: 0.81}
    preds, _ = predict_all(cells, list({r for r, _ in cells}), 1.0)
    assert preds["lucky"]["pred"] < preds["a"]["pred"] - 0.02  # its own line: 3 points lower
    assert preds["lucky"]["rank"] == pytest.approx(preds["a"]["rank"], abs=0.01)  # shrunk: level with the rest
    assert preds["lucky"]["hi"] - preds["lucky"]["pred"] == pytest.approx(preds["a"]["hi"] - preds["a"]["pred"])


def test_crossing_curves_advise_picks_the_late_winner_and_successive_halving_does_not():
    """'late' is worst at B/9 (-9 points) and best at B (+3 points): a procedure that needs its
    whole budget. Successive halving drops it at the first rung; advise follows the curves."""
    B, seeds = 1.0, [0, 1, 2, 3, 4]
    curves = {"uniform/standard": (0.80, 0.010), "early": (0.81, 0.005), "late": (0.84, 0.045),
              "other": (0.79, 0.010), "weak": (0.75, 0.010), "flat": (0.805, 0.002)}
    picks = []
    for salt in range(20):
        run, estimate, _ = curves_runner(curves, B, 0.004, salt)
        got = advise(list(curves), B, seeds, run, estimate, 0.4 * grid_cost(curves, seeds, estimate, B),
                     control="uniform/standard")
        picks.append(got["pick"])
        assert got["regimens"]["uniform/standard"]["status"] == "kept"  # the control stays
        assert successive_halving(list(curves), B, seeds[:2], run) != "late"
    assert picks.count("late") >= 19, picks


def test_two_identical_regimens_are_called_tied():
    B, seeds = 1.0, [0, 1, 2, 3, 4]
    curves = {"uniform/standard": (0.80, 0.02), "twin-a": (0.83, 0.02), "twin-b": (0.83, 0.02),
              "worse": (0.78, 0.02)}
    tied = 0
    for salt in range(100):
        run, estimate, _ = curves_runner(curves, B, 0.006, salt)
        got = advise(list(curves), B, seeds, run, estimate, 0.4 * grid_cost(curves, seeds, estimate, B),
                     control="uniform/standard")
        assert got["pick"] in ("twin-a", "twin-b")
        other = {"twin-a": "twin-b", "twin-b": "twin-a"}[got["pick"]]
        tied += other in got["tied"]
        assert "worse" not in got["tied"]  # 5 points behind the twins at every budget: never called tied
    assert tied >= 95, tied


def test_advice_budget_is_never_overrun_and_nothing_is_dropped_on_the_first_rung_alone():
    B, seeds = 0.5, [0, 1, 2]
    curves = {"uniform/none": (0.8, 0.02), "bad": (0.5, 0.02), "good": (0.82, 0.02)}
    run, estimate, calls = curves_runner(curves, B, 0.003, cost={"bad": 2.0})
    limit = 0.4 * grid_cost(curves, seeds, estimate, B)
    got = advise(list(curves), B, seeds, run, estimate, limit, control="uniform/none")
    assert got["spent"] <= limit
    assert got["pick"] == "good"
    bad = got["regimens"]["bad"]
    assert bad["status"] == "dropped" and bad["dropped_at"] == rung_budgets(B)[1]  # 30 points worse, dropped at B/3
    assert {q.budget for q in calls if q.regimen == "bad"} == set(rung_budgets(B)[:2])
    # a tiny advice budget: stops when the next group would overrun it, and says so
    got = advise(list(curves), B, seeds, *curves_runner(curves, B, 0.003)[:2], advice_budget=0.2)
    assert got["spent"] <= 0.2 and got["stopped"] == "the advice budget ran out"


def test_a_rerun_with_every_trial_stored_takes_the_same_decisions():
    """Trials at B cost twice their estimate (a sampler whose steps get dearer after priming), so
    the group admitted on its estimate overruns the budget. Run again with every trial stored
    (``known``: its recorded cost), advise must not refuse what it ran the first time: a stored
    trial is estimated at its recorded cost, but never above the estimate a fresh run would use."""
    B, seeds = 1.0, [0, 1, 2, 3, 4]
    curves = {"uniform/none": (0.80, 0.02), "a": (0.82, 0.03), "b": (0.81, 0.01), "c": (0.79, 0.02)}
    run, estimate, calls = curves_runner(curves, B, 0.005)
    dear = lambda reqs: {q: Outcome(o.val_acc, o.cost * (2 if q.budget == B else 1))  # noqa: E731
                         for q, o in run(reqs).items()}
    limit = 0.4 * grid_cost(curves, seeds, estimate, B)
    first = advise(list(curves), B, seeds, dear, estimate, limit, control="uniform/none")
    assert first["spent"] > limit  # the overrun this test is about
    recorded = {q: o.cost for q, o in dear(list(set(calls))).items()}
    again = advise(list(curves), B, seeds, dear, estimate, limit, control="uniform/none", known=recorded.get)
    assert again == first


def test_a_failed_trial_drops_its_regimen_with_the_error():
    B, seeds = 1.0, [0, 1]
    curves = {"uniform/none": (0.8, 0.02), "diverges": (0.9, 0.02)}
    run, estimate, _ = curves_runner(curves, B, 0.003)

    def failing(reqs):
        out = run(reqs)
        return {q: (Outcome(None, 0.1, error="loss became nan at step 3\ntraceback") if q.regimen == "diverges"
                    else o) for q, o in out.items()}

    got = advise(list(curves), B, seeds, failing, estimate, 10.0, control="uniform/none")
    assert got["pick"] == "uniform/none"
    d = got["regimens"]["diverges"]
    assert d["status"] == "failed" and "loss became nan at step 3" in d["reason"] and "traceback" not in d["reason"]
    assert got["regimens"]["uniform/none"]["trials"] == {"0.1111": [0, 1], "1": [0, 1]}  # the survivor at B


@pytest.mark.parametrize("grid", sorted(p.stem for p in GRIDS.glob("*.csv")))
def test_replays_of_real_grids_meet_the_issue_goals_and_never_rule_the_best_out(grid):
    """The exported Fashion-MNIST grids (benchmarks/grids/*.csv): 100 replays, each with the grid's
    seeds in another order. The issue's goals: the pick within δ of the grid's best in >= 90% of
    replays, for at most 40% of the grid's compute (BENCHMARKS.md records the numbers, which rule
    changes were made after looking at which grid, and that every regimen at B on 2 seeds, with no
    rungs, does as well on these two grids for 40%). And advise never calls the grid's best worse
    than its pick, and its intervals of regimens measured at B contain the grid's 5-seed mean."""
    summary = replay_many(read_export(GRIDS / f"{grid}.csv"), replays=100)
    assert summary["max_spend_fraction"] <= 0.40, summary
    assert summary["within_delta"] >= 0.90, summary
    assert summary["best_ruled_out"] == 0 and summary["best_in_pick_or_tied"] >= 0.90, summary
    covered, n = summary["coverage"]["measured"]
    assert n > 0 and covered >= 0.95, summary
