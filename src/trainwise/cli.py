"""The trainwise command line: train PyTorch models under a budget and compare procedures.

    trainwise study CONFIG [--workers N] [--out DIR] [--set K=V] [--dry-run]   run a study grid
    trainwise train CONFIG [--out DIR] [--resume]                              run one trial
    trainwise advise CONFIG --budget B [--out DIR]                             which regimen at budget B
    trainwise report DIR                                                       rebuild a study's report
    trainwise multisplit CONFIG [--out DIR] [--executor E]                     multi-split training
    trainwise robust linear [--out DIR] [--seeds ...]                          linear optimisation-bias lab
    trainwise probe-order CONFIG [--epochs E] [--out DIR] [--executor E]       every order of a few batches
    trainwise list                                                             what a config can name

Exit codes: 0 done; 2 bad input (config, data, checkpoint, directory, a directory in use), one
line naming the problem and the fix (--debug shows the traceback); 3 a study finished but some
trials failed; 130/143 interrupted by SIGINT/SIGTERM (finished trials are stored, running ones
checkpointed: rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import TrainwiseError
from .interrupt import Interrupted

EXAMPLES = """examples:
  trainwise study examples/quickstart.yaml                       run (or resume) a study
  trainwise study examples/quickstart.yaml --dry-run             grid size, stored trials, time estimate
  trainwise study examples/fashion_budget.yaml --workers 2 --set train.epochs=5 --set seeds=[0,1]
  trainwise train trial.yaml --out runs/a && trainwise train trial.yaml --out runs/a --resume
  trainwise advise examples/advise_fashion.yaml --budget 0.3     which regimen at 30% of the schedule
  trainwise report studies/quickstart                            rebuild report.md / report.html
  trainwise list                                                 datasets, models, samplers, augmentations, attacks
