"""The results database: one SQLite row per (cell, metric), committed as soon as a cell finishes.

A cell's rows are written in one transaction, so a run killed at any moment (even with SIGKILL)
leaves either all of a cell or none of it. Several worker processes may write to the same file:
WAL mode and a generous busy timeout serialise them.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .api import MetricValue

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1

COLUMNS = (
    "cell_key", "metric", "dataset", "task", "sensitive", "sanitizer", "sanitizer_params",
    "sanitizer_label", "kind", "plugin", "plugin_params", "plugin_label", "seed", "profile",
    "value", "ci_low", "ci_high", "better", "role", "is_primary", "chance", "status", "error",
    "wall_time", "device", "provenance", "created_at",
)

_SCHEMA = """
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


@dataclass(frozen=True)
class CellRecord:
    """The keys of one cell, as stored beside each of its values."""

    cell_key: str
    dataset: str
    task: str
    sensitive: str
    sanitizer: str
    sanitizer_params: str
    sanitizer_label: str
    kind: str
    plugin: str
    plugin_params: str
    plugin_label: str
    seed: int
    profile: str


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class ResultStore:
    """A handle on the SQLite file; cheap to open, safe to use from several processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.executescript(_SCHEMA)
            found = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if found is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(found[0]) != SCHEMA_VERSION:
                raise RuntimeError(f"{self.path}: results schema version {found[0]}, this ppbench "
                                   f"reads version {SCHEMA_VERSION}; use a new --store")
            db.commit()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=60.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            raise RuntimeError(f"{self.path}: not a ppbench results database ({exc})") from None
        return db

    def finished_keys(self, statuses: Iterable[str] = ("ok", "error", "n/a")) -> set[str]:
        statuses = tuple(statuses)
        marks = ",".join("?" * len(statuses))
        with closing(self._connect()) as db:
            rows = db.execute(f"SELECT DISTINCT cell_key FROM results WHERE status IN ({marks})",
                              statuses).fetchall()
        return {r[0] for r in rows}

    def commit_cell(self, cell: CellRecord, *, status: str, values: Sequence[MetricValue] = (),
                    error: str | None = None, wall_time: float | None = None,
                    device: str | None = None, provenance: dict[str, Any] | None = None) -> None:
        """Write every value of one finished cell in one transaction (replacing an older attempt)."""
        if status not in ("ok", "error", "n/a"):
            raise ValueError(f"unknown status {status!r}")
        if status == "ok" and not values:
            raise ValueError(f"cell {cell.cell_key}: an ok cell needs at least one value")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        keys = [getattr(cell, c) for c in CellRecord.__dataclass_fields__]
        common = [status, error, wall_time, device, json.dumps(provenance or {}, sort_keys=True), created]
        rows = []
        if status == "ok":
            for v in values:
                rows.append(keys[:1] + [v.name] + keys[1:] + [
                    _finite_or_none(v.value), _finite_or_none(v.ci_low), _finite_or_none(v.ci_high),
                    v.better, v.role, int(v.primary), _finite_or_none(v.chance)] + common)
        else:
            rows.append(keys[:1] + [""] + keys[1:] + [None] * 7 + common)
            rows[-1][COLUMNS.index("is_primary")] = 0
        marks = ",".join("?" * len(COLUMNS))
        with closing(self._connect()) as db:
            with db:  # one transaction: a cell is stored whole or not at all
                db.execute("DELETE FROM results WHERE cell_key = ?", (cell.cell_key,))
                db.executemany(f"INSERT INTO results ({','.join(COLUMNS)}) VALUES ({marks})", rows)

    def delete(self, cell_keys: Iterable[str]) -> None:
        with closing(self._connect()) as db, db:
            db.executemany("DELETE FROM results WHERE cell_key = ?", [(k,) for k in cell_keys])

    def frame(self, cell_keys: Iterable[str] | None = None) -> "pd.DataFrame":
        """All rows (or those of the given cells) as a pandas DataFrame."""
        import pandas as pd

        with closing(self._connect()) as db:
            frame = pd.read_sql_query(f"SELECT {','.join(COLUMNS)} FROM results", db)
        for column in ("value", "ci_low", "ci_high", "chance", "wall_time"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        if cell_keys is not None:
            frame = frame[frame["cell_key"].isin(set(cell_keys))]
        return frame.reset_index(drop=True)
