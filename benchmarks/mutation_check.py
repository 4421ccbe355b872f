"""Mutation check: small, meaningful defects applied to a copy of ``src/``; each must make its tests fail.

Each mutation is one text substitution in one source file (it must match exactly once) and the
tests that should catch it. The copy (src/, tests/, pyproject.toml) lives in a temporary
directory and is imported through PYTHONPATH, so the working tree is never touched.

    python benchmarks/mutation_check.py            # all mutations; exit 1 if any survives
    python benchmarks/mutation_check.py --list
    python benchmarks/mutation_check.py loss-weights-ignored bce-summed

The list holds the survivors of the issue-16 review (a loop that ignores loss weights, MIM without
momentum, PGD without its random start, a report whose std is 0 or whose mean is the first seed's,
a checkpoint without the transform generator, BCE summed over classes) and one per fix made then
(selective-backprop priming, importance sampling's uniform phase, the last-step learning rate,
drop_last, per-split initialisation in multi-split training).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # under src/trainwise/
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids or paths, relative to the repo root


MUTATIONS = [
    Mutation("loss-weights-ignored", "train.py", "reduce_loss(per_sample, batch.weight)",
             "reduce_loss(per_sample, None)", ("tests/test_train.py::test_one_step_applies_the_weighted_mean_loss",)),
    Mutation("mim-without-momentum", "robust/attacks.py", "velocity = momentum * velocity + g",
             "velocity = 0 * velocity + g", ("tests/robust/test_robust_attacks.py",)),
    Mutation("pgd-without-random-start", "robust/attacks.py", 'rand = (attack == "pgd") if random_init is None',
             "rand = False if random_init is None", ("tests/robust/test_robust_attacks.py",)),
    Mutation("report-std-zero", "study/report.py", "(statistics.stdev(values) if len(values) > 1 else 0.0)",
             "0.0", ("tests/study/test_report.py",)),
    Mutation("report-mean-first-seed", "study/report.py", "return statistics.fmean(values), (",
             "return values[0], (", ("tests/study/test_report.py",)),
    Mutation("checkpoint-without-transform-generator", "train.py", 'gen.set_state(ck["gen"])', "pass",
             ("tests/test_train.py::test_resume_restores_the_transform_generator",)),
    Mutation("bce-summed", "losses.py", 'reduction="none").mean(dim=1)', 'reduction="none").sum(dim=1)',
             ("tests/test_losses.py",)),
    Mutation("selective-backprop-no-priming", "sampling/selective_backprop.py", "if self.primed < self.prime:",
             "if False:", ("tests/sampling/test_sampling_selective_backprop.py",)),
    Mutation("importance-scores-while-off", "sampling/importance.py", "self.uniform_step = not self.on",
             "self.uniform_step = False", ("tests/sampling/test_sampling_importance.py",)),
    Mutation("lr-misses-final-at-last-step", "budget.py", "max(total_steps - 1 - first, 1)",
             "max(total_steps - first, 1)", ("tests/test_budget.py",)),
    Mutation("drop-last-ignored", "budget.py", "return n // self.batch_size if self.drop_last else",
             "return math.ceil(n / self.batch_size) if self.drop_last else", ("tests/test_budget.py",)),
    Mutation("multisplit-shared-init", "multisplit/run.py", 'if arm.init == "per_split" else seed', "if False else seed",
             ("tests/multisplit",)),
]


def run(m: Mutation, timeout: float) -> tuple[str, float]:
    """Apply ``m`` to a fresh copy and run its tests: 'caught', 'SURVIVED', or why it could not run."""
    with tempfile.TemporaryDirectory(prefix=f"mutant-{m.name}-") as tmp:
        tmp = Path(tmp)
        for part in ("src", "tests"):
            shutil.copytree(ROOT / part, tmp / part, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", tmp)
        target = tmp / "src" / "trainwise" / m.path
        text = target.read_text()
        if text.count(m.old) != 1:
            return f"not applied ({text.count(m.old)} matches)", 0.0
        target.write_text(text.replace(m.old, m.new))
        env = dict(os.environ, PYTHONPATH=str(tmp / "src"), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        where = subprocess.run([sys.executable, "-c", "import trainwise; print(trainwise.__file__)"],
                               cwd=tmp, env=env, capture_output=True, text=True).stdout
        if not where.startswith(str(tmp)):
            return f"error: the copy is not the trainwise imported ({where.strip()})", 0.0
        t0 = time.perf_counter()
        try:
            p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *m.tests],
                               cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "caught (timeout)", time.perf_counter() - t0
        dt = time.perf_counter() - t0
        if p.returncode == 1:
            return "caught", dt
        if p.returncode == 0:
            return "SURVIVED", dt
        return f"error (pytest exit {p.returncode}): {p.stdout[-300:]}", dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="mutations to run (default: all)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:40s} src/trainwise/{m.path}")
        return 0
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    bad = 0
    for m in chosen:
        verdict, dt = run(m, args.timeout)
        bad += not verdict.startswith("caught")
        print(f"{m.name:40s} {verdict:10s} {dt:6.1f}s  ({', '.join(m.tests)})", flush=True)
    print(f"{len(chosen) - bad} of {len(chosen)} mutations caught")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
