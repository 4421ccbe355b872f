"""Drive the exhaustive order probe (``probe_order.py``): jobs on the study executors, rows in
SQLite, kept prefixes for later epochs, the greedy samplers' runs, then ``probe.md``.

Every job is a range of orders of one epoch after one prefix; the local, process and Ray
executors run them (``executors.run_trial`` dispatches a config with ``task: probe-order`` to
``probe_order.run_chunk``), and only this driver writes ``probe.db``. Rows are stored as jobs
finish, so an interrupted probe (Ctrl-C, SIGTERM, a crash) resumes with the orders missing.
The database remembers the settings that change the numbers and refuses others.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np

from ..errors import TrainwiseError
from ..interrupt import Interrupted
from ..lock import DirLock
from .probe_order import ProbeConfig, probe_data, trial_config
from .probe_report import Marker, write_report

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    epoch INTEGER NOT NULL, prefix TEXT NOT NULL, order_id INTEGER NOT NULL,
    test_loss REAL NOT NULL, test_acc REAL NOT NULL,
    PRIMARY KEY (epoch, prefix, order_id)
);
"""
# settings that do not change a stored row's numbers (rows are keyed by epoch, prefix and order)
NOT_IDENTITY = {"name", "epochs", "clusters", "chunk", "greedy"}


class ProbeStore:
    def __init__(self, path: Path, cfg: ProbeConfig):
        self.path = path
        try:
            self.db = sqlite3.connect(path, timeout=30.0)
            self.db.executescript(SCHEMA)
            ident = json.dumps(cfg.model_dump(mode="json", exclude=NOT_IDENTITY), sort_keys=True)
            row = self.db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        except sqlite3.Error as e:
            raise TrainwiseError(f"{path} is not a probe database ({e}); delete it or choose another --out") from None
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('identity', ?)", (ident,))
            self.db.commit()
        elif row[0] != ident:
            self.db.close()
            raise TrainwiseError(f"{path} holds a probe with other settings (only name, epochs, clusters, chunk and "
                                 "greedy may change between runs); choose another --out")

    def put(self, epoch: int, prefix: list[int], rows: list[list]) -> None:
        p = json.dumps(prefix)
        self.db.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?)",
                            [(epoch, p, int(o), float(loss), float(acc)) for o, loss, acc in rows])
        self.db.commit()

    def rows(self, epoch: int, prefix: list[int]) -> dict[int, tuple[float, float]]:
        cur = self.db.execute("SELECT order_id, test_loss, test_acc FROM orders WHERE epoch = ? AND prefix = ?",
                              (epoch, json.dumps(prefix)))
        return {o: (loss, acc) for o, loss, acc in cur}

    def close(self) -> None:
        self.db.close()


def kept_prefixes(rows: list[tuple[list[int], int, float]], clusters: int, seed: int) -> list[list[int]]:
    """The prefixes the next epoch continues from (as the reference): the orders with the lowest
    and highest test loss, and the first order (in row order) of each k-means cluster of test loss.
    ``rows``: (prefix, order_id, test_loss). Returns prefix + [order_id] lists, sorted."""
    from sklearn.cluster import KMeans

    losses = np.array([r[2] for r in rows]).reshape(-1, 1)
    picks = {int(losses.argmin()), int(losses.argmax())}
    k = min(clusters, len(np.unique(losses)))
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(losses)
    picks |= {int(np.flatnonzero(labels == c)[0]) for c in range(k)}
    return sorted(list(rows[i][0]) + [rows[i][1]] for i in picks)


def label(spec: dict) -> str:
    from ..sampling import SAMPLERS

    defaults = SAMPLERS.get(spec["name"]).Settings().model_dump()
    shown = {k: v for k, v in spec.items() if k != "name" and v != defaults.get(k)}
    short = {"attempts": "A"}
    keys = ["attempts"] + sorted(k for k in spec if k not in ("name", "attempts"))
    parts = [f"{short.get(k, k)}={spec[k]}" for k in keys if k in spec and (k in shown or k == "attempts")]
    return spec["name"] + (f" ({', '.join(parts)})" if parts else "")


