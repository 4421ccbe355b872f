"""The verdict: which regimen to use at each budget, chosen on validation data only.

It ranks by the task's metric (``trainwise/tasks.py``): accuracy for classification, R-sum for
retrieval; below, "accuracy" stands for that metric (``val_<metric>`` / ``test_<metric>``).

``verdict(rows, delta)`` returns one dict per budget (ascending). The rule, in full:

* **Pick.** Among done trials that recorded ``val_acc`` (the study ran with
  ``dataset.val_fraction > 0``), the recommended regimen is the one with the highest mean
  validation accuracy over its seeds; equal means go to the alphabetically first name. Test
  accuracy never takes part in the choice; it is reported for the pick only, as the honest
  estimate of how the pick does on unseen data.
* **Comparison.** For every other regimen: the seed-paired difference ``pick - other`` in
  validation accuracy over the seeds both ran (``trainwise.stats.paired``), with a 95% Student t
  interval ``[lo, hi]``.
* **Tied or better.** The pick is *better* than a regimen when the whole interval lies above 0
  (``lo > 0``, a paired t test at 5% finds a difference) *and* the mean difference exceeds
  ``delta`` (default 0.005, i.e. 0.5 accuracy points: a difference that small is not worth a
  choice). Otherwise the two are *statistically tied*: the interval includes 0 (or lies below it,
  which can happen only when the two regimens ran different seeds) or the mean difference is at
  most ``delta``.
* **One seed.** With a single shared seed there is no interval: outcome ``"one seed"`` and the
  message ``ONE_SEED``. With no shared seed: outcome ``"no shared seeds"``.
* **No validation split.** When no done trial at a budget has ``val_acc`` there is no verdict
  (``pick`` is None) and ``message`` is ``NO_VAL``: a verdict would have to use the test set.

Costs: mean process CPU time per trial (``cpu_time``; wall time when a trial at that budget
lacks it, named in ``cost_basis``) and mean optimizer steps, for the pick and each other regimen.
Accuracies and differences are fractions (0.841), as stored; ``sentence`` prints points.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Callable

from ..stats import paired
from ..tasks import METRIC, METRICS

NO_VAL = ("no validation split (set dataset.val_fraction) — a verdict would have to use the test "
          "set, which trainwise never does")
ONE_SEED = "one seed: no confidence can be given"
DELTA = 0.005  # 0.5 accuracy points: smaller mean differences are ties whatever the interval


def _mean(xs) -> float | None:
    xs = list(xs)
    return statistics.fmean(xs) if xs else None


def metric_of(rows: list[dict]) -> str:
    """The metric a study's rows are ranked by: its trials' task's (``acc`` when none says)."""
    tasks = {(r.get("config") or {}).get("task", "classification") for r in rows}
    return METRIC[tasks.pop()] if len(tasks) == 1 else "acc"


