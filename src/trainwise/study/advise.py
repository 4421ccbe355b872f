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
   candidate at B/9, every candidate at B/3, then the survivors at B in the order of their
   *rank* (4), as far as the advice budget goes (the control is kept, not run first).
2. **Prediction at B.** Measured at B: the mean validation accuracy at B. Otherwise the line
   through the means at its two largest rungs, in log budget, extrapolated to B. With one rung
   only: that rung plus the *pooled slope* (mean slope of the regimens that have two rungs).
   Accuracy flattens as the budget grows, so such a line overshoots; once regimens have been
   measured at B, the mean of their *bends* (measured at B minus their own line) is added to the
   lines of the others, and the bends' spread to their variance.
3. **Interval.** Seed noise shrinks as the budget grows (about 3x from B/9 to B on the replayed
   grids), so it is pooled per rung: over the cells of that budget with two or more seeds (σ_b²,
   Σ(n-1) degrees of freedom). A prediction's variance follows from the cells it uses
   (extrapolating from B/3 and B/9 to B: 4σ₃²/n₃ + σ₉²/n₉), components of one estimate added
   before Welch-Satterthwaite gives the degrees of freedom, and its 95% interval uses Student t.
   With 2-3 seeds a bootstrap over seeds collapses to the range of the seeds and understates the
   noise, so the interval is parametric; the probability that the pick is best is a parametric
   bootstrap of the predictions. The intervals cover seed noise and the spread of the measured
   regimens' bends; a regimen whose curve is shaped unlike theirs can fall outside (replays:
   BENCHMARKS.md). Before any regimen is measured at B there is no bend to say how far a line
   overshoots: an extrapolated interval then runs from the regimen's highest rung (accuracy
   does not fall as the budget grows) to its line (it flattens).
