"""The study's results database: SQLite, one row per trial, keyed by the trial's config hash.

Only the driver process writes to it (executors return result rows), so a study run
partly locally and partly on a cluster stays consistent, and re-running a study skips
the trials already stored as done.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

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


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path)
        self.db.execute(SCHEMA)
        self.db.commit()

    def status(self, trial_id: str) -> str | None:
        row = self.db.execute("SELECT status FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
        return row[0] if row else None

    def put(self, trial_id: str, config: dict, status: str, metrics: dict | None = None,
            error: str | None = None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (trial_id, config["regimen"], config["budget"], config["seed"], status, error,
             json.dumps(metrics) if metrics is not None else None, json.dumps(config), time.time()),
        )
        self.db.commit()

    def rows(self, trial_ids: list[str] | None = None) -> list[dict]:
        cur = self.db.execute(
            "SELECT trial_id, regimen, budget, seed, status, error, metrics, config FROM trials ORDER BY regimen, budget, seed"
        )
        out = []
        for tid, reg, b, seed, status, err, metrics, config in cur:
            if trial_ids is not None and tid not in trial_ids:
                continue
            out.append(dict(trial_id=tid, regimen=reg, budget=b, seed=seed, status=status, error=err,
                            metrics=json.loads(metrics) if metrics else None, config=json.loads(config)))
        return out

    def close(self) -> None:
        self.db.close()
