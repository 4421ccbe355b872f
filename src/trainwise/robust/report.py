"""Study-report pieces for robust metrics (Faghri et al., arXiv:2102.08868: robust accuracy next
to clean accuracy): one table column per attack radius, a column of sanity-check warnings, and
a plot of accuracy against ε. All are empty when no trial carries robust metrics, so reports
of studies without a ``robustness:`` section are unchanged.
"""

from __future__ import annotations

import statistics
from typing import Callable

from ..plots import figure_png

PREFIX = "robust_acc@"


def _eps_list(groups: dict) -> list[float]:
    eps = {float(k[len(PREFIX):]) for ms in groups.values() for m in ms for k in m
           if k.startswith(PREFIX) and k != PREFIX + "large"}
    return sorted(eps)


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    m = statistics.fmean(values) * 100
    s = statistics.stdev(values) * 100 if len(values) > 1 else 0.0
    return f"{m:.2f} ± {s:.2f}"


def _warnings(ms: list[dict]) -> str:
    seen: list[str] = []
    for m in ms:
        for w in m.get("robust_warnings") or []:
            if w not in seen:
                seen.append(w)
    if not any("robust_warnings" in m for m in ms):
        return "–"
    return "; ".join(seen) if seen else "none"


def robust_columns(groups: dict) -> list[tuple[str, Callable]]:
    """Extra report columns for the robust metrics present in ``groups`` ((regimen, budget) -> metrics)."""
    eps = _eps_list(groups)
    if not eps:
        return []
    attack = next((m["robust_attack"] for ms in groups.values() for m in ms if "robust_attack" in m), "attack")
    cols: list[tuple[str, Callable]] = [
        ("clean acc % (attacked subset)", lambda ms, g, r: _fmt([m["robust_clean_acc"] for m in ms
                                                                  if "robust_clean_acc" in m]))]
    for e in eps:
        key = f"{PREFIX}{e:g}"
        cols.append((f"{attack} acc % @ε={e:g}", lambda ms, g, r, key=key: _fmt([m[key] for m in ms if key in m])))
    cols.append(("robustness warnings", lambda ms, g, r: _warnings(ms)))
    return cols


def robust_plots(groups: dict) -> dict[str, bytes]:
    """``accuracy_vs_eps``: mean accuracy (± std over seeds) against ε, one line per regimen × budget."""
    eps = _eps_list(groups)
    if not eps:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attack = next((m["robust_attack"] for ms in groups.values() for m in ms if "robust_attack" in m), "attack")
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for (reg, b), ms in groups.items():
        xs, ys, es = [], [], []
        for e, key in [(0.0, "robust_clean_acc")] + [(e, f"{PREFIX}{e:g}") for e in eps]:
            vals = [m[key] * 100 for m in ms if key in m]
            if vals:
                xs.append(e)
                ys.append(statistics.fmean(vals))
                es.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
        if xs:
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=f"{reg} b={b:g}")
    ax.set_xlabel(f"ε ({attack}; 0 = clean)")
    ax.set_ylabel("accuracy on the attacked test subset (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)

    return {"accuracy_vs_eps": figure_png(fig)}
