"""The ``trainwise`` command line.

    trainwise study CONFIG [--workers N] [--out DIR] [--retry-failed]   run a study grid
    trainwise train CONFIG [--out DIR] [--resume]                       run one trial
    trainwise report DIR                                                rebuild a study's report
    trainwise multisplit CONFIG [--out DIR] [--executor E]              multi-split training with transfer
    trainwise robust linear [--out DIR] [--seeds ...]                   linear optimisation-bias lab

Bad input (config, data, checkpoint, directory) prints one line and exits with code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import TrainwiseError


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
    from .study.config import StudyConfig, load_config
    from .study.runner import main_report, run_study

    cfg = with_limit(load_config(args.config, StudyConfig), args.limit_per_class)
    out = Path(args.out) if args.out else Path("studies") / cfg.name
    rows = run_study(cfg, out, workers=args.workers, retry_failed=args.retry_failed,
                     executor=args.executor, address=args.address,
                     progress=None if sys.stderr.isatty() and not args.no_progress else False)
    main_report(out, rows, f"trainwise study: {cfg.name}")
    failed = sum(r["status"] != "done" for r in rows)
    if failed:
        print(f"{failed} trial(s) failed; see the report, fix the cause and rerun with --retry-failed")
    return 0


def cmd_train(args) -> int:
    from .study.config import TrialConfig, load_config
    from .study.runner import ensure_writable
    from .train import CHECKPOINT, train

    cfg = with_limit(load_config(args.config, TrialConfig), args.limit_per_class)
    out = Path(args.out) if args.out else Path("runs") / f"{cfg.regimen}-{cfg.config_hash()}"
    if not args.resume and ((out / CHECKPOINT).exists() or (out / "result.json").exists()):
        raise TrainwiseError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    ensure_writable(out)
    result = train(cfg, out, resume=args.resume, progress=False if args.no_progress else None)
    print(json.dumps(result, indent=2))
    print(f"run directory: {out}")
    return 0


def cmd_report(args) -> int:
    from .study.runner import main_report
    from .study.store import Store

    out = Path(args.dir)
    if not (out / "results.db").is_file():
        raise TrainwiseError(f"{out} has no results.db; pass the directory of a study run by `trainwise study`")
    ids = None
    if (out / "study.json").is_file():
        meta = json.loads((out / "study.json").read_text())
        ids, title = set(meta["trial_ids"]), meta["name"]
    else:
        title = out.name
    store = Store(out / "results.db")
    rows = store.rows(ids)
    store.close()
    main_report(out, rows, f"trainwise study: {title}")
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
    from .study.config import load_config
    from .study.runner import ensure_writable

    cfg = load_config(args.config, MultiSplitConfig)
    out = Path(args.out) if args.out else Path("studies") / cfg.name
    ensure_writable(out)
    print(f"multisplit {cfg.name!r}: {len(cfg.arms)} arms x {len(cfg.seeds)} seeds, {args.executor} -> {out}")
    run_multisplit(cfg, out, executor=args.executor, address=args.address)
    print((out / "report.md").read_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    common.add_argument("--no-progress", action="store_true", help="plain log lines, no progress bar")
    p = argparse.ArgumentParser(prog="trainwise", description=__doc__.split("\n\n")[0], parents=[common])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("study", parents=[common], help="run every trial of a study config")
    s.add_argument("config")
    s.add_argument("--out", help="study directory (default studies/<name>)")
    s.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in-process)")
    s.add_argument("--executor", choices=["local", "processes", "ray"], default="local")
    s.add_argument("--address", help="Ray cluster address for --executor ray (ray://host:port or auto)")
    s.add_argument("--retry-failed", action="store_true", help="rerun trials stored as failed")
    s.add_argument("--limit-per-class", type=positive_int, metavar="N",
                   help="keep N training samples per class (overrides dataset.limit_per_class)")
    s.set_defaults(fn=cmd_study)

    t = sub.add_parser("train", parents=[common], help="run one trial config")
    t.add_argument("config")
    t.add_argument("--out", help="run directory (default runs/<regimen>-<hash>)")
    t.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    t.add_argument("--limit-per-class", type=positive_int, metavar="N",
                   help="keep N training samples per class (overrides dataset.limit_per_class)")
    t.set_defaults(fn=cmd_train)

    r = sub.add_parser("report", parents=[common], help="regenerate a study's report from its database")
    r.add_argument("dir")
    r.set_defaults(fn=cmd_report)

    m = sub.add_parser("multisplit", parents=[common], help="K-split training with knowledge transfer (every arm x seed)")
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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "workers", 1) < 1:
        print("trainwise: error: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.fn(args)
    except TrainwiseError as e:
        if args.debug:
            raise
        print(f"trainwise: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trainwise: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
