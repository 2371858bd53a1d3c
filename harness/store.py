"""The results database: one SQLite row per cell, one per figure it produced, committed as soon as
the cell finishes.

Schema version 2 (see ``_SCHEMA``):

* ``cells``: one row per cell: its keys, status, error, wall time, device and provenance.
* ``cell_values``: one row per figure (metric) of an ok cell.
* ``cell_items``: an attack cell's per-test-item outcomes (``truth``, ``predicted``...) for paired
  statistics, as one compressed ``.npz`` blob of numeric numpy arrays.
* ``task_facts``: what the harness computes once per (dataset, data key, task, seed, profile),
  independent of any sanitizer (the leakage floor's out-of-fold predictions, class priors...),
  also as an ``.npz`` blob of numeric numpy arrays.
* ``meta``: ``schema_version``.

A cell, its values and its items are written in one transaction, so a run killed at any moment
(even with SIGKILL) leaves either all of a cell or none of it. Several worker processes may write to
the same file: WAL mode and a generous busy timeout serialise them.

A version 1 file (one ``results`` table, one row per (cell, metric)) is migrated in place when it is
opened, after a copy of it is saved beside it as ``<name>.v1.bak``.
"""

from __future__ import annotations

import io
import json
import math
import os
import sqlite3
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

from .api import MetricValue
from .permissions import may_write

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SCHEMA_VERSION = 2

# The columns of ``ResultStore.frame()``: one row per (cell, value); a cell without values (error,
# n/a) has one row with metric '' and null figures.
COLUMNS = (
    "cell_key", "metric", "dataset", "task", "sensitive", "sanitizer", "sanitizer_params",
    "sanitizer_label", "kind", "plugin", "plugin_params", "plugin_label", "seed", "profile",
    "scoring", "threat_model",
    "value", "ci_low", "ci_high", "better", "role", "is_primary", "chance", "status", "error",
    "wall_time", "device", "provenance", "created_at",
)

_CELL_COLUMNS = (
    "cell_key", "dataset", "task", "sensitive", "sanitizer", "sanitizer_params", "sanitizer_label",
    "kind", "plugin", "plugin_params", "plugin_label", "seed", "profile", "scoring", "threat_model",
    "status", "error", "wall_time", "device", "provenance", "created_at",
)
_VALUE_COLUMNS = ("cell_key", "name", "value", "ci_low", "ci_high", "better", "role", "is_primary",
                  "chance")

# One statement per entry: they run inside an explicit transaction (executescript would commit).
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cells (
    cell_key TEXT PRIMARY KEY,
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
    scoring TEXT NOT NULL DEFAULT '',  -- an attack's scoring kind ('attribute'...); '' for a metric
    threat_model TEXT NOT NULL DEFAULT '',  -- an attack's threat-model identifier; '' if unknown
    status TEXT NOT NULL,              -- ok, error, n/a
    error TEXT,
    wall_time REAL,
    device TEXT,
    provenance TEXT,                   -- JSON: package and plugin versions, git commit, python,
                                       -- device, run and derived cell seeds, profile
    created_at TEXT NOT NULL           -- UTC, ISO 8601
)""",
    "CREATE INDEX IF NOT EXISTS cells_by_task ON cells (dataset, task)",
    """CREATE TABLE IF NOT EXISTS cell_values (
    cell_key TEXT NOT NULL REFERENCES cells (cell_key) ON DELETE CASCADE,
    name TEXT NOT NULL,                -- the metric's name; never ''
    value REAL,
    ci_low REAL,
    ci_high REAL,
    better TEXT,                       -- 'higher' or 'lower': better for the sanitizer
    role TEXT,                         -- leakage, utility, distortion, diagnostic
    is_primary INTEGER NOT NULL DEFAULT 0,
    chance REAL,
    PRIMARY KEY (cell_key, name)
)""",
    """CREATE TABLE IF NOT EXISTS cell_items (
    cell_key TEXT PRIMARY KEY REFERENCES cells (cell_key) ON DELETE CASCADE,
    payload BLOB NOT NULL              -- np.savez_compressed of {name: numeric array}
)""",
    """CREATE TABLE IF NOT EXISTS task_facts (
    dataset TEXT NOT NULL,
    data_key TEXT NOT NULL,            -- what identifies the generated or loaded data
    task TEXT NOT NULL,
    seed INTEGER NOT NULL,             -- the run seed
    profile TEXT NOT NULL,
    name TEXT NOT NULL,
    payload BLOB NOT NULL,             -- np.savez_compressed of {name: numeric array}
    created_at TEXT NOT NULL,
    PRIMARY KEY (dataset, data_key, task, seed, profile, name)
)""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
)


