"""The study report's gradient-variance plot (``train.gradient_variance``; Faghri et al., "A Study of
Gradient Variance in Deep Learning", arXiv:2007.04532, the variance-vs-iteration figures).

One figure, three panels against the optimizer step, one colour per regimen (× budget), each point
the mean over seeds: the variance of the regimen's own mini-batch gradient (solid) with uniform
sampling at B (dashed) and at 2B (dotted) measured at the same weights; the normalised variance,
same lines; and the ratio of the regimen's variance to uniform-at-B's (solid) and of 2B's to B's
(dotted): below 1, the sampler's gradient is less noisy than uniform SGD's at the same weights.
Empty when no trial carries measurements, so other reports are unchanged.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from ..plots import figure_png

KEY = "gradient_variance"  # the result row's list of measurements (meter.py records)


def series(ms: list[dict]) -> dict[int, dict[str, float]]:
    """step -> mean over the seeds' measurements of each quantity."""
    by_step: dict[int, list[dict]] = defaultdict(list)
    for m in ms:
        for rec in m.get(KEY) or []:
            by_step[rec["step"]].append(rec)
    keys = ("var", "nvar", "var_uniform", "nvar_uniform", "var_uniform_2b", "nvar_uniform_2b")
    return {s: {k: statistics.fmean(r[k] for r in recs) for k in keys} for s, recs in sorted(by_step.items())}


def variance_plots(groups: dict) -> dict[str, bytes]:
    """``{"gradient_variance": png}`` for ``groups`` ((regimen, budget) -> result rows), or ``{}``."""
    lines = {g: series(ms) for g, ms in groups.items()}
    lines = {g: s for g, s in lines.items() if s}
    if not lines:
        return {}
    import matplotlib.pyplot as plt

    budgets = {b for _, b in lines}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=110)
    for n, ((reg, b), s) in enumerate(sorted(lines.items())):
        colour = f"C{n % 10}"
        label = reg if len(budgets) == 1 else f"{reg} b={b:g}"
        steps = list(s)
        for ax, q in ((axes[0], "var"), (axes[1], "nvar")):
            ax.plot(steps, [s[t][q] for t in steps], color=colour, lw=1.6, label=label)
            ax.plot(steps, [s[t][f"{q}_uniform"] for t in steps], color=colour, lw=0.9, ls="--")
            ax.plot(steps, [s[t][f"{q}_uniform_2b"] for t in steps], color=colour, lw=0.9, ls=":")
        axes[2].plot(steps, [s[t]["var"] / s[t]["var_uniform"] for t in steps], color=colour, lw=1.6, label=label)
        axes[2].plot(steps, [s[t]["var_uniform_2b"] / s[t]["var_uniform"] for t in steps], color=colour, lw=0.9,
                     ls=":")
    axes[0].set_yscale("log")
    axes[0].set_title("variance: sampler (solid), uniform B (dashed), 2B (dotted)", fontsize=9)
    axes[1].set_title("normalised variance (same lines)", fontsize=9)
    axes[2].axhline(1.0, color="black", lw=0.7)
    axes[2].set_title("sampler / uniform B (solid); uniform 2B / B (dotted)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return {"gradient_variance": figure_png(fig)}
