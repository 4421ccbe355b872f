"""``trainwise advise``: which regimen to use at a target budget B, for a fraction of the compute
of the exhaustive grid (every regimen x every seed at B).

Successive halving and Hyperband judge candidates by *partial* runs of the full schedule. That is
biased for exactly what trainwise compares: a budget-aware schedule must be laid over the budget
actually spent (Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020), and a procedure that is
worse early (a mixer, a sampler that primes) can win at B. So every trial advise runs is a
**complete** budget-aware run at its own budget, and regimens are compared by where their
accuracy-vs-budget line is heading at B, not by where they stand at a rung. The rule, in full
(docs/methods.md §8):

1. **Rungs.** Complete runs at B/9, B/3 and B (rounded to 4 significant digits, so trial ids are
   stable and shared with studies that list those budgets), ``min_seeds`` seeds each: every
   candidate at B/9, every candidate at B/3, then the survivors at B, best prediction first, as
   far as the advice budget goes (the control is kept, not run first).
2. **Prediction at B.** Measured at B: the mean validation accuracy at B. Otherwise the line
   through the means at its two largest rungs, in log budget, extrapolated to B. With one rung
   only: that rung plus the *pooled slope* (mean slope of the regimens that have two rungs).
   Accuracy flattens as the budget grows, so such a line overshoots; once regimens have been
   measured at B, the mean of their *bends* (measured at B minus their own line) is added to the
   lines of the others, and the bends' spread to their variance.
3. **Interval.** Seed-to-seed noise is pooled over every (regimen, budget) cell with two or more
   seeds (its variance σ², with Σ(n-1) degrees of freedom); a prediction's variance follows from
   the cells it uses (extrapolating from B/3 and B/9 to B: σ²(4/n₂ + 1/n₁)), and its 95% interval
   uses Student t. With 2-3 seeds a bootstrap over seeds collapses to the range of the seeds and
   understates the noise, so the interval is parametric; the probability that the pick is best
   is a parametric bootstrap of the predictions.
4. **Elimination**, from the B/3 rung on (one rung says nothing about how a regimen scales): drop
   a regimen when its upper bound + δ is below the best lower bound. The control (uniform
   sampling, no or standard augmentation) is never dropped. A regimen whose trial fails is
   dropped with the error.
5. **Stop** when one regimen is left; when every survivor was measured at B on ``min_seeds``
   seeds and each lies within δ of the leader or clearly behind it (upper bound + δ below the
   leader's lower bound: only the control survives that way); when the config's seeds are used
   up; or when the next trial would overrun the advice budget (default 40% of the grid's
   estimated cost). Until then, survivors get one more seed at B each, best first.
6. **Answer.** The pick is the survivor with the highest mean validation accuracy among those
   measured at B (an extrapolation is the pick only when no survivor reached B; a pooled-slope
   guess only when nothing else is left); the tied set is every survivor whose difference to the
   pick is at most δ or has an interval that includes 0, extrapolated ones included.

``advise`` is pure: it asks ``run(requests)`` for trial outcomes and ``estimate(regimen, budget)``
for their expected cost, so the same code runs live (study/advise_run.py) and replays a stored
grid (``replay_runner``, benchmarks/advise_replay.py).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats

from .verdict import DELTA

RUNGS = (1 / 9, 1 / 3, 1.0)
ADVICE_FRACTION = 0.4  # default advice budget: this fraction of the exhaustive grid's cost
MIN_SEEDS = 2


@dataclass(frozen=True)
class Request:
    regimen: str
    budget: float
    seed: int


@dataclass
class Outcome:
    val_acc: float | None  # None: the trial failed
    cost: float  # what it spent: process CPU seconds (live), or whatever unit the replay counts
    test_acc: float | None = None
    error: str | None = None


Runner = Callable[[list[Request]], dict[Request, Outcome]]
Estimate = Callable[[str, float], float]


def rung_budgets(budget: float) -> list[float]:
    """B/9, B/3 and B, rounded to 4 significant digits (0.3 -> [0.03333, 0.1, 0.3])."""
    return [float(f"{budget * f:.4g}") for f in RUNGS]


def pooled_noise(cells: dict[tuple[str, float], dict[int, float]]) -> tuple[float | None, int]:
    """Pooled within-cell variance of validation accuracy over cells with >= 2 seeds, and its
    degrees of freedom (0 and None when no cell has two seeds)."""
    ss, df = 0.0, 0
    for vals in cells.values():
        xs = list(vals.values())
        if len(xs) >= 2:
            ss += statistics.variance(xs) * (len(xs) - 1)
            df += len(xs) - 1
    return (ss / df if df else None), df


def predict(cells: dict[tuple[str, float], dict[int, float]], regimen: str, budget: float,
            sigma2: float | None) -> dict | None:
    """The prediction at ``budget`` for one regimen from its cells (see the module docstring):
    ``pred``, ``var`` (None without a noise estimate), ``basis``, ``slope`` (None unless two
    rungs). None when it has no finished cell; the pooled-slope case is ``predict_all``'s."""
    mine = {b: v for (r, b), v in cells.items() if r == regimen and v}
    if not mine:
        return None
    mean = {b: statistics.fmean(v.values()) for b, v in mine.items()}
    n = {b: len(v) for b, v in mine.items()}
    if budget in mine:
        out = dict(pred=mean[budget], var=sigma2 / n[budget] if sigma2 is not None else None,
                   basis=f"measured at {budget:g} ({n[budget]} seeds)", slope=None, one=None)
        below = {k: v for k, v in cells.items() if not (k[0] == regimen and k[1] == budget)}
        line = predict(below, regimen, budget, sigma2)
        if line is not None and line["pred"] is not None:  # how far B fell below the straight line
            out["bend"] = mean[budget] - line["pred"]
            out["bend_var"] = (line["var"] + out["var"]) if sigma2 is not None else None
        return out
    bs = sorted(mine)
    if len(bs) == 1:
        return dict(pred=None, var=None, basis=None, slope=None, one=(bs[0], mean[bs[0]], n[bs[0]]))
    b1, b2 = bs[-2], bs[-1]
    slope = (mean[b2] - mean[b1]) / math.log(b2 / b1)
    k = math.log(budget / b2) / math.log(b2 / b1)
    var = sigma2 * ((1 + k) ** 2 / n[b2] + k ** 2 / n[b1]) if sigma2 is not None else None
    return dict(pred=mean[b2] + slope * math.log(budget / b2), var=var, slope=slope, one=None,
                basis=f"extrapolated from {b1:g} and {b2:g} ({n[b1]} and {n[b2]} seeds)")


