"""The study's results database: SQLite, one row per trial, keyed by the trial's config hash.

Only the driver process writes to it (executors return result rows), so a study run
partly locally and partly on a cluster stays consistent, and re-running a study skips
the trials already stored as done. The database uses WAL journaling and a busy timeout,
so ``trainwise report`` can read it while a study writes to it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from ..errors import TrainwiseError

SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    regimen  TEXT NOT NULL,
    budget   REAL NOT NULL,
    seed     INTEGER NOT NULL,
    status   TEXT NOT NULL,          -- done | failed
    error    TEXT,
    metrics  TEXT,                   -- JSON result row
    config   TEXT NOT NULL,          -- JSON TrialConfig
    updated  REAL NOT NULL
)
"""
COLUMNS = ["trial_id", "regimen", "budget", "seed", "status", "error", "metrics", "config", "updated"]
BUSY_TIMEOUT_S = 30.0
FIX = "restore it from a backup or rerun the study with another --out"


class Store:
    """The results database at ``path``, checked on opening.

    ``create=True`` (the study) creates the file and the ``trials`` table when the file is
    missing or empty; ``create=False`` (the report) only opens an existing, non-empty
    database. Either way a file that is not an intact SQLite database, or one without the
    ``trials`` table of this schema, raises a one-line ``TrainwiseError``; nothing is ever
    written into such a file.
    """

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if fresh and not create:
            raise TrainwiseError(
                f"results database {self.path} does not exist; pass the directory of a study run by `trainwise study`"
                if not self.path.exists() else f"results database {self.path} is empty; {FIX}")
        try:
            self.db = sqlite3.connect(self.path if create else f"{self.path.resolve().as_uri()}?mode=rw",
                                      uri=not create, timeout=BUSY_TIMEOUT_S)
        except sqlite3.Error as e:
            raise TrainwiseError(f"cannot open results database {self.path} ({e}); {FIX}") from None
        try:
            self._check(fresh, create)
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def open_existing(cls, path: str | Path) -> Store:
        """The existing, non-empty database at ``path`` (for reading it); never creates one."""
        return cls(path, create=False)

    def _check(self, fresh: bool, create: bool) -> None:
        """Check the file's integrity and schema; on a fresh (missing or empty) file create the schema.

        The writer (``create``) turns on WAL; the mode is stored in the file, so readers use it too.
        """
        try:
            if fresh:
                self.db.execute(SCHEMA)
                self.db.commit()
                columns = COLUMNS
            else:
                problem = self.db.execute("PRAGMA integrity_check(1)").fetchone()[0]  # the first problem
                if problem != "ok":
                    problem = " ".join(problem.replace("*** in database main ***", "").split())
                    raise TrainwiseError(f"results database {self.path} is corrupt ({problem[:200]}); {FIX}")
                columns = [r[1] for r in self.db.execute("PRAGMA table_info(trials)")]
            if create and columns == COLUMNS:
                self.db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as e:
            raise TrainwiseError(f"results database {self.path} is not a readable SQLite database ({e}); "
                                 f"{FIX}") from None
        if columns != COLUMNS:
            what = "has no trials table" if not columns else f"has a trials table with other columns {columns}"
            raise TrainwiseError(f"{self.path} is not a trainwise results database (it {what}); {FIX}")

    def status(self, trial_id: str) -> str | None:
        """The stored status, ``"failed"`` for a done row whose stored JSON is unreadable (see ``rows``)."""
        row = self.db.execute("SELECT trial_id, regimen, budget, seed, status, error, metrics, config "
                              "FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
        return _decode(row)["status"] if row else None

    def put(self, trial_id: str, config: dict, status: str, metrics: dict | None = None,
            error: str | None = None) -> None:
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (trial_id, config["regimen"], config["budget"], config["seed"], status, error,
                 json.dumps(metrics) if metrics is not None else None, json.dumps(config), time.time()),
            )
            self.db.commit()
        except sqlite3.Error as e:  # a full disk, a vanished file: the trial's own files are kept
            raise TrainwiseError(f"cannot store trial {trial_id} in {self.path} ({e}); free space or fix the "
                                 "directory and rerun the same command: finished trials resume from their "
                                 "checkpoints") from None

    def rows(self, trial_ids: set[str] | list[str] | None = None) -> list[dict]:
        """The stored rows (those of ``trial_ids`` when given), ordered by regimen, budget, seed.

        A row whose stored metrics or config are not valid JSON (or whose done row has no
        metrics object) comes back with status ``"failed"`` and an error saying so, so the
        report lists it among the failed trials and ``--retry-failed`` reruns it.
        """
        cur = self.db.execute(
            "SELECT trial_id, regimen, budget, seed, status, error, metrics, config FROM trials ORDER BY regimen, budget, seed"
        )
        return [_decode(r) for r in cur if trial_ids is None or r[0] in trial_ids]

    def close(self) -> None:
        self.db.close()


def _decode(row: tuple) -> dict:
    tid, reg, b, seed, status, err, metrics, config = row
    out = dict(trial_id=tid, regimen=reg, budget=b, seed=seed, status=status, error=err, metrics=None, config=None)
    try:
        out["config"] = json.loads(config)
        out["metrics"] = json.loads(metrics) if metrics else None
        if status == "done" and not isinstance(out["metrics"], dict):
            raise ValueError(f"expected a JSON object, got {type(out['metrics']).__name__}")
    except (ValueError, TypeError) as e:
        out.update(status="failed", metrics=None,
                   error=f"the stored metrics/config of trial {tid} are unreadable ({e}); rerun it with --retry-failed")
    return out


def load_study_meta(out: Path) -> tuple[set[str] | None, str]:
    """The trial ids and the name recorded in ``out/study.json``; ``(None, out.name)`` when absent.

    A study.json that cannot be read or does not hold ``{"name": str, "trial_ids": [str, ...]}``
    raises a one-line ``TrainwiseError``.
    """
    path = Path(out) / "study.json"
    if not path.is_file():
        return None, Path(out).name
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"expected a JSON object, got {type(meta).__name__}")
        ids, name = meta.get("trial_ids"), meta.get("name")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError('"trial_ids" is not a list of strings')
        if not isinstance(name, str):
            raise ValueError('"name" is not a string')
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise TrainwiseError(f"{path} is unreadable ({e}); restore it, delete it to report every stored trial, "
                             "or rerun the study to rewrite it") from None
    return set(ids), name
