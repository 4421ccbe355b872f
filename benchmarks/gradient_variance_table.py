"""The tables of docs/results/gradient_clustering.md from studies that ran the gradient-variance meter
(``train.gradient_variance``): per regimen, the variance of its mini-batch gradient relative to uniform
sampling at B (and uniform at 2B relative to B), measured at the same weights, by phase of training.

Per trial, the geometric mean over the measurements of a phase of var_sampler / var_uniform(B); per regimen,
the mean over seeds with a 95% t interval (seeds > 1), else the range over the phase's measurements.

    python benchmarks/gradient_variance_table.py studies/gradient_clustering [more study dirs]
"""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

from scipy import stats

from trainwise.study.store import Store


PHASES = ("epoch 0", "epochs 1-2", "epochs 3-4")


def phases(total: int, epochs: int) -> list[tuple[int, int]]:
    """Step ranges of the three phases (epochs of equal length; GC's epoch 0 is uniform's)."""
    spe = total // epochs
    return [(1, spe), (spe + 1, 3 * spe), (3 * spe + 1, total)]


def gmean(xs: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(x) for x in xs))


def summary(values: list[float], spread: list[float]) -> str:
    if len(values) > 1:
        m, s = statistics.fmean(values), statistics.stdev(values)
        half = stats.t.ppf(0.975, len(values) - 1) * s / math.sqrt(len(values))
        return f"{m:.2f} [{m - half:.2f}, {m + half:.2f}]"
    return f"{values[0]:.2f} ({min(spread):.2f}–{max(spread):.2f})"


def main() -> None:
    for study in sys.argv[1:]:
        rows = [r for r in Store.open_existing(Path(study) / "results.db").rows() if r["status"] == "done"]
        print(f"\n{study}:\n")
        print("| regimen | seeds | " + " | ".join(PHASES) + " | uniform 2B / B (all) |")
        print("|---|---|---|---|---|---|")
        for reg in sorted({r["regimen"] for r in rows}):
            ms = [r["metrics"] for r in rows if r["regimen"] == reg and r["metrics"].get("gradient_variance")]
            if not ms:
                continue
            cells = []
            for lo, hi in phases(ms[0]["steps"], ms[0]["epochs"]):
                per_seed, spread = [], []
                for m in ms:
                    rs = [g["var"] / g["var_uniform"] for g in m["gradient_variance"] if lo <= g["step"] <= hi]
                    per_seed.append(gmean(rs))
                    spread += rs
                cells.append(summary(per_seed, spread))
            two = [gmean([g["var_uniform_2b"] / g["var_uniform"] for g in m["gradient_variance"]]) for m in ms]
            print(f"| {reg} | {len(ms)} | " + " | ".join(cells) + f" | {statistics.fmean(two):.2f} |")


if __name__ == "__main__":
    main()