@dataclass(frozen=True)
class CellRecord:
    """The keys of one cell, as stored in its ``cells`` row."""

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
    scoring: str = ""  # an attack's scoring kind ('attribute'...); '' for a metric
    threat_model: str = ""  # an attack's threat-model identifier; '' when unknown


class Fact(NamedTuple):
    """One stored task fact (a tuple, so it also unpacks as one)."""

    dataset: str
    data_key: str
    task: str
    seed: int
    profile: str
    name: str
    arrays: dict[str, "np.ndarray"]


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def pack_arrays(arrays: Mapping[str, Any]) -> bytes:
    """A dict of numeric numpy arrays as compressed ``.npz`` bytes (no pickles: objects are refused)."""
    import numpy as np

    checked = {}
    for name, array in arrays.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"array name {name!r}: need a non-empty string without '/'")
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"array {name!r}: dtype {array.dtype} is not bool, integer or float")
        checked[name] = array
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **checked)
    return buffer.getvalue()


def unpack_arrays(payload: bytes) -> dict[str, "np.ndarray"]:
    """The inverse of :func:`pack_arrays`."""
    import numpy as np

    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


class StoreError(RuntimeError):
    """The results file cannot serve as a store: not a ppbench results store, unreadable, or
    read-only. The message is one line that names the file."""


