"""The results store's schema version 2: cells, their values, per-item outcomes and task facts, and
the in-place migration of a version 1 file."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import numpy as np
import pandas as pd
import pytest

from ppbench.api import MetricValue
from ppbench.store import COLUMNS, CellRecord, Fact, ResultStore

# Version 1, verbatim: one row per (cell, metric). The fixture for the migration tests.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    cell_key TEXT NOT NULL,
    metric TEXT NOT NULL,              -- '' on the single row of an error or n/a cell
    dataset TEXT NOT NULL,
    task TEXT NOT NULL,
    sensitive TEXT NOT NULL,
    sanitizer TEXT NOT NULL,
    sanitizer_params TEXT NOT NULL,    -- canonical JSON
    sanitizer_label TEXT NOT NULL,     -- e.g. blur(sigma=2)
    kind TEXT NOT NULL,                -- 'attack' or 'metric'
    plugin TEXT NOT NULL,              -- the attack's or metric's name
    plugin_params TEXT NOT NULL,
    plugin_label TEXT NOT NULL,
    seed INTEGER NOT NULL,             -- the run seed (replicate index), not the derived cell seed
    profile TEXT NOT NULL,
    value REAL,
    ci_low REAL,
    ci_high REAL,
    better TEXT,                       -- 'higher' or 'lower': better for the sanitizer
    role TEXT,                         -- leakage, utility, distortion, diagnostic
    is_primary INTEGER NOT NULL DEFAULT 0,
    chance REAL,
    status TEXT NOT NULL,              -- ok, error, n/a
    error TEXT,
    wall_time REAL,
    device TEXT,
    provenance TEXT,                   -- JSON: versions, git commit, derived seed, host
    created_at TEXT NOT NULL,
    PRIMARY KEY (cell_key, metric)
);
CREATE INDEX IF NOT EXISTS results_by_task ON results (dataset, task);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
V1_COLUMNS = tuple(c for c in COLUMNS if c not in ("scoring", "threat_model"))
NUMERIC = ("value", "ci_low", "ci_high", "chance", "wall_time")


def record(key: str = "k1", kind: str = "attack", plugin: str = "threshold") -> CellRecord:
    return CellRecord(key, "tiny", "secret", "secret", "darken", '{"strength":0.5}',
                      "darken(strength=0.5)", kind, plugin, "{}", plugin, 0, "quick",
                      scoring="attribute" if kind == "attack" else "", threat_model="informed")


def raw_count(path, table: str, key: str) -> int:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(f"SELECT count(*) FROM {table} WHERE cell_key = ?", (key,)).fetchone()[0]


def test_cells_values_items_and_facts_round_trip(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    truth = np.array([0, 1, 2, 1], dtype=np.int64)
    scores = np.array([0.25, 0.5, 1.0, -2.0], dtype=np.float32)
    store.commit_cell(record("a"), status="ok", items={"truth": truth, "scores": scores}, values=[
        MetricValue("accuracy", 0.75, better="lower", role="leakage", primary=True, chance=1 / 3),
        MetricValue("advantage", 0.5, better="lower", role="leakage")],
        wall_time=2.0, device="cpu", provenance={"cell_seed": 7})
    store.commit_cell(record("m", kind="metric", plugin="psnr"), status="ok",
                      values=[MetricValue("psnr", 30.0, better="lower", role="distortion")])

    frame = store.frame()
    assert list(frame.columns) == list(COLUMNS)
    assert list(zip(frame.cell_key, frame.metric)) == [("a", "accuracy"), ("a", "advantage"), ("m", "psnr")]
    first = frame.iloc[0]
    assert (first.value, first.chance, first.is_primary, first.wall_time) == (0.75, 1 / 3, 1, 2.0)
    assert (first.scoring, first.threat_model, first.provenance) == ("attribute", "informed", '{"cell_seed": 7}')
    assert frame.iloc[2].scoring == "" and list(store.frame(["m"]).metric) == ["psnr"]
    assert store.finished_keys() == {"a", "m"}

    items = store.items(["a", "m", "unknown"])
    assert set(items) == {"a"} and set(items["a"]) == {"truth", "scores"}
    assert items["a"]["truth"].dtype == np.int64 and np.array_equal(items["a"]["truth"], truth)
    assert items["a"]["scores"].dtype == np.float32 and np.array_equal(items["a"]["scores"], scores)

    floor = {"truth": truth, "predicted": np.zeros(4, dtype=np.int64), "num_classes": np.array([3])}
    store.put_fact("tiny", "d1", "secret", 0, "quick", "floor", floor)
    store.put_fact("tiny", "d1", "secret", 1, "quick", "floor", {"truth": truth[:2]})
    store.put_fact("other", "d2", "secret", 0, "quick", "priors", {"p": np.array([0.5, 0.5])})
    store.put_fact("tiny", "d1", "secret", 1, "quick", "floor", {"truth": truth[:3]})  # replaces
    facts = store.facts(dataset="tiny", task="secret", profile="quick")
    assert [(f.data_key, f.seed, f.name) for f in facts] == [("d1", 0, "floor"), ("d1", 1, "floor")]
    dataset, data_key, task, seed, profile, name, arrays = facts[0]  # also a plain tuple
    assert (dataset, data_key, task, seed, profile, name) == ("tiny", "d1", "secret", 0, "quick", "floor")
    assert all(np.array_equal(arrays[k], floor[k]) for k in floor) and set(arrays) == set(floor)
    assert np.array_equal(facts[1].arrays["truth"], truth[:3])
    assert isinstance(facts[0], Fact) and len(store.facts()) == 3 and store.facts(task="nope") == []


def test_an_error_cell_has_no_values_or_items_and_one_frame_row(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    store.commit_cell(record(), status="error", error="boom", wall_time=0.5,
                      values=[MetricValue("accuracy", 0.9)], items={"truth": np.arange(3)})
    assert raw_count(store.path, "cell_values", "k1") == 0 and store.items(["k1"]) == {}
    frame = store.frame()
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.metric, row.status, row.error, row.wall_time, row.is_primary) == ("", "error", "boom", 0.5, 0)
    assert np.isnan(row.value) and np.isnan(row.ci_low) and row.scoring == "attribute"
    assert store.finished_keys(("ok",)) == set() and store.finished_keys() == {"k1"}


def test_replacing_an_attempt_removes_its_old_values_and_items(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    store.commit_cell(record(), status="ok", values=[MetricValue("a", 1.0), MetricValue("b", 2.0)],
                      items={"truth": np.arange(5)})
    store.commit_cell(record(), status="ok", values=[MetricValue("c", 3.0)])
    assert list(store.frame().metric) == ["c"] and store.items(["k1"]) == {}
    assert raw_count(store.path, "cell_values", "k1") == 1 and raw_count(store.path, "cells", "k1") == 1

    store.commit_cell(record(), status="ok", values=[MetricValue("d", 4.0)], items={"truth": np.arange(2)})
    store.commit_cell(record(), status="n/a", error="does not apply")
    assert raw_count(store.path, "cell_values", "k1") == 0 and raw_count(store.path, "cell_items", "k1") == 0
    assert list(store.frame().status) == ["n/a"]


def test_a_failed_commit_keeps_the_older_attempt_whole(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    store.commit_cell(record(), status="ok", values=[MetricValue("a", 1.0)], items={"t": np.arange(2)})
    with pytest.raises(sqlite3.IntegrityError):  # two values of one name: fails inside the transaction
        store.commit_cell(record(), status="ok", values=[MetricValue("x", 1.0), MetricValue("x", 2.0)])
    with pytest.raises(ValueError, match="dtype"):  # refused before anything is written
        store.commit_cell(record(), status="ok", values=[MetricValue("y", 1.0)],
                          items={"t": np.array(["text"], dtype=object)})
    assert list(store.frame().metric) == ["a"] and set(store.items(["k1"])["k1"]) == {"t"}


def build_v1(path, *, keep_wal: bool) -> sqlite3.Connection:
    """A version 1 file as the old store wrote it: WAL mode, one row per (cell, metric)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V1_SCHEMA)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    if keep_wal:  # leave the rows in the WAL file: the backup must still hold them
        db.execute("PRAGMA wal_autocheckpoint=0")

    def cell(key, kind, plugin, seed, status, values=(), error=None):
        keys = [key, "tiny", "secret", "secret", "blur", '{"sigma":2}', "blur(sigma=2)", kind, plugin,
                "{}", plugin, seed, "quick"]
        common = [status, error, 1.25, "cpu", '{"ppbench": "0.1.0"}', f"2024-01-0{seed + 1}T00:00:00Z"]
        rows = [keys[:1] + [name, *keys[1:], value, low, high, better, role, primary, chance, *common]
                for name, value, low, high, better, role, primary, chance in values]
        rows = rows or [keys[:1] + ["", *keys[1:], None, None, None, None, None, 0, None, *common]]
        db.executemany(f"INSERT INTO results ({','.join(V1_COLUMNS)}) VALUES "
                       f"({','.join('?' * len(V1_COLUMNS))})", rows)

    cell("c1", "attack", "threshold", 0, "ok", [("accuracy", 0.8, 0.7, 0.9, "lower", "leakage", 1, 0.5),
                                                ("advantage", 0.6, None, None, "lower", "leakage", 0, None)])
    cell("c2", "metric", "psnr", 0, "ok", [("psnr", 31.5, None, None, "lower", "distortion", 1, None)])
    cell("c3", "attack", "cnn", 1, "error", error="RuntimeError: boom (at cnn.py:3)")
    cell("c4", "metric", "fid", 1, "n/a", error="needs images")
    cell("c5", "attack", "threshold", 1, "ok", [("accuracy", 0.55, 0.5, 0.6, "lower", "leakage", 1, 0.5)])
    db.commit()
    return db


