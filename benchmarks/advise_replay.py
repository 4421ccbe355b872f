"""trainwise advise replayed on real, exhaustive grids: how often it finds the grid's best regimen
(within δ) at B, and for how much of the grid's compute.

Each committed export (benchmarks/grids/*.csv: every regimen x rung budget x seed of a study, see
the .yaml beside it) answers advise's trial requests; each replay gives advise the grid's seeds in
another random order. Regret = the grid's best mean validation accuracy at B over all its seeds,
minus the pick's. Spend = CPU time of the trials advise asked for / CPU time of the exhaustive
grid at B (every regimen x every seed). Beside advise, the same numbers for successive halving
over the same complete runs (keep the top third by mean validation accuracy at B/9 and B/3, then
the best at B, two seeds): the rule advise replaces; and for every regimen at B on two seeds
with no rungs (40% of the grid, advise's budget).

    python benchmarks/advise_replay.py [--replays 100] [GRID.csv ...]
    python benchmarks/advise_replay.py --export STUDY_DIR OUT.csv    # a study's trials as an export
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import sys
import time
from pathlib import Path

from trainwise.study.advise import DELTA, Request, read_export, replay_many, replay_runner, successive_halving
from trainwise.study.advise_run import is_control
from trainwise.study.config import RegimenConfig

GRIDS = Path(__file__).resolve().parent / "grids"
COLUMNS = ["regimen", "budget", "seed", "val_acc", "test_acc", "train_acc", "cpu_time", "wall_time", "steps",
           "control"]


def export(study: Path, out: Path) -> int:
    """Write every done trial of ``study`` (its results.db) as one CSV row; return the row count."""
    db = sqlite3.connect(f"file:{study / 'results.db'}?mode=ro", uri=True)
    rows = []
    for reg, budget, seed, metrics, config in db.execute(
            "SELECT regimen, budget, seed, metrics, config FROM trials WHERE status = 'done' "
            "ORDER BY regimen, budget, seed"):
        m, c = json.loads(metrics), json.loads(config)
        control = is_control(RegimenConfig(sampler=c["sampler"], augment=c["augment"], loss=c.get("loss")))
        rows.append([reg, budget, seed] + [round(m[k], 6) if isinstance(m.get(k), float) else m.get(k)
                                           for k in COLUMNS[3:-1]] + [int(control)])
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return len(rows)


def halving(rows: list[dict], replays: int) -> dict:
    """Successive halving over the grid's complete runs, two seeds, the same seed orders and the
    same scoring as advise's replays."""
    run, _ = replay_runner(rows)

    def method(regimens, B, order, run, estimate, limit, control):
        asked: list = []

        def counting(reqs):
            asked.extend(reqs)
            return run(reqs)

        pick = successive_halving(regimens, B, order[:2], counting)
        return dict(pick=pick, spent=sum(run([q])[q].cost for q in set(asked)))

    return replay_many(rows, replays=replays, method=method)


def every_regimen_at_b(rows: list[dict], replays: int, seeds: int = 2) -> dict:
    """No rungs: every regimen at B on the first ``seeds`` seeds of each order, the best mean
    picked. With 2 of 5 seeds it spends 40% of the grid, advise's budget."""
    def method(regimens, B, order, run, estimate, limit, control):
        got = run([Request(r, B, s) for r in regimens for s in order[:seeds]])
        mean = {r: sum(got[Request(r, B, s)].val_acc for s in order[:seeds]) / seeds for r in regimens}
        return dict(pick=max(mean, key=mean.get), spent=sum(o.cost for o in got.values()))

    return replay_many(rows, replays=replays, method=method)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("grids", nargs="*", type=Path, help="exports (default: benchmarks/grids/*.csv)")
    ap.add_argument("--replays", type=int, default=100)
    ap.add_argument("--export", nargs=2, metavar=("STUDY_DIR", "OUT_CSV"), type=Path)
    args = ap.parse_args()
    if args.export:
        print(f"{export(*args.export)} trials -> {args.export[1]}")
        return
    for path in args.grids or sorted(GRIDS.glob("*.csv")):
        rows = read_export(path)
        t0, c0 = time.perf_counter(), time.process_time()
        s = replay_many(rows, replays=args.replays)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        sh = halving(rows, args.replays)
        ev = every_regimen_at_b(rows, args.replays)
        print(f"{path.name}: {s['regimens']} regimens x {s['seeds']} seeds, B = {s['budget']:g}; grid's best "
              f"{s['best']} ({s['best_val_acc'] * 100:.2f}% validation)")
        cov = "; ".join(f"{k} {v:.0%} of {n}" for k, (v, n) in s["coverage"].items() if n)
        print(f"  advise ({s['replays']} replays): regret <= δ = {DELTA * 100:g} points in {s['within_delta']:.0%}; "
              f"mean regret {s['mean_regret'] * 100:.2f} points (max {s['max_regret'] * 100:.2f}), test "
              f"{s['mean_test_regret'] * 100:.2f}; spend {s['mean_spend_fraction']:.0%} of the grid "
              f"(max {s['max_spend_fraction']:.0%}); best picked or tied {s['best_in_pick_or_tied']:.0%}, "
              f"ruled out {s['best_ruled_out']:.0%}")
        print(f"  95% intervals at B that contain the grid's 5-seed mean: {cov}")
        print(f"  picks: {json.dumps(s['picks'])}")
        print(f"  successive halving on the same complete runs: regret <= δ in {sh['within_delta']:.0%}, mean "
              f"regret {sh['mean_regret'] * 100:.2f} points, spend {sh['mean_spend_fraction']:.0%}")
        print(f"  every regimen at B on 2 seeds, no rungs: regret <= δ in {ev['within_delta']:.0%}, mean "
              f"regret {ev['mean_regret'] * 100:.2f} points, spend {ev['mean_spend_fraction']:.0%}")
        print(f"  replay time {wall:.2f} s wall, {cpu:.2f} s CPU")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
