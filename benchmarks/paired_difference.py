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
from pathlib import Path

from trainwise.stats import paired


def cells(study: Path, metric: str) -> dict[tuple[str, float], dict[int, float]]:
    db = sqlite3.connect(study / "results.db")
    out: dict[tuple[str, float], dict[int, float]] = {}
    for reg, budget, seed, metrics in db.execute(
            "SELECT regimen, budget, seed, metrics FROM trials WHERE status = 'done'"):
        out.setdefault((reg, float(budget)), {})[seed] = json.loads(metrics)[metric]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("cells", nargs="+", help="REGIMEN@BUDGET, in pairs")
    ap.add_argument("--metric", default="test_acc")
    args = ap.parse_args()
    data = cells(args.study, args.metric)
    for x, y in zip(args.cells[::2], args.cells[1::2]):
        key = lambda c: (c.rsplit("@", 1)[0], float(c.rsplit("@", 1)[1]))  # noqa: E731
        a, b = data[key(x)], data[key(y)]
        seeds = sorted(set(a) & set(b))
        p = paired([a[s] for s in seeds], [b[s] for s in seeds])
        ci = "no interval (one seed)" if p["sd"] is None else f"95% CI [{p['lo'] * 100:+.2f}, {p['hi'] * 100:+.2f}]"
        print(f"{x} - {y}: {p['mean'] * 100:+.2f} points, {ci} over {p['n']} seeds")


if __name__ == "__main__":
    main()
