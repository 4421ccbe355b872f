"""Paired comparisons over seeds: runs with the same seed share data order, initialisation and
(in multi-split training) the K splits, so two procedures are compared seed by seed.

``paired(xs, ys)``: the per-seed differences ``x - y``, their mean, standard deviation and a
95% Student t interval (scipy.stats.t). ``detectable(sd, n)``: the smallest true mean
difference a two-sided paired t test at 5% finds with 80% power, given ``n`` seeds and a
seed-to-seed standard deviation ``sd`` of the differences (noncentral t).
"""

from __future__ import annotations

import math
import statistics as st

from scipy import optimize, stats


def paired(xs: list[float], ys: list[float], level: float = 0.95) -> dict:
    diffs = [x - y for x, y in zip(xs, ys, strict=True)]
    n, mean = len(diffs), st.mean(diffs)
    if n < 2:
        return dict(n=n, diffs=diffs, mean=mean, sd=None, lo=None, hi=None)
    sd = st.stdev(diffs)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return dict(n=n, diffs=diffs, mean=mean, sd=sd, lo=mean - half, hi=mean + half)


def detectable(sd: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    if n < 2 or sd == 0:
        return 0.0 if sd == 0 else math.inf
    crit = stats.t.ppf(1 - alpha / 2, n - 1)

    def gap(nc):  # power at noncentrality nc = d * sqrt(n) / sd (the opposite tail is negligible), minus target
        return stats.nct.sf(crit, n - 1, nc) - power

    return optimize.brentq(gap, 0.0, 30.0) * sd / math.sqrt(n)


__all__ = ["paired", "detectable"]