4. **Rank**, which decides who runs at B first: the prediction, except that each slope is shrunk
   towards the mean slope by the empirical-Bayes factor τ²/(τ² + v) (v: the slope's own noise
   variance, τ²: the slopes' spread beyond their noise). A line through two noisy rungs mostly
   extrapolates the noise of B/9; a slope that stands out beyond the noise (a late winner) keeps
   its place. The rank only orders trials; intervals and elimination use the unshrunk lines.
5. **Elimination**, from the B/3 rung on (one rung says nothing about how a regimen scales): drop
   a regimen when its upper bound + δ is below the best lower bound. The control (uniform
   sampling, no or standard augmentation) is never dropped. A regimen whose trial fails is
   dropped with the error.
6. **Stop** when one regimen is left; when every survivor was measured at B on ``min_seeds``
   seeds and each lies within δ of the leader or clearly behind it (upper bound + δ below the
   leader's lower bound: only the control survives that way); when the config's seeds are used
   up; or when the next group would overrun the advice budget (default 40% of the grid's
   estimated cost, rescaled, as each trial's estimate is, by the actual / estimated cost of the
   trials run so far). Until then, survivors get one more seed at B each, best first.
7. **Answer.** The pick is the survivor with the highest mean validation accuracy among those
   measured at B (an extrapolation is the pick only when no survivor reached B; a pooled-slope
   guess only when nothing else is left). Tied with it: the survivors also measured at B whose
   difference to the pick is at most δ or has a 95% interval that includes 0. Survivors not run
   at B are listed apart (``not_at_b``) with their extrapolated interval, not called tied.

``advise`` is pure: it asks ``run(requests)`` for trial outcomes, ``estimate(regimen, budget)``
for their expected cost and ``known(request)`` for the recorded cost of a stored trial, so the
same code runs live (study/advise_run.py) and replays a stored grid (``replay_runner``,
benchmarks/advise_replay.py).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
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


# ---------------------------------------------------------------- noise and predictions

def rung_noise(cells: dict[tuple[str, float], dict[int, float]]) -> dict[float, tuple[float, int]]:
    """Seed noise per budget: the pooled within-cell variance of validation accuracy over that
    budget's cells with two or more seeds, and its degrees of freedom."""
    acc: dict[float, list[float]] = {}
    for (_, b), vals in cells.items():
        xs = list(vals.values())
        if len(xs) >= 2:
            ss_df = acc.setdefault(b, [0.0, 0])
            ss_df[0] += statistics.variance(xs) * (len(xs) - 1)
            ss_df[1] += len(xs) - 1
    return {b: (ss / df, df) for b, (ss, df) in acc.items()}


def noise_at(noise: dict[float, tuple[float, int]], b: float) -> tuple[float | None, int]:
    """The seed variance of one trial at budget ``b`` and its degrees of freedom: ``b``'s own; for a
    budget with no cell of two seeds yet, the nearest smaller budget's (seed noise shrinks as the
    budget grows, so this errs wide), else the nearest larger one's; (None, 0) with none."""
    if b in noise:
        return noise[b]
    lower, higher = [x for x in noise if x < b], [x for x in noise if x > b]
    return noise[max(lower)] if lower else noise[min(higher)] if higher else (None, 0)


# A prediction's variance as a sum of components, keyed by the estimate each one scales (the seed
# noise of one rung, the spread of the bends, of the slopes), with that estimate's degrees of
# freedom: components of the same estimate add up before the Welch-Satterthwaite step, as they are
# not independent. None: unknown (no noise estimate yet).
Parts = dict[tuple, tuple[float, int]] | None


def _mean_part(noise, b: float, n: int, coef: float = 1.0) -> Parts:
    v, df = noise_at(noise, b)
    return None if v is None else {("noise", b): (coef ** 2 * v / n, df)}


def _add(*parts: Parts) -> Parts:
    if any(p is None for p in parts):
        return None
    out: dict[tuple, tuple[float, int]] = {}
    for p in parts:
        for key, (v, df) in p.items():
            out[key] = (out.get(key, (0.0, df))[0] + v, df)
    return out


def combine(parts: Parts) -> tuple[float | None, float]:
    """The variance a set of components adds up to, and its Welch-Satterthwaite degrees of freedom."""
    if not parts:
        return None, 0
    var = sum(v for v, _ in parts.values())
    den = sum(v * v / df for v, df in parts.values() if df > 0 and v > 0)
    if var <= 0:
        return var, min(df for _, df in parts.values())
    return var, (var * var / den if den > 0 else 0)


def _line(mean: dict[float, float], n: dict[float, int], budget: float, noise) -> dict | None:
    """The line through a regimen's means at its two largest budgets below ``budget``, in log
    budget: ``pred`` at ``budget``, its variance ``parts``, ``slope`` and the slope's own noise
    variance ``slope_var``, ``at`` = (b2, mean at b2). None with fewer than two such budgets."""
    bs = sorted(b for b in mean if b < budget)
    if len(bs) < 2:
        return None
    b1, b2 = bs[-2], bs[-1]
    gap = math.log(b2 / b1)
    slope = (mean[b2] - mean[b1]) / gap
    k = math.log(budget / b2) / gap
    (v1, _), (v2, _) = noise_at(noise, b1), noise_at(noise, b2)
    return dict(pred=mean[b2] + slope * math.log(budget / b2), slope=slope, at=(b2, mean[b2]),
                slope_var=None if v1 is None or v2 is None else (v2 / n[b2] + v1 / n[b1]) / gap ** 2,
                parts=_add(_mean_part(noise, b2, n[b2], 1 + k), _mean_part(noise, b1, n[b1], k)),
                basis=f"extrapolated from {b1:g} and {b2:g} ({n[b1]} and {n[b2]} seeds)")


def predict(cells, regimen: str, budget: float, noise) -> dict | None:
    """One regimen's prediction at ``budget`` from its own cells (module docstring): ``pred``,
    ``parts`` (its variance components), ``basis``, ``measured`` (at ``budget``), ``line`` (its
    line through the two rungs below, or None); measured and with a line, also its ``bend`` and
    ``bend_parts``. None when it has no finished cell; with one rung below ``budget`` only:
    ``pred`` None and ``one`` = (budget, mean, seeds), for ``_pooled_slope``."""
    mine = {b: v for (r, b), v in cells.items() if r == regimen and v}
    if not mine:
        return None
    mean = {b: statistics.fmean(v.values()) for b, v in mine.items()}
    n = {b: len(v) for b, v in mine.items()}
    line = _line(mean, n, budget, noise)
    if budget in mine:
        out = dict(pred=mean[budget], parts=_mean_part(noise, budget, n[budget]), line=line, measured=True,
                   basis=f"measured at {budget:g} ({n[budget]} seeds)")
        if line is not None:  # how far B fell below the straight line
            out["bend"] = mean[budget] - line["pred"]
            out["bend_parts"] = _add(line["parts"], out["parts"])
        return out
    top = max(mine)  # accuracy does not fall as the budget grows: the highest rung is a floor
    floor = dict(at=top, mean=mean[top], parts=_mean_part(noise, top, n[top]))
    if line is not None:
        return dict(pred=line["pred"], parts=line["parts"], basis=line["basis"], line=line, measured=False,
                    floor=floor)
    return dict(pred=None, parts=None, basis=None, line=None, measured=False, one=(top, mean[top], n[top]),
                floor=floor)


def _pooled_slope(out: dict[str, dict], budget: float, noise) -> None:
    """A regimen with one rung only (the budget ran out within B/3): that rung plus the mean slope
    of the regimens with a line, the slopes' spread as added variance."""
    slopes = [p["line"]["slope"] for p in out.values() if p["line"] is not None]
    if len(slopes) < 2:
        return  # no pooled slope yet: no prediction
    s, s_var = statistics.fmean(slopes), statistics.variance(slopes)
    for p in out.values():
        if p.get("one") is None:
            continue
        b1, m1, n1 = p["one"]
        spread = {("slopes",): (s_var * math.log(budget / b1) ** 2, len(slopes) - 1)}
        p.update(pred=m1 + s * math.log(budget / b1), pooled=True, parts=_add(_mean_part(noise, b1, n1), spread),
                 basis=f"{b1:g} ({n1} seeds) with the pooled slope of {len(slopes)} regimens")


def _rank(out: dict[str, dict], budget: float) -> None:
    """``rank``: what decides which regimens run at B first. A slope through two rungs with 2-3
    seeds each is mostly seed noise at B/9, and a straight line amplifies it; so for the ranking
    (only) each slope is shrunk towards the mean slope by the empirical-Bayes factor
    tau^2 / (tau^2 + v), v its own noise variance, tau^2 the slopes' spread beyond their noise
    (James-Stein). A regimen whose slope stands out beyond the noise (a late winner) keeps it.
    Measured regimens rank by their mean at B; the others without a line by ``pred``."""
    lines = [p["line"] for p in out.values() if p["line"] is not None and p["line"]["slope_var"] is not None]
    tau2 = None
    if len(lines) >= 3:
        slopes = [x["slope"] for x in lines]
        sbar = statistics.fmean(slopes)
        tau2 = max(0.0, statistics.variance(slopes) - statistics.fmean(x["slope_var"] for x in lines))
    for p in out.values():
        x = p["line"]
        if p["measured"] or x is None or x["slope_var"] is None or tau2 is None:
            p["rank"] = p["pred"]
            continue
        lam = tau2 / (tau2 + x["slope_var"]) if tau2 + x["slope_var"] > 0 else 0.0
        b2, m2 = x["at"]
        p["rank"] = m2 + (sbar + lam * (x["slope"] - sbar)) * math.log(budget / b2)


def _bend(out: dict[str, dict]) -> bool:
    """Accuracy flattens as the budget grows, so a straight line in log budget overshoots at B.
    Each regimen measured at B and at two lower rungs shows by how much (its bend: measured minus
    its line); the predictions of the others get the mean bend, and as added variance the bends'
    spread (x (1 + 1/m), m - 1 degrees of freedom) or, with one bend, twice its noise. Returns
    whether there was a bend to apply."""
    bends = [(p["bend"], p["bend_parts"]) for p in out.values() if p.get("bend") is not None]
    if not bends:
        return False
    shift = statistics.fmean(b for b, _ in bends)
    if len(bends) >= 2:
        extra = {("bends",): (statistics.variance([b for b, _ in bends]) * (1 + 1 / len(bends)), len(bends) - 1)}
    else:
        extra = None if bends[0][1] is None else {k: (2 * v, df) for k, (v, df) in bends[0][1].items()}
    for p in out.values():
        if p["pred"] is not None and not p["measured"]:
            p["pred"] += shift
            p["rank"] = None if p["rank"] is None else p["rank"] + shift
            p["parts"] = _add(p["parts"], extra)
            p["basis"] += f", bent by {shift * 100:+.1f} points as {len(bends)} regimen(s) measured at B"
    return True


def predict_all(cells, regimens: list[str], budget: float) -> tuple[dict[str, dict], float]:
    """Predictions at ``budget`` for every regimen that has one: ``pred``, ``rank``, ``measured``,
    ``var`` and its degrees of freedom ``df``, the 95% interval ``lo``/``hi`` (None without a
    noise estimate), ``basis``, ``parts``; and the degrees of freedom of the seed noise at B."""
    noise = rung_noise(cells)
    out = {r: p for r in regimens if (p := predict(cells, r, budget, noise)) is not None}
    _pooled_slope(out, budget, noise)
    _rank(out, budget)
    bent = _bend(out)
    clip = lambda x: min(1.0, max(0.0, x))  # noqa: E731  (an accuracy lies in [0, 1])
    for p in out.values():
        if p["pred"] is None:
            continue
        p["var"], p["df"] = combine(p["parts"])
        ok = p["var"] is not None and p["df"] > 0
        half = stats.t.ppf(0.975, p["df"]) * math.sqrt(p["var"]) if ok else None
        p["lo"] = clip(p["pred"] - half) if ok else None
        p["hi"] = clip(p["pred"] + half) if ok else None
        if ok and not p["measured"] and not bent:
            # No regimen measured at B yet, so nothing says how far the straight line overshoots
            # (3 to 27 points on the replayed grids): the interval runs from the regimen's highest
            # rung (accuracy does not fall as the budget grows) to the line (it flattens).
            fv, fdf = combine(p["floor"]["parts"])
            p["lo"] = clip(p["floor"]["mean"] - stats.t.ppf(0.975, fdf) * math.sqrt(fv)) if fdf > 0 else None
            p["basis"] += "; no regimen measured at B yet: interval from its highest rung to the line"
        p["pred"] = clip(p["pred"])
    return {r: p for r, p in out.items() if p["pred"] is not None}, noise_at(noise, budget)[1]


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


# ---------------------------------------------------------------- the rule, step by step


@dataclass
class _State:
    """What one advise call knows so far: its inputs, the finished trials (``cells``: validation
    accuracy by (regimen, budget) and seed), each regimen's status, the compute spent."""
    regimens: list[str]
    budget: float
    rungs: list[float]
    seeds: list[int]
    control: str | None
    delta: float
    min_seeds: int
    advice_budget: float
    run: Runner
    estimate: Estimate
    known: Callable[[Request], float | None]
    echo: Callable[[str], None]
    spent: float
    cells: dict = field(default_factory=dict)
    tests: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    ratio: dict = field(default_factory=lambda: {None: [0.0, 0.0]})  # regimen -> [estimated, actual]
    log: list = field(default_factory=list)
    preds: dict = field(default_factory=dict)

    def say(self, msg: str) -> None:
        self.log.append(msg)
        self.echo(msg)

    def alive(self) -> list[str]:
        return [r for r in self.regimens if self.status[r]["status"] == "kept"]

    def seeds_at(self, regimen: str, b: float) -> int:
        return len(self.cells.get((regimen, b), {}))


def fresh_cost(st: _State, regimen: str, budget: float) -> float:
    """The expected cost of a trial not run yet: ``estimate`` scaled by actual / estimated cost of
    the trials run so far (the regimen's, else all), so a calibration that is off (a sampler whose
    steps get dearer after priming) does not make advise misjudge its budget."""
    est, act = st.ratio.get(regimen, st.ratio[None])
    return st.estimate(regimen, budget) * (act / est if est > 0 and act > 0 else 1.0)


def cost_of(st: _State, q: Request) -> float:
    """The expected cost of a request: ``fresh_cost``; for a stored trial (``known``) what it
    recorded, but never more than ``fresh_cost``: a store never makes advise stop earlier than it
    would have without it, and a rerun takes the same decisions."""
    stored = st.known(q)
    fresh = fresh_cost(st, q.regimen, q.budget)
    return fresh if stored is None else min(stored, fresh)


def grid_scale(st: _State) -> float:
    """How far the trials run so far say the exhaustive grid's estimate was off: the grid at B
    costed with ``fresh_cost`` over costed with ``estimate``. The advice budget, a share of that
    grid, is rescaled by it: an underestimating calibration would otherwise leave advise a
    smaller share of the real grid than it was given, an overestimating one a larger."""
    first = sum(st.estimate(r, st.budget) for r in st.regimens)
    return sum(fresh_cost(st, r, st.budget) for r in st.regimens) / first if first > 0 else 1.0


def record(st: _State, q: Request, o: Outcome) -> None:
    """Book one finished trial: its cost, its accuracy, or its regimen's failure."""
    st.spent += o.cost
    for key in (None, q.regimen):
        pair = st.ratio.setdefault(key, [0.0, 0.0])
        pair[0] += st.estimate(q.regimen, q.budget)
        pair[1] += o.cost
    if o.val_acc is None:
        if st.status[q.regimen]["status"] == "kept":
            err = (o.error or "no error recorded").splitlines()[0][:200]
            st.status[q.regimen] = dict(status="failed", dropped_at=q.budget,
                                        reason=f"trial (budget {q.budget:g}, seed {q.seed}) failed: {err}")
            st.say(f"{q.regimen}: dropped, {st.status[q.regimen]['reason']}")
        return
    st.cells.setdefault((q.regimen, q.budget), {})[q.seed] = o.val_acc
    if o.test_acc is not None:
        st.tests.setdefault((q.regimen, q.budget), {})[q.seed] = o.test_acc


def submit(st: _State, plan: list[list[Request]]) -> int:
    """Run whole groups of requests (one regimen's seeds at a budget), in order, while their
    expected cost fits in the advice budget; return how many groups ran (or were already done)."""
    reqs, est, groups = [], 0.0, 0
    for group in plan:
        todo = [q for q in group if q.seed not in st.cells.get((q.regimen, q.budget), {})]
        cost = sum(cost_of(st, q) for q in todo)
        if st.spent + est + cost > st.advice_budget * grid_scale(st):
            break
        reqs += todo
        est += cost
        groups += 1
    if reqs:
        got = st.run(reqs)
        for q in reqs:
            record(st, q, got[q])
    st.preds, _ = predict_all(st.cells, st.regimens, st.budget)
    return groups


def order(st: _State) -> list[str]:
    """Alive regimens, best ``rank`` first (the config's order before there are predictions): the
    budget goes where the decision is. The control is kept, not run first."""
    p = st.preds
    return sorted(st.alive(), key=lambda r: (-p[r]["rank"] if r in p else math.inf, st.regimens.index(r)))


def eliminate(st: _State, rung: float) -> None:
    """Drop a regimen whose upper bound + δ is below the best lower bound. Only predictions from a
    regimen's own runs drop or get dropped (not pooled-slope guesses); the control stays."""
    p = st.preds
    ranked = [r for r in st.alive() if r in p and p[r]["lo"] is not None and not p[r].get("pooled")]
    if len(ranked) < 2:
        return
    best = max(ranked, key=lambda r: p[r]["lo"])
    floor = p[best]["lo"]
    for r in ranked:
        if r != st.control and r != best and p[r]["hi"] + st.delta < floor:
            st.status[r] = dict(status="dropped", dropped_at=rung, reason=(
                f"after the {rung:g} rung: upper bound {p[r]['hi'] * 100:.1f}% + δ {st.delta * 100:g} "
                f"points is below {best}'s lower bound {floor * 100:.1f}%"))
            st.say(f"{r}: dropped {st.status[r]['reason']}")


def settled(st: _State) -> str | None:
    """Why more seeds would not change the answer, or None: one regimen left; or every survivor
    measured at B on ``min_seeds`` seeds, each other one within δ of the leader or clearly behind
    it (upper bound + δ below the leader's lower bound: only the control survives that way)."""
    live, p = st.alive(), st.preds
    if len(live) <= 1:
        return "one regimen left"
    if not all(r in p and p[r]["measured"] and st.seeds_at(r, st.budget) >= st.min_seeds for r in live):
        return None
    lead = max(live, key=lambda r: p[r]["pred"])
    lo = p[lead]["lo"]
    for r in live:
        near = p[lead]["pred"] - p[r]["pred"] <= st.delta
        behind = lo is not None and p[r]["hi"] is not None and p[r]["hi"] + st.delta < lo
        if r != lead and not (near or behind):
            return None
    return (f"settled at B: every other survivor lies within δ = {st.delta * 100:g} points of {lead} or is "
            "clearly behind it")


def lower_rungs(st: _State) -> str | None:
    """Every candidate at B/9, then every survivor at B/3, ``min_seeds`` seeds each; elimination
    from B/3 on. Returns why advise stopped, or None."""
    for i, b in enumerate(st.rungs[:-1]):
        plan = [[Request(r, b, s) for s in st.seeds[:st.min_seeds]] for r in order(st)]
        ran = submit(st, plan)
        st.say(f"rung {b:g}: {ran} of {len(plan)} regimens x {st.min_seeds} seeds; spent {st.spent:.1f} of "
               f"{st.advice_budget * grid_scale(st):.1f}")
        if i >= 1:
            eliminate(st, b)
        if ran < len(plan):
            return "the advice budget ran out"
        if len(st.alive()) <= 1:
            return "one regimen left"
    return None


def at_b(st: _State) -> str:
    """The survivors at B, best ``rank`` first, ``min_seeds`` seeds each as far as the budget goes;
    then one more seed per survivor per round until the answer is settled, the seeds are used up
    or the budget is spent. Returns why advise stopped."""
    B = st.budget
    plan = [[Request(r, B, s) for s in st.seeds[:st.min_seeds]] for r in order(st)]
    ran = submit(st, plan)
    st.say(f"rung {B:g}: {ran} of {len(plan)} regimens x {st.min_seeds} seeds; spent {st.spent:.1f} of "
           f"{st.advice_budget * grid_scale(st):.1f}")
    eliminate(st, B)
    if ran < len(plan):
        return "the advice budget ran out"
    for k in range(st.min_seeds, len(st.seeds)):
        why = settled(st)
        if why:
            return why
        plan = [[Request(r, B, st.seeds[k])] for r in order(st)]
        ran = submit(st, plan)
        st.say(f"seed {st.seeds[k]} at {B:g}: {ran} of {len(plan)} regimens; spent {st.spent:.1f}")
        eliminate(st, B)
        if ran < len(plan):
            return "the advice budget ran out"
    return settled(st) or "the config's seeds are used up"


def answer(st: _State) -> tuple[str | None, list[str], list[str]]:
    """The pick, the survivors tied with it, and those not run at B. The pick is the survivor with
    the highest mean validation accuracy at B (an extrapolation only when no survivor reached B;
    a pooled-slope guess only when nothing else is left). Tied: run at B as well, and within δ of
    the pick or with a 95% interval of the difference that includes 0. A survivor that was not
    run at B is not called tied with a pick that was: its extrapolation is reported beside it."""
    p, live = st.preds, [r for r in st.alive() if r in st.preds]
    own = ([r for r in live if p[r]["measured"]] or [r for r in live if not p[r].get("pooled")] or live)
    pick = max(own, key=lambda r: (p[r]["pred"], -st.regimens.index(r))) if own else None
    if pick is None:
        return (st.alive()[0] if len(st.alive()) == 1 else None), [], []
    tied, open_ = [], []
    for r in live:
        if r == pick:
            continue
        if p[pick]["measured"] and not p[r]["measured"]:
            open_.append(r)
            continue
        d = p[pick]["pred"] - p[r]["pred"]
        var, df = combine(_add(p[pick]["parts"], p[r]["parts"]))
        if d <= st.delta or var is None or df <= 0 or d - stats.t.ppf(0.975, df) * math.sqrt(var) <= 0:
            tied.append(r)
    return pick, tied, open_


def advise(regimens: list[str], budget: float, seeds: list[int], run: Runner, estimate: Estimate,
           advice_budget: float, control: str | None = None, delta: float = DELTA,
           min_seeds: int = MIN_SEEDS, spent: float = 0.0, grid_cost: float | None = None,
           echo: Callable[[str], None] = lambda s: None,
           known: Callable[[Request], float | None] = lambda q: None) -> dict:
    """Run the rule (module docstring) and return the advice as a JSON-serialisable dict:
    ``pick``, ``tied``, ``not_at_b`` (survivors not run at B: their extrapolation could not be
    compared with the pick), ``p_best``, ``regimens`` (per regimen: ``status`` kept/dropped/failed,
    ``reason``, ``pred``/``lo``/``hi``/``basis`` at B, ``trials`` by budget, ``val_acc``/
    ``test_acc`` at B when measured), ``spent``, ``advice_budget``, ``grid_cost``, ``stopped`` (why
    it stopped) and ``log``. ``spent``: compute already spent (a calibration). ``known(request)``:
    the recorded cost of a stored trial, None for one not run yet."""
    if len(regimens) != len(set(regimens)) or not regimens:
        raise ValueError("regimens must be distinct and at least one")
    rungs = rung_budgets(budget)
    st = _State(regimens=list(regimens), budget=rungs[-1], rungs=rungs, seeds=list(seeds), control=control,
                delta=delta, min_seeds=max(1, min(min_seeds, len(seeds))), advice_budget=advice_budget,
                run=run, estimate=estimate, known=known, echo=echo, spent=spent,
                status={r: dict(status="kept", reason=None, dropped_at=None) for r in regimens})
    stopped = lower_rungs(st) or at_b(st)
    if len(st.alive()) == 1 and not st.cells.get((st.alive()[0], st.budget)):  # the answer's accuracy at B
        submit(st, [[Request(st.alive()[0], st.budget, s) for s in st.seeds[:st.min_seeds]]])
    pick, tied, open_ = answer(st)
    scale = grid_scale(st)
    out_regs = {}
    for r in regimens:
        p = st.preds.get(r, {})
        at = st.cells.get((r, st.budget), {})
        tests = st.tests.get((r, st.budget), {})
        out_regs[r] = dict(
            st.status[r], pred=p.get("pred"), lo=p.get("lo"), hi=p.get("hi"), basis=p.get("basis"),
            trials={f"{b:g}": sorted(st.cells.get((r, b), {})) for b in rungs if st.cells.get((r, b))},
            val_acc=statistics.fmean(at.values()) if at else None,
            test_acc=statistics.fmean(tests.values()) if tests else None)
    return dict(budget=st.budget, rungs=rungs, pick=pick, tied=tied, not_at_b=open_, control=control, delta=delta,
                unpredicted=[r for r in st.alive() if r not in st.preds and r != pick],
                min_seeds=st.min_seeds, p_best=p_best(st.preds, pick) if pick else None, regimens=out_regs,
                spent=st.spent, advice_budget=advice_budget * scale, grid_cost=grid_cost and grid_cost * scale,
                budget_scale=scale, stopped=stopped, log=st.log)


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
        what = "" if a.get("metric", "accuracy") == "accuracy" else "mean recall "  # retrieval: R-sum / 6
        at_b = (f"validation {what}{_pct(p['val_acc'])}, test {_pct(p['test_acc'])} at B" if p["val_acc"] is not None
                else f"predicted validation {what}{_pct(p['pred'])} at B ({p['basis']}; not run at B)")
        conf = f"probability it is the best: {a['p_best']:.0%}" if a["p_best"] is not None else \
            "no probability of being best can be given: too few predicted regimens or seeds to estimate the noise"
        lines = [bold(f"At budget {B:g}, use {esc(a['pick'])}") + f" ({esc(at_b)}; {conf})."]
        if a["tied"]:
            lines.append(f"Statistically tied with it (difference ≤ δ = {a['delta'] * 100:g} points or an interval "
                         f"that includes 0): {', '.join(map(esc, a['tied']))}.")
        elif len(a["regimens"]) > 1:
            lines.append("No other regimen run at B is tied with it." if a.get("not_at_b")
                         else "No other predicted regimen is tied with it.")
        if a.get("not_at_b"):
            lines.append(f"Not run at B, so not compared with it there (their extrapolations to B are in "
                         f"advise.md): {', '.join(map(esc, a['not_at_b']))}.")
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
                fraction: float = ADVICE_FRACTION, seed: int = 0, method: Callable[..., dict] | None = None) -> dict:
    """Replay advise ``replays`` times over a stored grid at its largest budget B, each time with
    the grid's seeds in another random order, and score it against the exhaustive grid: the
    regret (the grid's best mean validation accuracy at B over all seeds, minus the pick's), the
    compute spent as a fraction of the grid's (every regimen x seed at B, in CPU time), how often
    the grid's best is the pick or tied with it, how often it was ruled out (dropped, or run at B
    and called worse than the pick), and how often advise's final 95% intervals at B contain the
    grid's mean (``coverage``: of regimens measured at B, and of extrapolated ones). Rows need
    ``regimen``, ``budget``, ``seed``, ``val_acc``, ``test_acc``, ``cpu_time`` and ``control``
    (true for the uniform/standard control). ``method(regimens, B, seeds, run, estimate,
    advice_budget, control)`` replaces advise (a baseline): it returns at least ``pick`` and
    ``spent``."""
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
    if method is None:
        def method(regimens, B, order, run, estimate, limit, control):
            return advise(regimens, B, order, run, estimate, limit, control=control, delta=delta,
                          min_seeds=min_seeds, grid_cost=grid)
    regrets, test_regrets, spends, picks, tied_best, ruled_out = [], [], [], {}, 0, 0
    cover: dict[str, list[bool]] = {"measured": [], "extrapolated": []}
    for i in range(replays):
        order = list(seeds)
        random.Random(seed + i).shuffle(order)
        got = method(regimens, B, order, run, estimate, fraction * grid, control)
        pick, tied, regs = got["pick"], got.get("tied", []), got.get("regimens", {})
        picks[pick] = picks.get(pick, 0) + 1
        regrets.append(truth[best] - truth[pick])
        test_regrets.append(max(truth_test.values()) - truth_test[pick])
        spends.append(got["spent"] / grid)
        tied_best += pick == best or best in tied
        mine = regs.get(best, {})
        ruled_out += pick != best and best not in tied and (mine.get("status") in ("dropped", "failed")
                                                             or mine.get("val_acc") is not None)
        for r, a in regs.items():
            if a.get("lo") is not None:
                cover["measured" if a["val_acc"] is not None else "extrapolated"].append(
                    a["lo"] - 1e-9 <= truth[r] <= a["hi"] + 1e-9)
    return dict(replays=replays, regimens=len(regimens), seeds=len(seeds), budget=B, best=best,
                best_val_acc=truth[best], within_delta=sum(r <= delta + 1e-12 for r in regrets) / replays,
                mean_regret=statistics.fmean(regrets), max_regret=max(regrets),
                mean_test_regret=statistics.fmean(test_regrets), mean_spend_fraction=statistics.fmean(spends),
                max_spend_fraction=max(spends), picks=picks, best_in_pick_or_tied=tied_best / replays,
                best_ruled_out=ruled_out / replays, grid_cpu_time=grid,
                coverage={k: (sum(v) / len(v) if v else None, len(v)) for k, v in cover.items()})


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


__all__ = ["advise", "Request", "Outcome", "rung_budgets", "predict_all", "p_best", "replay_runner", "replay_many",
           "read_export", "successive_halving", "advice_summary", "RUNGS", "ADVICE_FRACTION", "MIN_SEEDS"]