"""


def with_limit(cfg, n: int | None):
    """Apply ``--limit-per-class N``: override ``dataset.limit_per_class`` (stratified, seeded subset)."""
    if n is None:
        return cfg
    return cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"limit_per_class": n})})


def positive_int(v: str) -> int:
    if not v.isdigit() or int(v) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}")
    return int(v)


def cmd_study(args) -> int:
    from .config_load import load_config
    from .study.config import StudyConfig
    from .study.runner import dry_run, run_study

    cfg = with_limit(load_config(args.config, StudyConfig, args.set), args.limit_per_class)
    out = Path(args.out) if args.out else Path("studies") / cfg.name
    if args.dry_run:
        dry_run(cfg, out, workers=args.workers, retry_failed=args.retry_failed)
        return 0
    rows = run_study(cfg, out, workers=args.workers, retry_failed=args.retry_failed, executor=args.executor,
                     address=args.address, progress=False if args.no_progress else None, report=True,
                     gpus_per_trial=args.gpus_per_trial)
    failed = [r for r in rows if r["status"] != "done"]
    if failed:
        first = (failed[0]["error"] or "").splitlines()[0][:200] if failed[0]["error"] else "no error recorded"
        print(f"trainwise: {len(failed)} of {len(rows)} trials failed (first: {failed[0]['regimen']} "
              f"budget={failed[0]['budget']} seed={failed[0]['seed']}: {first}); see the report, fix the "
              "cause and rerun with --retry-failed", file=sys.stderr)
        return 3
    return 0


def fraction(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        x = float("nan")
    if not 0 < x <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {v!r}")
    return x


def positive_float(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        x = float("nan")
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v!r}")
    return x


def cmd_advise(args) -> int:
    from .study.advise_run import run_advice
    from .config_load import load_config
    from .study.config import StudyConfig

    cfg = load_config(args.config, StudyConfig, args.set)
    if sum(x is not None for x in (args.budget, args.seconds, args.units)) != 1:
        raise TrainwiseError("give the target budget as --budget B (a fraction of the full schedule), "
                             "--seconds S (CPU seconds of one control trial) or --units N (train.budget_unit "
                             "units), one of the three")
    out = Path(args.out) if args.out else Path("studies") / f"{cfg.name}-advise"
    result = run_advice(cfg, out, budget=args.budget, seconds=args.seconds, units=args.units,
                        fraction=args.advice_budget,
                        delta=args.delta / 100, min_seeds=args.min_seeds, workers=args.workers,
                        executor=args.executor, address=args.address,
                        progress=False if args.no_progress else None)
    print(f"advice: {out / 'advise.md'}" + (f"; run it: trainwise study {out / 'recommended.yaml'}"
                                            if result["pick"] else ""))
    return 0


def cmd_train(args) -> int:
    from .lock import DirLock
    from .config import TrialConfig
    from .config_load import load_config
    from .data import load_dataset
    from .study.preflight import preflight
    from .study.runner import ensure_writable
    from .train import CHECKPOINT, train

    cfg = with_limit(load_config(args.config, TrialConfig, args.set), args.limit_per_class)
    data = load_dataset(cfg.dataset)
    cfg = cfg.with_fingerprint(data)  # a user dataset's content hash joins the run's identity
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.regimen}-{cfg.config_hash()}"
    cfg.make_budget(data.n_train)
    preflight([cfg], data)  # a config that cannot train one step: one line, before any file is written
    ensure_writable(out)
    with DirLock(out, f"trainwise train {args.config}"):
        if not args.resume and ((out / CHECKPOINT).exists() or (out / "result.json").exists()):
            raise TrainwiseError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        result = train(cfg, out, resume=args.resume, progress=False if args.no_progress else None, data=data)
    print(json.dumps(result, indent=2))
    print(f"run directory: {out}")
    return 0


def cmd_report(args) -> int:
    from .lock import DirLock
    from .study.runner import main_report
    from .study.store import Store, load_study_meta

    out = Path(args.dir)
    if not (out / "results.db").is_file():
        raise TrainwiseError(f"{out} has no results.db; pass the directory of a study run by `trainwise study`")
    with DirLock(out, f"trainwise report {out}", fix=f"make {out} writable; its report is kept as it is"):
        ids, title = load_study_meta(out)
        store = Store.open_existing(out / "results.db")
        try:
            rows = store.rows(ids)
        finally:
            store.close()
        main_report(out, rows, f"trainwise study: {title}", notes=study_data_note(out))
    return 0


def study_data_note(out: Path) -> str:
    """The data line a study stored in study.json (empty for older studies)."""
    try:
        note = json.loads((out / "study.json").read_text()).get("data", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return note if isinstance(note, str) else ""


def cmd_list(args) -> int:
    from .catalog import describe

    print(describe())
    return 0


def cmd_robust_linear(args) -> int:
    from .robust.linear_lab import run_lab
    from .study.runner import ensure_writable

    if args.dim < 2 or args.iters < 1 or min(args.d_over_n) < 1 or min(args.lams) <= 0:
        raise TrainwiseError("--dim must be >= 2, --iters >= 1, --d-over-n >= 1 and --lams > 0")
    out = Path(args.out)
    ensure_writable(out)
    md = run_lab(out, args.seeds, args.dim, args.d_over_n, args.iters, args.lams,
                 command=(f"trainwise robust linear --out {args.out} --seeds {' '.join(map(str, args.seeds))} "
                          f"--dim {args.dim} --d-over-n {' '.join(map(str, args.d_over_n))} --iters {args.iters} "
                          f"--lams {' '.join(f'{v:g}' for v in args.lams)}"))
    print(f"report: {md}")
    return 0


def cmd_multisplit(args) -> int:
    from .multisplit import MultiSplitConfig, run_multisplit
    from .config_load import load_config
    from .study.runner import ensure_writable

    from .lock import DirLock

    cfg = load_config(args.config, MultiSplitConfig, args.set)
    out = Path(args.out) if args.out else Path("studies") / cfg.name
    ensure_writable(out)
    with DirLock(out, f"trainwise multisplit {args.config}"):
        print(f"multisplit {cfg.name!r}: {len(cfg.arms)} arms x {len(cfg.seeds)} seeds, {args.executor} -> {out}")
        run_multisplit(cfg, out, executor=args.executor, address=args.address)
    print((out / "report.md").read_text())
    return 0


def cmd_probe_order(args) -> int:
    from .config_load import load_config
    from .study.probe_order import ProbeConfig
    from .study.probe_runner import run_probe

    overrides = list(args.set) + ([f"epochs={args.epochs}"] if args.epochs is not None else [])
    cfg = load_config(args.config, ProbeConfig, overrides)
    out = Path(args.out) if args.out else Path("studies") / cfg.name
    command = " ".join(["trainwise probe-order", args.config] + [f"--set {o}" for o in args.set] +
                       ([f"--epochs {args.epochs}"] if args.epochs is not None else []) +
                       ([f"--executor {args.executor}"] if args.executor != "local" else []) +
                       ([f"--workers {args.workers}"] if args.workers != 1 else []))
    print(f"probe-order {cfg.name!r}: {cfg.orders} orders of {cfg.batches} batches x {cfg.epochs} epoch(s), "
          f"{args.executor} -> {out}")
    path = run_probe(cfg, out, executor=args.executor, workers=args.workers, address=args.address, command=command)
    print(path.read_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    common.add_argument("--no-progress", action="store_true", help="plain log lines, no progress bar")
    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="override a config setting by its dotted path, e.g. --set train.epochs=5 "
                                "(repeatable; validated like the YAML)")
    raw = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="trainwise", description=__doc__, epilog=EXAMPLES,
                                formatter_class=raw, parents=[common])
    p.add_argument("--version", action="version", version=f"trainwise {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("study", parents=[common, overrides], help="run every trial of a study config",
                       description="Run (or resume) every trial of a study grid: regimens x budgets x seeds. "
                                   "Stored trials are skipped; rerunning the same command resumes.",
                       epilog=EXAMPLES, formatter_class=raw)
    s.add_argument("config")
    s.add_argument("--dry-run", action="store_true",
                   help="print the grid, the trials stored and to run, and a time estimate; run nothing")
    s.add_argument("--out", help="study directory (default studies/<name>)")
    s.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in-process)")
    s.add_argument("--executor", choices=["local", "processes", "ray"], default="local")
    s.add_argument("--address", help="Ray cluster address for --executor ray (ray://host:port or auto)")
    s.add_argument("--gpus-per-trial", type=float, metavar="F",
                   help="--executor ray: GPUs each cuda trial asks Ray for, e.g. 0.25 runs 4 trials per GPU "
                        "(default: the cluster's GPUs / --workers, at most 1)")
    s.add_argument("--retry-failed", action="store_true", help="rerun trials stored as failed")
    s.add_argument("--limit-per-class", type=positive_int, metavar="N",
                   help="keep N training samples per class (overrides dataset.limit_per_class)")
    s.set_defaults(fn=cmd_study)

    a = sub.add_parser("advise", parents=[common, overrides], help="which of a config's regimens to use at a "
                       "budget, for a fraction of the grid's compute", formatter_class=raw,
                       description="Recommend one of the config's regimens at the target budget: complete "
                                   "budget-aware runs at B/9, B/3 and B, regimens dropped as soon as they are "
                                   "clearly behind, selection on validation accuracy (docs/methods.md §8). Writes "
                                   "advise.md, advise.json, recommended.yaml and report.html into --out.",
                       epilog="example:\n  trainwise advise examples/advise_fashion.yaml --budget 0.3")
    a.add_argument("config")
    a.add_argument("--budget", type=fraction, metavar="B", help="target budget: fraction of the full schedule")
    a.add_argument("--seconds", type=positive_float, metavar="S",
                   help="target budget as CPU seconds of one control trial (instead of --budget)")
    a.add_argument("--units", type=positive_float, metavar="N",
                   help="target budget in the config's train.budget_unit: optimizer steps (steps), samples "
                        "backpropagated (backprop_samples) or forward+backward work (forward_backward), "
                        "instead of --budget")
    a.add_argument("--advice-budget", type=fraction, default=0.4, metavar="F",
                   help="compute advise may spend, as a fraction of the exhaustive grid at B (default 0.4)")
    a.add_argument("--delta", type=positive_float, default=0.5, metavar="POINTS",
                   help="tie margin in accuracy points (default 0.5)")
    a.add_argument("--min-seeds", type=positive_int, default=2, metavar="N", help="seeds per rung (default 2)")
    a.add_argument("--out", help="directory (default studies/<name>-advise); trials stored there are reused")
    a.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in-process)")
    a.add_argument("--executor", choices=["local", "processes", "ray"], default="local")
    a.add_argument("--address", help="Ray cluster address for --executor ray (ray://host:port or auto)")
    a.set_defaults(fn=cmd_advise)

    t = sub.add_parser("train", parents=[common, overrides], help="run one trial config")
    t.add_argument("config")
    t.add_argument("--out", help="run directory (default runs/<regimen>-<hash>)")
    t.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    t.add_argument("--limit-per-class", type=positive_int, metavar="N",
                   help="keep N training samples per class (overrides dataset.limit_per_class)")
    t.set_defaults(fn=cmd_train)

    r = sub.add_parser("report", parents=[common], help="regenerate a study's report from its database")
    r.add_argument("dir")
    r.set_defaults(fn=cmd_report)

    m = sub.add_parser("multisplit", parents=[common, overrides], help="K-split training with knowledge transfer (every arm x seed)")
    m.add_argument("config")
    m.add_argument("--out", help="output directory (default studies/<name>)")
    m.add_argument("--executor", choices=["inprocess", "processes", "ray"], default="inprocess",
                   help="where the K split workers run (same results for the same seeds)")
    m.add_argument("--address", help="Ray cluster address for --executor ray (ray://host:port or auto)")
    m.set_defaults(fn=cmd_multisplit)

    rb = sub.add_parser("robust", parents=[common], help="robustness labs (see trainwise.robust)")
    rsub = rb.add_subparsers(dest="lab", required=True)
    rl = rsub.add_parser("linear", parents=[common], help="optimisation bias vs max-margin robustness of linear models")
    rl.add_argument("--out", default="docs/results", help="output directory (default docs/results)")
    rl.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    rl.add_argument("--dim", type=int, default=100)
    rl.add_argument("--d-over-n", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    rl.add_argument("--iters", type=int, default=20000, help="iterations per trainer")
    rl.add_argument("--lams", type=float, nargs="+", default=[1e-4, 1e-8], help="penalty weights")
    rl.set_defaults(fn=cmd_robust_linear)

    po = sub.add_parser("probe-order", parents=[common, overrides], help="train every order of a few batches "
                        "from the same weights: does batch order matter? (arXiv:2211.14395)")
    po.add_argument("config")
    po.add_argument("--epochs", type=positive_int, help="probe E epochs, later ones from kept prefixes "
                    "(overrides epochs)")
    po.add_argument("--out", help="output directory (default studies/<name>)")
    po.add_argument("--executor", choices=["local", "processes", "ray"], default="local")
    po.add_argument("--workers", type=int, default=1, help="parallel jobs (processes or Ray)")
    po.add_argument("--address", help="Ray cluster address for --executor ray (ray://host:port or auto)")
    po.set_defaults(fn=cmd_probe_order)

    ls = sub.add_parser("list", parents=[common], help="datasets, models, samplers, augmentations and attacks, "
                                                        "with their settings and defaults")
    ls.set_defaults(fn=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    from . import interrupt

    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        print("trainwise: error: --workers must be at least 1", file=sys.stderr)
        return 2
    interrupt.reset()
    restore = interrupt.install()  # Ctrl-C / SIGTERM: checkpoint, store, stop (a second Ctrl-C: at once)
    try:
        return args.fn(args)
    except TrainwiseError as e:
        if args.debug:
            raise
        print(f"trainwise: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    except Interrupted as e:
        if not getattr(e, "reported", False):
            print(f"trainwise: interrupted ({e}); progress is checkpointed: rerun the same command to resume",
                  file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("trainwise: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        restore()


if __name__ == "__main__":
    sys.exit(main())
