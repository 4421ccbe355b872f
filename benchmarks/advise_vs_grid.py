"""A live ``trainwise advise`` run against the exhaustive grid of the same config: the tables of
docs/results/advise_fashion.md.

    python benchmarks/advise_vs_grid.py ADVISE_DIR GRID_DIR

ADVISE_DIR holds advise.json (``trainwise advise CONFIG --budget B --out ADVISE_DIR``); GRID_DIR
is ``trainwise study CONFIG --set budgets=[B] --out GRID_DIR``. Prints, per regimen, the grid's
validation and test accuracy at B over all its seeds (mean ± sd, and the seed-paired difference
to the grid's best with a 95% t interval) beside what advise concluded, then both compute bills.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
from pathlib import Path

from trainwise.stats import paired


def grid_rows(grid: Path, budget: float) -> dict[str, dict[int, dict]]:
    db = sqlite3.connect(f"file:{grid / 'results.db'}?mode=ro", uri=True)
    out: dict[str, dict[int, dict]] = {}
    for reg, b, seed, metrics in db.execute("SELECT regimen, budget, seed, metrics FROM trials WHERE status = 'done'"):
        if abs(float(b) - budget) < 1e-9:
            out.setdefault(reg, {})[seed] = json.loads(metrics)
    return out


def ms(xs: list[float]) -> str:
    return f"{statistics.fmean(xs) * 100:.2f} ± {statistics.stdev(xs) * 100:.2f}" if len(xs) > 1 else f"{xs[0] * 100:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("advise_dir", type=Path)
    ap.add_argument("grid_dir", type=Path)
    args = ap.parse_args()
    a = json.loads((args.advise_dir / "advise.json").read_text())
    B = a["budget"]
    grid = grid_rows(args.grid_dir, B)
    val = {r: statistics.fmean(m["val_acc"] for m in s.values()) for r, s in grid.items()}
    best = max(val, key=val.get)
    grid_cpu = sum(m["cpu_time"] for s in grid.values() for m in s.values())
    print(f"budget {B:g}; grid: {len(grid)} regimens x {len({k for s in grid.values() for k in s})} seeds; "
          f"grid's best on validation: {best}\n")
    print("| regimen | grid val % | grid test % | best − it, val points [95%] | grid CPU s/trial | "
          "advise: status | advise: predicted val % at B [95%] | advise: basis |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(grid, key=lambda r: -val[r]):
        s = grid[r]
        shared = sorted(set(s) & set(grid[best]))
        if r == best:
            diff = "—"
        else:
            p = paired([grid[best][k]["val_acc"] for k in shared], [s[k]["val_acc"] for k in shared])
            diff = f"{p['mean'] * 100:+.2f} [{p['lo'] * 100:+.2f}, {p['hi'] * 100:+.2f}]"
        ad = a["regimens"].get(r, {})
        pred = (f"{ad['pred'] * 100:.2f} [{ad['lo'] * 100:.2f}, {ad['hi'] * 100:.2f}]"
                if ad.get("pred") is not None and ad.get("lo") is not None else "—")
        role = (" (pick)" if r == a["pick"] else " (tied)" if r in a["tied"]
                else " (not run at B)" if r in a.get("not_at_b", []) else "")
        status = ad.get("status", "—") + role
        print(f"| {r} | {ms([m['val_acc'] for m in s.values()])} | {ms([m['test_acc'] for m in s.values()])} | "
              f"{diff} | {statistics.fmean(m['cpu_time'] for m in s.values()):.1f} | {status} | {pred} | "
              f"{ad.get('basis') or '—'} |")
    regret = val[best] - val[a["pick"]] if a["pick"] in val else None
    print(f"\nadvise picked {a['pick']} (p_best {a['p_best']:.2f}); tied: {', '.join(a['tied']) or 'none'}; "
          f"not run at B: {', '.join(a.get('not_at_b', [])) or 'none'}; stopped: {a['stopped']}")
    print(f"regret vs the grid's best on validation: {regret * 100:.2f} points" if regret is not None else "")
    print(f"compute: advise {a['spent']:.0f} s CPU (calibration {a['calibration_cpu_time']:.0f} s) = "
          f"{a['spent'] / grid_cpu:.0%} of the grid's measured {grid_cpu:.0f} s (its estimate was "
          f"{a['grid_cost']:.0f} s)")


if __name__ == "__main__":
    main()