def verdict(rows: list[dict], delta: float | None = None, metric: str = "acc") -> list[dict]:
    """One dict per budget: ``budget``, ``pick`` (regimen or None), ``val``, ``test`` (the pick's
    mean validation and test ``metric``), ``metric``,
    ``seeds``, ``cpu_time``, ``steps``, ``cost_basis`` ("cpu_time" or "wall_time"), ``delta``,
    ``message`` (None, ``NO_VAL`` or ``ONE_SEED``) and ``comparisons``: per other regimen (best
    validation first) ``regimen``, ``val``, ``n`` (shared seeds), ``mean``, ``lo``, ``hi``
    (pick - other; lo/hi None below two seeds), ``outcome`` ("better", "tied", "one seed",
    "no shared seeds"), ``cpu_time``, ``steps``. See the module docstring for the rule. ``delta``:
    default the metric's (0.005 of accuracy, 3 points of R-sum)."""
    delta = METRICS[metric].delta if delta is None else delta
    vk, tk = f"val_{metric}", f"test_{metric}"
    by_budget: dict[float, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("status") == "done" and r.get("metrics"):
            by_budget[r["budget"]].append(r)
    out = []
    for budget in sorted(by_budget):
        done = by_budget[budget]
        basis = "cpu_time" if all(r["metrics"].get("cpu_time") is not None for r in done) else "wall_time"
        per_reg: dict[str, dict[int, dict]] = defaultdict(dict)  # regimen -> seed -> metrics
        for r in done:
            if r["metrics"].get(vk) is not None:
                per_reg[r["regimen"]][r["seed"]] = r["metrics"]
        v = dict(budget=budget, pick=None, val=None, test=None, metric=metric, seeds=0, cpu_time=None,
                 steps=None, cost_basis=basis, delta=delta, message=None, comparisons=[])
        out.append(v)
        if not per_reg:
            v["message"] = NO_VAL
            continue
        val = {reg: statistics.fmean(m[vk] for m in ms.values()) for reg, ms in per_reg.items()}
        order = sorted(val, key=lambda reg: (-val[reg], reg))
        pick = order[0]
        pm = per_reg[pick]

        def cost(ms: dict[int, dict]) -> tuple[float | None, float | None]:
            return (_mean(m[basis] for m in ms.values() if m.get(basis) is not None),
                    _mean(m["steps"] for m in ms.values() if m.get("steps") is not None))

        v.update(pick=pick, val=val[pick], seeds=len(pm),
                 test=_mean(m[tk] for m in pm.values() if m.get(tk) is not None))
        v["cpu_time"], v["steps"] = cost(pm)
        for reg in order[1:]:
            om = per_reg[reg]
            shared = sorted(set(pm) & set(om))
            c = dict(regimen=reg, val=val[reg], n=len(shared), mean=None, lo=None, hi=None)
            c["cpu_time"], c["steps"] = cost(om)
            if not shared:
                c["outcome"] = "no shared seeds"
            else:
                p = paired([pm[s][vk] for s in shared], [om[s][vk] for s in shared])
                c.update(mean=p["mean"], lo=p["lo"], hi=p["hi"])
                if p["lo"] is None:
                    c["outcome"] = "one seed"
                else:
                    c["outcome"] = "better" if p["lo"] > 0 and p["mean"] > delta else "tied"
            v["comparisons"].append(c)
        if len(pm) < 2 or any(c["outcome"] == "one seed" for c in v["comparisons"]):
            v["message"] = ONE_SEED
    return out


def _pts(x: float, sign: bool = True, scale: float = 100.0) -> str:
    s = f"{x * scale:+.1f}" if sign else f"{x * scale:.1f}"
    return s.replace("-", "−")


def _cost(c: dict, basis: str) -> str:
    parts = []
    if c.get("cpu_time") is not None:
        parts.append(f"{c['cpu_time']:.1f} s {'CPU' if basis == 'cpu_time' else 'wall'}")
    if c.get("steps") is not None:
        parts.append(f"{c['steps']:.0f} steps")
    return "cost " + ", ".join(parts) if parts else ""  # mean per trial


def sentence(v: dict, esc: Callable[[str], str] = str, bold: Callable[[str], str] = lambda s: f"**{s}**") -> str:
    """One sentence for a budget's verdict, e.g. "At budget 0.3: **mixup** (validation 84.1%,
    test 83.7%; 3 seeds; cost 12.0 s CPU, 400 steps); tied with uniform (+0.2 points [−0.5, +0.9];
    cost 10.1 s CPU, 400 steps); better than cutmix by 1.3 points [0.4, 2.2] (cost ...). Costs are
    means per trial." ``esc`` escapes
    user strings (regimen names; html.escape for HTML), ``bold`` marks the pick."""
    head = f"At budget {v['budget']:g}: "
    if v["pick"] is None:
        return head + f"no verdict — {v['message']}."
    m = METRICS[v.get("metric", "acc")]
    label = "" if m.key == "acc" else f"{m.label} "  # accuracy reads "validation 84.1%"

    def pts(x: float, sign: bool = True) -> str:
        return _pts(x, sign, m.scale)

    test = f", test {label}{v['test'] * m.scale:.1f}{m.unit}" if v["test"] is not None else ""
    seeds = f"{v['seeds']} seed{'s' if v['seeds'] != 1 else ''}"
    cost = _cost(v, v["cost_basis"])
    s = head + f"{bold(esc(v['pick']))} (validation {label}{v['val'] * m.scale:.1f}{m.unit}{test}; {seeds}" \
        + (f"; {cost}" if cost else "") + ")"
    if not v["comparisons"]:
        s += f"; the only regimen with validation {'accuracy' if m.key == 'acc' else m.label} at this budget"
    for c in v["comparisons"]:
        name, cc = esc(c["regimen"]), _cost(c, v["cost_basis"])
        tail = f"; {cc}" if cc else ""
        if c["outcome"] == "no shared seeds":
            s += f"; not compared with {name} (no shared seeds{tail})"
        elif c["outcome"] == "one seed":
            s += f"; vs {name} {pts(c['mean'])} points on one seed" + (f" ({cc})" if cc else "")
        elif c["outcome"] == "tied":
            s += (f"; tied with {name} ({pts(c['mean'])} points [{pts(c['lo'])}, {pts(c['hi'])}]"
                  f"{tail})")
        else:
            s += (f"; better than {name} by {pts(c['mean'], False)} points "
                  f"[{pts(c['lo'], False)}, {pts(c['hi'], False)}]" + (f" ({cc})" if cc else ""))
    if v["message"] == ONE_SEED:
        s += f"; {ONE_SEED}"
    return s + "."


RULE = ("The pick is the regimen with the highest mean validation {what}; test {what} is given "
        "for the pick only, as the honest estimate. Differences are pick − other in validation "
        "{what} points, paired by seed, with 95% t intervals; \"tied\": the interval includes 0 or "
        "the mean difference is at most {delta:g} points.")


__all__ = ["verdict", "metric_of", "sentence", "NO_VAL", "ONE_SEED", "RULE", "DELTA"]
