"""The ``trainwise`` command line.

    trainwise study CONFIG [--workers N] [--out DIR] [--retry-failed]   run a study grid
    trainwise train CONFIG [--out DIR] [--resume]                       run one trial
    trainwise report DIR                                                rebuild a study's report

Bad input (config, data, checkpoint, directory) prints one line and exits with code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import TrainwiseError


def cmd_study(args) -> int:
    from .study.config import StudyConfig, load_config
    from .study.runner import main_report, run_study

    cfg = load_config(args.config, StudyConfig)
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

    cfg = load_config(args.config, TrialConfig)
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
    s.set_defaults(fn=cmd_study)

    t = sub.add_parser("train", parents=[common], help="run one trial config")
    t.add_argument("config")
    t.add_argument("--out", help="run directory (default runs/<regimen>-<hash>)")
    t.add_argument("--resume", action="store_true", help="continue from the run directory's checkpoint")
    t.set_defaults(fn=cmd_train)

    r = sub.add_parser("report", parents=[common], help="regenerate a study's report from its database")
    r.add_argument("dir")
    r.set_defaults(fn=cmd_report)
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