def predict_all(cells, regimens: list[str], budget: float) -> tuple[dict[str, dict], int]:
    """Predictions for every regimen with a finished cell, intervals included (``lo``, ``hi``:
    None without a noise estimate), and the noise's degrees of freedom."""
    sigma2, df = pooled_noise(cells)
    out = {r: p for r in regimens if (p := predict(cells, r, budget, sigma2)) is not None}
    slopes = [p["slope"] for p in out.values() if p["slope"] is not None]
    for r, p in out.items():
        if p["one"] is None:
            continue
        b1, m1, n1 = p["one"]
        if len(slopes) < 2:
            continue  # no pooled slope yet: no prediction
        s, s_sd = statistics.fmean(slopes), statistics.stdev(slopes)
        p["pred"] = m1 + s * math.log(budget / b1)
        p["slope"] = s
        p["var"] = sigma2 / n1 + (s_sd * math.log(budget / b1)) ** 2 if sigma2 is not None else None
        p["basis"] = f"{b1:g} ({n1} seeds) with the pooled slope of {len(slopes)} regimens"
        p["pooled"] = True
    # Accuracy flattens as the budget grows, so a straight line in log budget overshoots at B. Each
    # regimen measured at B and at two lower rungs shows by how much (its "bend": measured minus the
    # line); lines of the others get the mean bend, and the bends' spread as added variance.
    bends = [(p["bend"], p["bend_var"]) for p in out.values() if p.get("bend") is not None]
    if bends:
        shift = statistics.fmean(b for b, _ in bends)
        if len(bends) >= 2:
            extra = statistics.variance([b for b, _ in bends]) * (1 + 1 / len(bends))
        else:
            extra = 2 * bends[0][1] if bends[0][1] is not None else None
        for p in out.values():
            if p["pred"] is not None and not p["basis"].startswith("measured"):
                p["pred"] += shift
                p["var"] = p["var"] + extra if p["var"] is not None and extra is not None else None
                p["basis"] += f", bent by {shift * 100:+.1f} points as {len(bends)} regimen(s) measured at B"
    t = stats.t.ppf(0.975, df) if df else None
    for p in out.values():
        if p["pred"] is None:
            continue
        ok = p["var"] is not None and t is not None
        half = t * math.sqrt(p["var"]) if ok else None
        clip = lambda x: min(1.0, max(0.0, x))  # noqa: E731  (an accuracy lies in [0, 1])
        p["lo"] = clip(p["pred"] - half) if ok else None
        p["hi"] = clip(p["pred"] + half) if ok else None
        p["pred"] = clip(p["pred"])
    return {r: p for r, p in out.items() if p["pred"] is not None}, df


