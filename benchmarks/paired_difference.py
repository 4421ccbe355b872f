"""Paired differences between two cells of a study, over the seeds they share.

Trials with the same seed share the data order and the initialisation, so the difference of two
regimens (or budgets) is taken seed by seed; the interval is the 95% Student-t interval of the
mean difference. Prints one line per comparison.

    python benchmarks/paired_difference.py STUDY_DIR "ricap@0.3" "standard@1.0" [--metric test_acc]
    python benchmarks/paired_difference.py STUDY_DIR A@b B@b C@b D@b ...   # pairs: (A, B), (C, D), ...
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
from pathlib import Path

from scipy import stats


def cells(study: Path, metric: str) -> dict[tuple[str, float], dict[int, float]]:
    db = sqlite3.connect(study / "results.db")
    out: dict[tuple[str, float], dict[int, float]] = {}
    for reg, budget, seed, metrics in db.execute(
            "SELECT regimen, budget, seed, metrics FROM trials WHERE status = 'done'"):
        out.setdefault((reg, float(budget)), {})[seed] = json.loads(metrics)[metric]
    return out


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, float, int]:
    """Mean of a - b over shared seeds and its 95% t interval (lo, hi); nan interval for one seed."""
    d = [a[s] - b[s] for s in sorted(set(a) & set(b))]
    m = statistics.fmean(d)
    if len(d) < 2:
        return m, float("nan"), float("nan"), len(d)
    h = stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / len(d) ** 0.5
    return m, m - h, m + h, len(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("cells", nargs="+", help="REGIMEN@BUDGET, in pairs")
    ap.add_argument("--metric", default="test_acc")
    args = ap.parse_args()
    data = cells(args.study, args.metric)
    for x, y in zip(args.cells[::2], args.cells[1::2]):
        key = lambda c: (c.rsplit("@", 1)[0], float(c.rsplit("@", 1)[1]))  # noqa: E731
        m, lo, hi, n = paired(data[key(x)], data[key(y)])
        print(f"{x} - {y}: {m * 100:+.2f} points, 95% CI [{lo * 100:+.2f}, {hi * 100:+.2f}] over {n} seeds")


if __name__ == "__main__":
    main()