def run_markers(cfg: ProbeConfig, out: Path, data) -> list[Marker]:
    """``uniform`` (the identity order of each epoch's split) and the greedy samplers trained by
    the real loop on the subset; test loss and accuracy after each epoch."""
    from ..config import TrialConfig
    from ..train import train

    markers = []
    for spec in [{"name": "uniform"}] + list(cfg.greedy):
        name = label(spec)
        trial = TrialConfig(**trial_config(cfg, spec, cfg.epochs))
        run_dir = out / "runs" / f"{spec['name']}-{trial.config_hash()}"
        if not (run_dir / "result.json").exists():
            train(trial, run_dir, resume=True, progress=False, data=data)
        history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
        per_epoch = [(h["test_loss"], h["test_acc"]) for h in history if h["step"] % cfg.batches == 0]
        markers.append(Marker(name, [x[0] for x in per_epoch], [x[1] for x in per_epoch]))
    return markers


def run_probe(cfg: ProbeConfig, out: Path, executor: str = "local", workers: int = 1, address: str | None = None,
              echo=print, command: str = "") -> Path:
    """Probe every order of every epoch (resuming), then write ``out/probe.md``; returns its path."""
    from .runner import ensure_writable, make_executor

    ex = make_executor(executor, workers, False, address)
    data = probe_data(cfg)  # bad classes or sizes fail here, before anything is written
    ensure_writable(out)
    with DirLock(out, f"trainwise probe-order {cfg.name}"):
        store = ProbeStore(out / "probe.db", cfg)
        try:
            epochs, took = _probe_epochs(cfg, out, store, ex, echo)
        finally:
            store.close()
        echo("training uniform and the greedy samplers on the subset")
        markers = run_markers(cfg, out, data)
        path = write_report(out, cfg, data, epochs, markers, took, command)
    echo(f"report: {path}")
    return path


def _probe_epochs(cfg: ProbeConfig, out: Path, store: ProbeStore, ex, echo):
    k, n = cfg.batches, cfg.orders
    epochs: list[dict] = []  # per epoch: prefixes, rows [(prefix, order, loss, acc)]
    took = {"wall": 0.0, "cpu": 0.0, "orders": 0}
    for e in range(cfg.epochs):
        if e == 0:
            prefixes = [[]]
        else:
            prev = [(p, o, loss) for p, o, loss, _ in epochs[-1]["rows"]]
            prefixes = kept_prefixes(prev, cfg.clusters, cfg.seed)
        jobs, where = [], {}
        for pi, p in enumerate(prefixes):
            have = store.rows(e, p)
            for start in range(0, n, cfg.chunk):
                stop = min(start + cfg.chunk, n)
                if all(o in have for o in range(start, stop)):
                    continue
                jid = f"e{e}-p{pi}-o{start}"
                job = {"task": "probe-order", "probe": cfg.model_dump(mode="json"), "epoch": e, "prefix": p,
                       "orders": [start, stop]}
                jobs.append((jid, job, str(out / "jobs" / jid)))
                where[jid] = p
        echo(f"epoch {e + 1}: {len(prefixes)} prefix(es) x {n} orders of {k} batches, "
             f"{len(jobs)} job(s) to run")
        t0, done = time.perf_counter(), 0
        failed = []
        try:
            for jid, status, metrics, error in ex.run(jobs):
                done += 1
                if status != "done":
                    failed.append(f"{jid}: {(error or 'no error recorded').splitlines()[0]}")
                    continue
                store.put(e, where[jid], metrics["rows"])
                took["cpu"] += metrics.get("cpu", 0.0)
                took["orders"] += len(metrics["rows"])
                el = time.perf_counter() - t0
                eta = el / done * (len(jobs) - done)
                echo(f"  [{done}/{len(jobs)}] {jid}: {len(metrics['rows'])} orders; ETA {eta:.0f}s")
        except Interrupted as exc:
            echo(f"interrupted: {done} of {len(jobs)} jobs of epoch {e + 1} stored; rerun the same command to resume")
            exc.reported = True
            raise
        finally:
            took["wall"] += time.perf_counter() - t0
        if failed:
            raise TrainwiseError(f"{len(failed)} probe job(s) failed (first: {failed[0][:300]}); fix the cause and "
                                 "rerun the same command: stored orders are kept")
        rows = []
        for p in prefixes:
            have = store.rows(e, p)
            rows += [(p, o, have[o][0], have[o][1]) for o in range(n)]
        epochs.append({"prefixes": prefixes, "rows": rows})
    return epochs, took
