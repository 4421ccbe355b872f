"""The tables of docs/results/vsepp_halves.md from a retrieval study's results.

Per regimen: mean and 95% Student t interval over seeds of test R@1/5/10 in both directions, test
and validation R-sum, the training R-sum (under-/overfitting), mean CPU time, and how many trials
collapsed. Then, seed-paired, each regimen minus the baseline (default ``sum-of-hinges``) in test
R@1 both ways and in validation and test R-sum.

    python benchmarks/retrieval_table.py STUDY_DIR [--baseline sum-of-hinges]
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics
from pathlib import Path

from scipy import stats

from trainwise.stats import paired

COLS = ["test_r1_ab", "test_r5_ab", "test_r10_ab", "test_r1_ba", "test_r5_ba", "test_r10_ba", "test_rsum",
        "val_rsum", "train_rsum"]


def ci(xs: list[float]) -> str:
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return f"{m:.2f}"
    half = stats.t.ppf(0.975, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return f"{m:.2f} ± {half:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--baseline", default="sum-of-hinges")
    args = ap.parse_args()
    db = sqlite3.connect(f"file:{args.study / 'results.db'}?mode=ro", uri=True)
    runs: dict[str, dict[int, dict]] = {}
    for reg, seed, metrics in db.execute("SELECT regimen, seed, metrics FROM trials WHERE status = 'done'"):
        runs.setdefault(reg, {})[seed] = json.loads(metrics)
    print("| regimen | seeds | " + " | ".join(COLS) + " | CPU s | collapsed |")
    print("|---" * (len(COLS) + 4) + "|")
    for reg, by_seed in runs.items():
        ms = list(by_seed.values())
        cells = [ci([m[c] for m in ms]) for c in COLS]
        cpu = statistics.fmean(m["cpu_time"] for m in ms)
        print(f"| {reg} | {len(ms)} | " + " | ".join(cells) + f" | {cpu:.0f} | "
              f"{sum(m['collapsed'] for m in ms)}/{len(ms)} |")
    base = runs.get(args.baseline)
    if base is None:
        return
    print(f"\nseed-paired differences, regimen − {args.baseline} (mean [95% t interval]):\n")
    keys = ["test_r1_ab", "test_r1_ba", "test_rsum", "val_rsum"]
    print("| regimen | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for reg, by_seed in runs.items():
        if reg == args.baseline:
            continue
        seeds = sorted(set(by_seed) & set(base))
        row = []
        for k in keys:
            p = paired([by_seed[s][k] for s in seeds], [base[s][k] for s in seeds])
            row.append(f"{p['mean']:+.2f} [{p['lo']:+.2f}, {p['hi']:+.2f}]" if p["lo"] is not None
                       else f"{p['mean']:+.2f}")
        print(f"| {reg} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