def p_best(preds: dict[str, dict], pick: str, draws: int = 4000, seed: int = 0) -> float | None:
    """Probability that ``pick`` has the highest accuracy at B: a parametric bootstrap that draws
    every prediction from N(pred, var)."""
    names = [r for r, p in preds.items() if p["var"] is not None]
    if pick not in names or len(names) < 2:
        return None
    rng = np.random.default_rng(seed)
    mu = np.array([preds[r]["pred"] for r in names])
    sd = np.sqrt([preds[r]["var"] for r in names])
    sample = mu + sd * rng.standard_normal((draws, len(names)))
    return float((sample.argmax(1) == names.index(pick)).mean())


def advise(regimens: list[str], budget: float, seeds: list[int], run: Runner, estimate: Estimate,
           advice_budget: float, control: str | None = None, delta: float = DELTA,
           min_seeds: int = MIN_SEEDS, spent: float = 0.0, grid_cost: float | None = None,
           echo: Callable[[str], None] = lambda s: None) -> dict:
    """Run the rungs (module docstring) and return the advice as a JSON-serialisable dict:
    ``pick``, ``tied``, ``p_best``, ``regimens`` (per regimen: ``status`` kept/dropped/failed,
    ``reason``, ``pred``/``lo``/``hi``/``basis`` at B, ``trials`` by budget, ``val_acc``/
    ``test_acc`` at B when measured), ``spent``, ``advice_budget``, ``grid_cost``, ``stopped``
    (why it stopped) and ``log``. ``spent``: compute already spent (a calibration)."""
    if len(regimens) != len(set(regimens)) or not regimens:
        raise ValueError("regimens must be distinct and at least one")
    min_seeds = max(1, min(min_seeds, len(seeds)))
    rungs = rung_budgets(budget)
    budget = rungs[-1]  # B as its trials name it (4 significant digits)
    cells: dict[tuple[str, float], dict[int, float]] = {}
    tests: dict[tuple[str, float], dict[int, float]] = {}
    status = {r: dict(status="kept", reason=None, dropped_at=None) for r in regimens}
    log: list[str] = []
    # actual / estimated cost of the trials run so far, per regimen (else over all), scales later
    # estimates: a calibration that is off (a sampler whose steps get dearer after a priming
    # phase) does not make advise overrun its budget
    state = dict(spent=spent)
    ratio: dict[str | None, list[float]] = {None: [0.0, 0.0]}  # regimen -> [estimated, actual]

    def cost_of(q: Request) -> float:
        est, act = ratio.get(q.regimen, ratio[None])
        scale = act / est if est > 0 and act > 0 else 1.0
        return estimate(q.regimen, q.budget) * scale

    def say(msg: str) -> None:
        log.append(msg)
        echo(msg)

    def alive() -> list[str]:
        return [r for r in regimens if status[r]["status"] == "kept"]

    def order(preds: dict) -> list[str]:
        """Alive regimens, best prediction first (the config's order before there are predictions):
        the budget goes where the decision is; the control is kept, not run first."""
        return sorted(alive(), key=lambda r: (-(preds[r]["pred"]) if r in preds else math.inf, regimens.index(r)))

    def submit(plan: list[list[Request]]) -> int:
        """Run whole groups (one regimen's seeds) while their estimate fits; return groups run."""
        reqs, est, groups = [], 0.0, 0
        for group in plan:
            todo = [q for q in group if q.seed not in cells.get((q.regimen, q.budget), {})]
            cost = sum(cost_of(q) for q in todo)
            if state["spent"] + est + cost > advice_budget:
                break
            reqs += todo
            est += cost
            groups += 1
        if not reqs:
            return groups
        got = run(reqs)
        for q in reqs:
            o = got[q]
            state["spent"] += o.cost
            for key in (None, q.regimen):
                pair = ratio.setdefault(key, [0.0, 0.0])
                pair[0] += estimate(q.regimen, q.budget)
                pair[1] += o.cost
            if o.val_acc is None:
                if status[q.regimen]["status"] == "kept":
                    status[q.regimen] = dict(status="failed", dropped_at=q.budget,
                                             reason=f"trial (budget {q.budget:g}, seed {q.seed}) failed: "
                                                    f"{(o.error or 'no error recorded').splitlines()[0][:200]}")
                    say(f"{q.regimen}: dropped, {status[q.regimen]['reason']}")
                continue
            cells.setdefault((q.regimen, q.budget), {})[q.seed] = o.val_acc
            if o.test_acc is not None:
                tests.setdefault((q.regimen, q.budget), {})[q.seed] = o.test_acc
        return groups

    def eliminate(preds: dict, rung: float) -> None:
        """Only predictions from a regimen's own runs drop or get dropped (not pooled-slope guesses)."""
        ranked = [r for r in alive() if r in preds and preds[r]["lo"] is not None and not preds[r].get("pooled")]
        if len(ranked) < 2:
            return
        best = max(ranked, key=lambda r: preds[r]["lo"])
        floor = preds[best]["lo"]
        for r in ranked:
            if r != control and r != best and preds[r]["hi"] + delta < floor:
                status[r] = dict(status="dropped", dropped_at=rung, reason=(
                    f"after the {rung:g} rung: upper bound {preds[r]['hi'] * 100:.1f}% + δ {delta * 100:g} "
                    f"points is below {best}'s lower bound {floor * 100:.1f}%"))
                say(f"{r}: dropped {status[r]['reason']}")

    def settled(preds: dict) -> str | None:
        """Why more seeds would not change the answer, or None: one regimen left; or the leader
        and every other survivor measured at B on ``min_seeds`` seeds, each of the others either
        within δ of the leader or clearly behind it (only the control survives that way)."""
        live = alive()
        if len(live) <= 1:
            return "one regimen left"
        if not all(r in preds and not preds[r].get("pooled") and len(cells.get((r, budget), {})) >= min_seeds
                   for r in live):
            return None
        lead = max(live, key=lambda r: preds[r]["pred"])
        lo = preds[lead]["lo"]
        for r in live:
            near = preds[lead]["pred"] - preds[r]["pred"] <= delta
            behind = lo is not None and preds[r]["hi"] is not None and preds[r]["hi"] + delta < lo
            if r != lead and not (near or behind):
                return None
        return (f"settled at B: every other survivor lies within δ = {delta * 100:g} points of {lead} or is "
                "clearly behind it")

    stopped = None
    preds: dict = {}
    for i, b in enumerate(rungs):
        plan = [[Request(r, b, s) for s in seeds[:min_seeds]] for r in order(preds)]
        ran = submit(plan)
        say(f"rung {b:g}: {ran} of {len(plan)} regimens x {min_seeds} seeds; spent {state['spent']:.1f} of "
            f"{advice_budget:.1f}")
        preds, _ = predict_all(cells, regimens, budget)
        if i >= 1:
            eliminate(preds, b)
        if ran < len(plan):
            stopped = "the advice budget ran out"
            break
        if len(alive()) <= 1:
            stopped = "one regimen left"
            break
    if stopped is None:
        for k in range(min_seeds, len(seeds)):
            stopped = settled(preds)
            if stopped:
                break
            plan = [[Request(r, budget, seeds[k])] for r in order(preds)]
            ran = submit(plan)
            say(f"seed {seeds[k]} at {budget:g}: {ran} of {len(plan)} regimens; spent {state['spent']:.1f}")
            preds, _ = predict_all(cells, regimens, budget)
            eliminate(preds, budget)
            if ran < len(plan):
                stopped = "the advice budget ran out"
                break
        else:
            stopped = settled(preds) or "the config's seeds are used up"

    if len(alive()) == 1 and not cells.get((alive()[0], budget)):  # the answer's accuracy at B
        submit([[Request(alive()[0], budget, s) for s in seeds[:min_seeds]]])
        preds, _ = predict_all(cells, regimens, budget)
    live = [r for r in alive() if r in preds]
    # the pick rests on runs at B; else on the regimen's own rungs; a pooled-slope guess only when
    # nothing else is left
    own = ([r for r in live if cells.get((r, budget))] or [r for r in live if not preds[r].get("pooled")]
           or live)
    pick = max(own, key=lambda r: (preds[r]["pred"], -regimens.index(r))) if own else None
    if pick is None and len(alive()) == 1:
        pick = alive()[0]  # the only survivor, even if it could not be measured at B
    tied = []
    if pick is not None:
        _, df = pooled_noise(cells)
        t = stats.t.ppf(0.975, df) if df else None
        for r in live:
            if r == pick:
                continue
            d = preds[pick]["pred"] - preds[r]["pred"]
            var = (preds[pick]["var"] or 0) + (preds[r]["var"] or 0) if t is not None else None
            if d <= delta or var is None or d - t * math.sqrt(var) <= 0:
                tied.append(r)
    out_regs = {}
    for r in regimens:
        p = preds.get(r, {})
        at_b = cells.get((r, budget), {})
        out_regs[r] = dict(
            status[r], pred=p.get("pred"), lo=p.get("lo"), hi=p.get("hi"), basis=p.get("basis"),
            trials={f"{b:g}": sorted(cells.get((r, b), {})) for b in rungs if cells.get((r, b))},
            val_acc=statistics.fmean(at_b.values()) if at_b else None,
            test_acc=statistics.fmean(tests[(r, budget)].values()) if tests.get((r, budget)) else None)
    return dict(budget=budget, rungs=rungs, pick=pick, tied=tied, control=control, delta=delta,
                unpredicted=[r for r in alive() if r not in preds and r != pick],
                min_seeds=min_seeds, p_best=p_best(preds, pick) if pick else None, regimens=out_regs,
                spent=state["spent"], advice_budget=advice_budget, grid_cost=grid_cost, stopped=stopped,
                log=log)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def advice_summary(a: dict, esc=str, bold=lambda s: f"**{s}**") -> list[str]:
    """advise's answer in a few sentences: pick, tie, confidence, spend. ``esc`` escapes regimen
    names (html.escape for HTML), ``bold`` marks the answer."""
    B = a["budget"]
    if a["pick"] is None:
        lines = [bold(f"No recommendation at budget {B:g}") + f": no regimen could be predicted at B ({a['stopped']})."]
    else:
        p = a["regimens"][a["pick"]]
        at_b = (f"validation {_pct(p['val_acc'])}, test {_pct(p['test_acc'])} at B" if p["val_acc"] is not None
                else f"predicted validation {_pct(p['pred'])} at B ({p['basis']}; not run at B)")
        conf = f"probability it is the best: {a['p_best']:.0%}" if a["p_best"] is not None else \
            "no probability of being best can be given: too few predicted regimens or seeds to estimate the noise"
        lines = [bold(f"At budget {B:g}, use {esc(a['pick'])}") + f" ({esc(at_b)}; {conf})."]
        if a["tied"]:
            lines.append(f"Statistically tied with it (difference ≤ δ = {a['delta'] * 100:g} points or an interval "
                         f"that includes 0): {', '.join(map(esc, a['tied']))}.")
        elif len(a["regimens"]) > 1:
            lines.append("No other predicted regimen is tied with it.")
        if a.get("unpredicted"):
            lines.append(f"Not compared (the budget ran out before they reached two rungs): "
                         f"{', '.join(map(esc, a['unpredicted']))}.")
    grid = a.get("grid_cost")
    share = f" = {a['spent'] / grid:.0%} of the exhaustive grid's ≈ {grid:.3g} s" if grid else ""
    lines.append(f"Compute spent: {a['spent']:.3g} s CPU{share} (advice budget {a['advice_budget']:.3g} s); "
                 f"stopped because {esc(a['stopped'])}.")
    return lines