def v1_view(path) -> tuple[pd.DataFrame, dict[tuple[str, ...], set[str]]]:
    """What the version 1 store's frame() and finished_keys() gave."""
    with closing(sqlite3.connect(path)) as db:
        frame = pd.read_sql_query(f"SELECT {','.join(V1_COLUMNS)} FROM results ORDER BY rowid", db)
        finished = {}
        for statuses in (("ok", "error", "n/a"), ("ok", "n/a"), ("ok",), ("error",)):
            marks = ",".join("?" * len(statuses))
            finished[statuses] = {r[0] for r in db.execute(
                f"SELECT DISTINCT cell_key FROM results WHERE status IN ({marks})", statuses)}
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame, finished


@pytest.mark.parametrize("keep_wal", [False, True])
def test_a_v1_file_migrates_in_place_after_a_backup(tmp_path, keep_wal):
    path = tmp_path / "results.db"
    writer = build_v1(path, keep_wal=keep_wal)
    before, finished = v1_view(path)
    if keep_wal:
        assert (tmp_path / "results.db-wal").stat().st_size > 0
    else:
        writer.close()

    store = ResultStore(path)
    backup = tmp_path / "results.db.v1.bak"
    assert backup.exists()
    assert v1_view(backup)[0].equals(before)  # the backup is the whole v1 file, WAL content included

    after = store.frame()
    pd.testing.assert_frame_equal(after[list(V1_COLUMNS)], before)
    assert list(after.scoring) == ["attribute", "attribute", "", "attribute", "", "attribute"]
    assert set(after.threat_model) == {""}
    for statuses, keys in finished.items():
        assert store.finished_keys(statuses) == keys
    with closing(sqlite3.connect(path)) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        assert db.execute("SELECT count(*) FROM cells").fetchone()[0] == 5
        assert db.execute("SELECT count(*) FROM cell_values").fetchone()[0] == 4
    assert "results" not in tables and {"cells", "cell_values", "cell_items", "task_facts"} <= tables
    assert version == "2"

    # The migrated file is an ordinary version 2 store: reopening it neither migrates nor backs up.
    store.commit_cell(record("c3"), status="ok", values=[MetricValue("accuracy", 0.6)])
    ResultStore(path)
    assert sorted(p.name for p in tmp_path.glob("*.bak")) == ["results.db.v1.bak"]
    assert store.frame(["c3"]).metric.tolist() == ["accuracy"]
    writer.close()


def test_a_newer_schema_version_is_refused_in_one_line(tmp_path):
    path = tmp_path / "future.db"
    ResultStore(path)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match=r"future\.db.*version 3 is newer") as raised:
        ResultStore(path)
    assert "\n" not in str(raised.value)


def test_an_sqlite_file_of_another_program_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(RuntimeError, match=r"other\.db.*not a ppbench results database"):
        ResultStore(path)
    with closing(sqlite3.connect(path)) as db:  # left untouched
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["notes"]
