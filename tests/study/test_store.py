"""The results database is checked on opening: a missing, empty, corrupt or foreign file gives one
line naming it and the fix, and is never written into; stored rows with unreadable JSON come back
as failed trials; study.json is read by one checked helper."""

import json
import sqlite3

import pytest

from trainwise.errors import TrainwiseError
from trainwise.study.store import Store, load_study_meta

CFG = dict(regimen="uniform/none", budget=0.5, seed=0)


def make_db(path, n=40):
    store = Store(path)
    for i in range(n):
        store.put(f"t{i}", dict(CFG, seed=i, pad="x" * 200), "done", {"test_acc": 0.5, "pad": "y" * 200})
    store.close()
    return path.read_bytes()


def one_line_error(path, create):
    with pytest.raises(TrainwiseError) as e:
        Store(path, create=create)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_report_mode_refuses_a_missing_or_empty_database(tmp_path):
    """Defect: a 0-byte results.db opened as a fresh, empty database and the report became an empty table."""
    p = tmp_path / "results.db"
    assert "does not exist" in one_line_error(p, create=False)
    assert not p.exists()  # create=False never creates the file
    p.write_bytes(b"")
    assert "is empty" in one_line_error(p, create=False)
    assert p.read_bytes() == b""
    Store(p).close()  # the study (create=True) may start in an empty file: nothing was stored there


@pytest.mark.parametrize("create", [False, True])
@pytest.mark.parametrize("damage", ["truncated", "garbage", "page overwritten"])
def test_corrupt_database_is_one_error_line_and_left_untouched(tmp_path, damage, create):
    """Defect: a truncated or garbage results.db gave a sqlite3.DatabaseError traceback."""
    p = tmp_path / "results.db"
    good = make_db(p)
    bad = {"truncated": good[:len(good) // 2], "garbage": b"not a database\n" * 300,
           "page overwritten": good[:4096 + 20] + b"\xff" * 200 + good[4096 + 220:]}[damage]
    p.write_bytes(bad)
    msg = one_line_error(p, create)
    assert "another --out" in msg and ("corrupt" in msg or "not a readable SQLite database" in msg)
    assert p.read_bytes() == bad  # no schema was written into it


@pytest.mark.parametrize("create", [False, True])
def test_foreign_sqlite_file_is_refused_not_given_a_trials_table(tmp_path, create):
    p = tmp_path / "results.db"
    db = sqlite3.connect(p)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    assert "no trials table" in one_line_error(p, create)
    db = sqlite3.connect(p)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["notes"]
    db.close()


def test_reader_is_not_locked_out_by_the_writer(tmp_path):
    """WAL journaling and a busy timeout: `trainwise report` reads while the study holds a write lock."""
    p = tmp_path / "results.db"
    make_db(p, n=2)
    writer = Store(p)
    assert writer.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert writer.db.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    writer.db.execute("BEGIN EXCLUSIVE")  # without WAL this locks every reader out
    writer.db.execute("DELETE FROM trials WHERE trial_id = 't0'")
    reader = Store.open_existing(p)
    assert [r["trial_id"] for r in reader.rows()] == ["t0", "t1"]  # the last committed state
    reader.close()
    writer.db.rollback()
    writer.close()


def test_unreadable_stored_json_comes_back_as_a_failed_row(tmp_path):
    """A row whose stored metrics or config are not valid JSON is a failed trial (rerun by
    --retry-failed), not a JSONDecodeError traceback in the report."""
    p = tmp_path / "results.db"
    make_db(p, n=3)
    db = sqlite3.connect(p)
    db.execute("UPDATE trials SET metrics = '{\"test_acc\": 0.' WHERE trial_id = 't1'")
    db.execute("UPDATE trials SET config = 'garbage' WHERE trial_id = 't2'")
    db.commit()
    db.close()
    store = Store(p, create=False)
    rows = {r["trial_id"]: r for r in store.rows()}
    assert rows["t0"]["status"] == "done" and rows["t0"]["metrics"]["test_acc"] == 0.5
    for tid in ("t1", "t2"):
        assert rows[tid]["status"] == "failed" and rows[tid]["metrics"] is None
        assert tid in rows[tid]["error"] and "unreadable" in rows[tid]["error"]
        assert store.status(tid) == "failed"
    store.close()


def test_load_study_meta(tmp_path):
    assert load_study_meta(tmp_path) == (None, tmp_path.name)  # no study.json: every stored trial
    (tmp_path / "study.json").write_text(json.dumps({"name": "s", "config": {}, "trial_ids": ["a", "b"]}))
    assert load_study_meta(tmp_path) == ({"a", "b"}, "s")


@pytest.mark.parametrize("text", ['{"name": "s", "trial_ids": ["a"', "[]", '{"name": "s", "trial_ids": "ab"}',
                                  '{"name": 3, "trial_ids": []}', '{"name": "s"}', "\udcff"])
def test_malformed_study_json_is_one_error_line(tmp_path, text):
    (tmp_path / "study.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(TrainwiseError) as e:
        load_study_meta(tmp_path)
    assert "\n" not in str(e.value) and str(tmp_path / "study.json") in str(e.value)