# ---------------------------------------------------------------- replay and the baseline


def read_export(path) -> list[dict]:
    """A grid exported as CSV (benchmarks/advise_replay.py --export): one dict per trial, with
    ``budget``, ``val_acc``, ``test_acc``, ``cpu_time`` as floats and ``seed`` as an int."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    num = ("budget", "val_acc", "test_acc", "cpu_time")
    return [{**r, **{k: float(r[k]) for k in num}, "seed": int(r["seed"])} for r in rows]


def replay_runner(rows: list[dict]) -> tuple[Runner, Estimate]:
    """Answer advise's requests from a stored grid: ``rows`` with ``regimen``, ``budget``,
    ``seed``, ``val_acc``, ``test_acc``, ``cpu_time`` (an export, see benchmarks/advise_replay.py).
    The cost estimate of a (regimen, budget) is its mean CPU time in the grid, as a calibration
    would give."""
    table = {(r["regimen"], float(f"{r['budget']:.4g}"), r["seed"]): r for r in rows}
    est: dict[tuple[str, float], list[float]] = {}
    for (reg, b, _), r in table.items():
        est.setdefault((reg, b), []).append(r["cpu_time"])

    def run(reqs: list[Request]) -> dict[Request, Outcome]:
        out = {}
        for q in reqs:
            r = table.get((q.regimen, q.budget, q.seed))
            if r is None:
                raise KeyError(f"the grid has no trial {q}")
            out[q] = Outcome(r.get("val_acc"), r["cpu_time"], r.get("test_acc"), r.get("error"))
        return out

    def estimate(regimen: str, budget: float) -> float:
        return statistics.fmean(est[(regimen, budget)])

    return run, estimate


def replay_many(rows: list[dict], replays: int = 100, delta: float = DELTA, min_seeds: int = MIN_SEEDS,
                fraction: float = ADVICE_FRACTION, seed: int = 0) -> dict:
    """Replay advise ``replays`` times over a stored grid at its largest budget B, each time with
    the grid's seeds in another random order, and score it against the exhaustive grid: the
    regret (the grid's best mean validation accuracy at B over all seeds, minus the pick's) and
    the compute spent as a fraction of the grid's (every regimen x seed at B, in CPU time).
    Rows need ``regimen``, ``budget``, ``seed``, ``val_acc``, ``test_acc``, ``cpu_time`` and
    ``control`` (true for the uniform/standard control)."""
    import random

    regimens = list(dict.fromkeys(r["regimen"] for r in rows))
    B = max(r["budget"] for r in rows)
    seeds = sorted({r["seed"] for r in rows})
    control = next((r["regimen"] for r in rows if str(r.get("control")).lower() in ("1", "true")), None)
    at_b = {reg: [r for r in rows if r["regimen"] == reg and r["budget"] == B] for reg in regimens}
    truth = {reg: statistics.fmean(r["val_acc"] for r in rs) for reg, rs in at_b.items()}
    truth_test = {reg: statistics.fmean(r["test_acc"] for r in rs) for reg, rs in at_b.items()}
    best = max(truth, key=truth.get)
    grid = sum(r["cpu_time"] for rs in at_b.values() for r in rs)
    run, estimate = replay_runner(rows)
    regrets, test_regrets, spends, picks, tied_best = [], [], [], {}, 0
    for i in range(replays):
        order = list(seeds)
        random.Random(seed + i).shuffle(order)
        got = advise(regimens, B, order, run, estimate, fraction * grid, control=control, delta=delta,
                     min_seeds=min_seeds, grid_cost=grid)
        pick = got["pick"]
        picks[pick] = picks.get(pick, 0) + 1
        regrets.append(truth[best] - truth[pick])
        test_regrets.append(max(truth_test.values()) - truth_test[pick])
        spends.append(got["spent"] / grid)
        tied_best += pick == best or best in got["tied"]
    return dict(replays=replays, regimens=len(regimens), seeds=len(seeds), budget=B, best=best,
                best_val_acc=truth[best], within_delta=sum(r <= delta + 1e-12 for r in regrets) / replays,
                mean_regret=statistics.fmean(regrets), max_regret=max(regrets),
                mean_test_regret=statistics.fmean(test_regrets), mean_spend_fraction=statistics.fmean(spends),
                max_spend_fraction=max(spends), picks=picks, best_in_pick_or_tied=tied_best / replays,
                grid_cpu_time=grid)


def successive_halving(regimens: list[str], budget: float, seeds: list[int], run: Runner, eta: int = 3) -> str:
    """The baseline advise replaces: successive halving over the rungs B/9, B/3, B, keeping the
    top 1/eta by mean validation accuracy at each rung. ``run`` answers for *partial* runs (the
    first b/B of the schedule laid over B), as Hyperband does."""
    alive = list(regimens)
    for b in rung_budgets(budget):
        got = run([Request(r, b, s) for r in alive for s in seeds])
        score = {r: statistics.fmean(got[Request(r, b, s)].val_acc for s in seeds) for r in alive}
        keep = 1 if b == rung_budgets(budget)[-1] else max(1, math.ceil(len(alive) / eta))
        alive = sorted(alive, key=lambda r: -score[r])[:keep]
    return alive[0]


__all__ = ["advise", "Request", "Outcome", "rung_budgets", "predict_all", "p_best", "replay_runner", "replay_many", "read_export",
           "successive_halving", "advice_summary", "RUNGS", "ADVICE_FRACTION", "MIN_SEEDS"]