_SQLITE_HEADER = b"SQLite format 3\x00"


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_store(path: str | Path, *, write: bool) -> None:
    """Raise :class:`StoreError` with one line when ``path`` cannot serve as a results store
    (for writing, with ``write``), before any work is done: a file that is not a ppbench results
    store, a folder, a store or a folder that cannot be written (SQLite writes its journal files
    beside the store, so a read-only folder is as fatal as a read-only file). A missing store is
    fine for writing when its folder can be created; checking for reading leaves it to the caller.
    An existing store is opened, which also checks (and migrates) its schema."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise StoreError(f"not a ppbench results store: {path} (a folder)")
    if path.exists():
        if not os.access(path, os.R_OK):
            raise StoreError(f"cannot read the results store {path}: permission denied")
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
        if header and header != _SQLITE_HEADER:
            raise StoreError(f"not a ppbench results store: {path}")
        if write:
            for written in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                if written.exists() and not may_write(written):
                    raise StoreError(f"the results store {written} is read-only; make it writable "
                                     f"or pass another --store")
            if not may_write(folder):
                raise StoreError(f"the results store {path} is in a read-only folder ({folder}: "
                                 f"SQLite writes its journal beside the store); pass another --store")
        try:
            ResultStore(path)  # raises StoreError for a file it cannot use
        except sqlite3.Error as exc:
            raise StoreError(_database_error(path, exc)) from None
    elif write:
        existing = _nearest_existing(folder)
        if not existing.is_dir():
            raise StoreError(f"cannot create the results store {path}: {existing} is not a folder")
        if not may_write(existing):
            raise StoreError(f"cannot create the results store {path}: the folder {existing} is "
                             f"read-only; pass another --store")


def _database_error(path: Path, exc: sqlite3.DatabaseError) -> str:
    """One line for an SQLite error met while opening a store: a file that is no database, or one
    that cannot be used (read-only, locked)."""
    if isinstance(exc, sqlite3.OperationalError):
        return f"cannot use the results store {path}: {exc}"
    return f"not a ppbench results store: {path} ({exc})"


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _owner_is_dead(owner: str) -> bool:
    """A lease owner (``host:pid:nonce``) on this machine whose process is gone: no need to wait
    for its lease to lapse. Owners on other machines are trusted until their lease expires."""
    import os
    import socket

    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class ResultStore:
    """A handle on the SQLite file; cheap to open, safe to use from several processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(self._connect()) as db:
                if self._version(db) != SCHEMA_VERSION:
                    with self._write(db):  # re-read under the write lock: another process may race
                        version = self._version(db)
                        if version is None:
                            for statement in _SCHEMA:
                                db.execute(statement)
                            db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                                       (str(SCHEMA_VERSION),))
                        elif version == 1:
                            self._migrate_from_v1(db)
                        elif version != SCHEMA_VERSION:
                            raise StoreError(
                                f"{self.path}: results schema version {version} is newer than this "
                                f"ppbench reads ({SCHEMA_VERSION}); upgrade ppbench or use a new --store")
        except sqlite3.DatabaseError as exc:
            raise StoreError(_database_error(self.path, exc)) from None

    # -- connections -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A connection in autocommit mode: writers open their transactions with :meth:`_write`."""
        try:
            db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the results database ({exc})") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreError(_database_error(self.path, exc)) from None
        return db

    @staticmethod
    @contextmanager
    def _write(db: sqlite3.Connection) -> Iterator[None]:
        """One write transaction, holding the write lock from its start (no upgrade deadlocks)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _version(self, db: sqlite3.Connection) -> int | None:
        """The file's schema version; None for a new (empty) file."""
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        found = None
        if "meta" in tables:
            found = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if found is None:
            raise StoreError(f"{self.path}: an SQLite file but not a ppbench results database "
                               f"(no schema version); use a new --store")
        try:
            return int(found[0])
        except (TypeError, ValueError):
            raise StoreError(f"{self.path}: unreadable results schema version {found[0]!r}") from None

    # -- migration ---------------------------------------------------------------------------------

    def _backup_path(self) -> Path:
        backup = self.path.with_name(self.path.name + ".v1.bak")
        number = 2
        while backup.exists():  # never overwrite an earlier backup
            backup = self.path.with_name(f"{self.path.name}.v1.{number}.bak")
            number += 1
        return backup

    def _migrate_from_v1(self, db: sqlite3.Connection) -> None:
        """Rewrite a version 1 file as version 2. Runs inside ``db``'s write transaction."""
        # The copy is taken through SQLite (a separate reader connection, as ``db`` holds the write
        # lock and has written nothing yet), so it includes what still sits in a WAL file.
        backup = self._backup_path()
        with closing(sqlite3.connect(self.path, timeout=60.0)) as source, \
                closing(sqlite3.connect(backup)) as target:
            source.backup(target)
        for statement in _SCHEMA:
            db.execute(statement)
        v1_cell = [c for c in _CELL_COLUMNS if c not in ("scoring", "threat_model")]
        db.execute(
            f"INSERT INTO cells ({','.join(_CELL_COLUMNS)}) "
            f"SELECT {','.join(v1_cell[:13])}, "
            f"CASE WHEN kind = 'attack' THEN 'attribute' ELSE '' END, '', {','.join(v1_cell[13:])} "
            f"FROM results WHERE rowid IN (SELECT min(rowid) FROM results GROUP BY cell_key) "
            f"ORDER BY rowid")
        db.execute(
            f"INSERT INTO cell_values ({','.join(_VALUE_COLUMNS)}) "
            f"SELECT cell_key, metric, {','.join(_VALUE_COLUMNS[2:])} FROM results "
            f"WHERE metric != '' ORDER BY rowid")
        db.execute("DROP TABLE results")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    # -- cells -------------------------------------------------------------------------------------

    def finished_keys(self, statuses: Iterable[str] = ("ok", "error", "n/a")) -> set[str]:
        statuses = tuple(statuses)
        marks = ",".join("?" * len(statuses))
        with closing(self._connect()) as db:
            rows = db.execute(f"SELECT cell_key FROM cells WHERE status IN ({marks})",
                              statuses).fetchall()
        return {r[0] for r in rows}

    def commit_cell(self, cell: CellRecord, *, status: str, values: Sequence[MetricValue] = (),
                    error: str | None = None, wall_time: float | None = None,
                    device: str | None = None, provenance: dict[str, Any] | None = None,
                    items: Mapping[str, Any] | None = None) -> None:
        """Write one finished cell, its values and its per-item outcomes in one transaction,
        replacing an older attempt of the same cell. Values and items are kept for an ok cell
        only; an error or n/a cell is stored without them."""
        if status not in ("ok", "error", "n/a"):
            raise ValueError(f"unknown status {status!r}")
        if status == "ok" and not values:
            raise ValueError(f"cell {cell.cell_key}: an ok cell needs at least one value")
        row = [getattr(cell, c) for c in CellRecord.__dataclass_fields__] + [
            status, error, _finite_or_none(wall_time), device,
            json.dumps(provenance or {}, sort_keys=True), _now()]
        value_rows = []
        payload = None
        if status == "ok":
            for v in values:
                if not v.name:
                    raise ValueError(f"cell {cell.cell_key}: a value needs a name")
                value_rows.append([cell.cell_key, v.name, _finite_or_none(v.value),
                                   _finite_or_none(v.ci_low), _finite_or_none(v.ci_high), v.better,
                                   v.role, int(v.primary), _finite_or_none(v.chance)])
            if items:
                payload = pack_arrays(items)
        with closing(self._connect()) as db, self._write(db):
            # The cascade removes an older attempt's values and items.
            db.execute("DELETE FROM cells WHERE cell_key = ?", (cell.cell_key,))
            db.execute(f"INSERT INTO cells ({','.join(_CELL_COLUMNS)}) "
                       f"VALUES ({','.join('?' * len(_CELL_COLUMNS))})", row)
            db.executemany(f"INSERT INTO cell_values ({','.join(_VALUE_COLUMNS)}) "
                           f"VALUES ({','.join('?' * len(_VALUE_COLUMNS))})", value_rows)
            if payload is not None:
                db.execute("INSERT INTO cell_items (cell_key, payload) VALUES (?, ?)",
                           (cell.cell_key, payload))

    def items(self, cell_keys: Iterable[str]) -> dict[str, dict[str, "np.ndarray"]]:
        """The per-item outcomes of the given cells; cells stored without any are left out."""
        keys = list(dict.fromkeys(cell_keys))
        found: dict[str, dict[str, np.ndarray]] = {}
        with closing(self._connect()) as db:
            for chunk in _chunks(keys):
                marks = ",".join("?" * len(chunk))
                for key, payload in db.execute(
                        f"SELECT cell_key, payload FROM cell_items WHERE cell_key IN ({marks})", chunk):
                    found[key] = unpack_arrays(payload)
        return found

    def frame(self, cell_keys: Iterable[str] | None = None) -> "pd.DataFrame":
        """One row per (cell, value), or one row with metric '' for a cell without values, of all
        cells (or of the given ones) as a pandas DataFrame with :data:`COLUMNS`."""
        import pandas as pd

        source = {c: f"v.{c}" if c in _VALUE_COLUMNS[2:] else f"c.{c}" for c in COLUMNS}
        source.update(metric="COALESCE(v.name, '')", is_primary="COALESCE(v.is_primary, 0)")
        select = ",".join(f"{source[c]} AS {c}" for c in COLUMNS)
        with closing(self._connect()) as db:
            frame = pd.read_sql_query(
                f"SELECT {select} FROM cells c LEFT JOIN cell_values v ON v.cell_key = c.cell_key "
                f"ORDER BY c.rowid, v.rowid", db)
        for column in ("value", "ci_low", "ci_high", "chance", "wall_time"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        if cell_keys is not None:
            frame = frame[frame["cell_key"].isin(set(cell_keys))]
        return frame.reset_index(drop=True)

    # -- task facts --------------------------------------------------------------------------------

    def put_fact(self, dataset: str, data_key: str, task: str, seed: int, profile: str, name: str,
                 arrays: Mapping[str, Any]) -> None:
        """Store (or replace) one fact: a dict of numeric numpy arrays."""
        payload = pack_arrays(arrays)
        with closing(self._connect()) as db, self._write(db):
            db.execute("INSERT OR REPLACE INTO task_facts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (dataset, data_key, task, int(seed), profile, name, payload, _now()))

    def facts(self, dataset: str | None = None, task: str | None = None,
              profile: str | None = None) -> list[Fact]:
        """The stored facts matching the given keys (all when none is given), in key order."""
        where, args = [], []
        for column, wanted in (("dataset", dataset), ("task", task), ("profile", profile)):
            if wanted is not None:
                where.append(f"{column} = ?")
                args.append(wanted)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with closing(self._connect()) as db:
            rows = db.execute(
                f"SELECT dataset, data_key, task, seed, profile, name, payload FROM task_facts{clause} "
                f"ORDER BY dataset, data_key, task, seed, profile, name", args).fetchall()
        return [Fact(*row[:6], unpack_arrays(row[6])) for row in rows]

    # -- sealed runs -------------------------------------------------------------------------------

    def record_seal(self, seal: str, salt: str | None = None) -> None:
        """Record a sealed run's commitment (and its salt, when it is already public)."""
        import json

        with closing(self._connect()) as db, self._write(db):
            row = db.execute("SELECT value FROM meta WHERE key = ?", ("seal:" + seal,)).fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES (?, ?)",
                           ("seal:" + seal, json.dumps({"created": _now(), "salt": salt})))
            elif salt is not None:
                self._reveal(db, seal, salt)

    def reveal_seal(self, seal: str, salt: str) -> None:
        """Publish a sealed run's salt; it must match the recorded commitment."""
        with closing(self._connect()) as db, self._write(db):
            self._reveal(db, seal, salt)

    def _reveal(self, db: sqlite3.Connection, seal: str, salt: str) -> None:
        import json

        from .sealing import SealError, commitment

        if commitment(salt) != seal:
            raise SealError(f"{self.path}: that salt does not match the sealed run {seal[:12]}…")
        row = db.execute("SELECT value FROM meta WHERE key = ?", ("seal:" + seal,)).fetchone()
        if row is None:
            raise SealError(f"{self.path}: no sealed run {seal[:12]}… is recorded here")
        record = json.loads(row[0])
        record["salt"] = salt
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(record), "seal:" + seal))

    def seals(self) -> list[tuple[str, str | None]]:
        """``(commitment, salt or None while unrevealed)`` of the sealed runs, oldest first."""
        import json

        with closing(self._connect()) as db:
            rows = db.execute("SELECT key, value FROM meta WHERE key LIKE 'seal:%'").fetchall()
        records = sorted((json.loads(value)["created"], key[5:], json.loads(value)["salt"])
                         for key, value in rows)
        return [(seal, salt) for _, seal, salt in records]

    # -- leases: several runs on one store share the work ------------------------------------------

    _LEASES = ("CREATE TABLE IF NOT EXISTS leases (lease_key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
               "expires REAL NOT NULL)")

    def claim(self, key: str, owner: str, ttl: float) -> bool:
        """Take the lease on ``key`` for ``ttl`` seconds, unless another owner holds a live one."""
        import time

        with closing(self._connect()) as db, self._write(db):
            db.execute(self._LEASES)
            row = db.execute("SELECT owner, expires FROM leases WHERE lease_key = ?", (key,)).fetchone()
            now = time.time()
            if row is not None and row[0] != owner and row[1] > now and not _owner_is_dead(row[0]):
                return False
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (key, owner, now + ttl))
            return True

    def renew(self, key: str, owner: str, ttl: float) -> None:
        """The heartbeat: a claimant that stops renewing (killed) loses its lease after ``ttl``."""
        import time

        with closing(self._connect()) as db, self._write(db):
            db.execute(self._LEASES)
            db.execute("UPDATE leases SET expires = ? WHERE lease_key = ? AND owner = ?",
                       (time.time() + ttl, key, owner))

    def release(self, key: str, owner: str) -> None:
        with closing(self._connect()) as db, self._write(db):
            db.execute(self._LEASES)
            db.execute("DELETE FROM leases WHERE lease_key = ? AND owner = ?", (key, owner))
