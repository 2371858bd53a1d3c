"""Jobs that run where the result store cannot be reached (a Ray worker on another machine).

The driver alone writes the SQLite store: SQLite over a network file system is unsafe, and a
worker may see no shared folder at all. A detached job carries a snapshot of what its job reads
from the store (the cells already stored, the task facts of its (task, seed)); the job runs
against a :class:`RecordingStore` that answers from the snapshot and records every write. The
writes are handed back after each cell (``on_cell``) and at the end, and the driver replays them
on the real store with :func:`apply_writes`, so a worker lost mid-job costs only its unfinished
cells. The driver holds the job's lease in the store while the job runs.

The cache of fits and shared models lives on a path every worker sees (``--cache`` on a shared
file system), or, with ``cache_transfer``, travels with the job: the driver ships the cached
entry of the job's own fit, when it has one; the worker keeps a cache of its own on local disk
for the run (shared models and an honest reference's fit are built there once per machine); and
the entries a job writes come back to the driver's cache.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .batches import BatchJob, run_any_job
from .cache import fitted_path
from .planning import Cell, Job, RunOptions, dataset_key, fit_key
from .registry import Registry
from .reports import JobReport
from .store import Fact, ResultStore

# A write to replay on the driver's store: the ResultStore method's name and its arguments.
Write = tuple[str, tuple, dict]
_REPLAYABLE = ("commit_cell", "put_fact")
_CHECKSUM = ".sha256"


@dataclass(frozen=True)
class DetachedJob:
    """A job with what it may read of the store and of the cache, and the resources it asks for.
    Executors read ``label``, ``cells`` and ``resources`` of it, as of any job."""

    job: Job | BatchJob
    finished: frozenset[str]
    facts: tuple[Fact, ...]
    resources: Mapping[str, float] = field(default_factory=dict)
    # cache path relative to the cache root -> file contents (only when the cache travels)
    cache_files: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.job.label

    @property
    def cells(self) -> tuple[Cell, ...]:
        return self.job.cells


@dataclass
class DetachedOutcome:
    """A detached job's report, the writes not yet handed back, and (with ``cache_transfer``) the
    cache entries it wrote."""

    report: JobReport
    writes: list[Write]
    cache_files: dict[str, bytes] = field(default_factory=dict)


class RecordingStore:
    """The part of :class:`~ppbench.store.ResultStore` that a job uses, answered from a snapshot
    and recording writes. Leases always succeed: the driver holds them."""

    def __init__(self, finished: Iterable[str], facts: Iterable[Fact]) -> None:
        self._finished = set(finished)
        self._facts = list(facts)
        self._writes: list[Write] = []

    def finished_keys(self, statuses: Iterable[str] = ("ok", "error", "n/a")) -> set[str]:
        return set(self._finished)

    def facts(self, dataset: str | None = None, task: str | None = None,
              profile: str | None = None) -> list[Fact]:
        return [fact for fact in self._facts
                if (dataset is None or fact.dataset == dataset) and (task is None or fact.task == task)
                and (profile is None or fact.profile == profile)]

    def put_fact(self, dataset: str, data_key: str, task: str, seed: int, profile: str, name: str,
                 arrays: Mapping[str, Any]) -> None:
        self._facts.append(Fact(dataset, data_key, task, seed, profile, name, dict(arrays)))
        self._writes.append(("put_fact", (dataset, data_key, task, seed, profile, name, dict(arrays)), {}))

    def commit_cell(self, cell: Any, **fields: Any) -> None:
        self._finished.add(cell.cell_key)
        self._writes.append(("commit_cell", (cell,), fields))

    def claim(self, key: str, owner: str, ttl: float) -> bool:
        return True

    def renew(self, key: str, owner: str, ttl: float) -> None:
        pass

    def release(self, key: str, owner: str) -> None:
        pass

    def flush(self) -> list[Write]:
        """The writes since the last flush."""
        writes, self._writes = self._writes, []
        return writes


def apply_writes(store: ResultStore, writes: Iterable[Write]) -> None:
    """Replay a detached job's writes on the driver's store."""
    for method, args, kwargs in writes:
        if method not in _REPLAYABLE:  # records come from worker processes: replay only these
            raise ValueError(f"a detached job sent an unknown store write {method!r}")
        getattr(store, method)(*args, **kwargs)


def detach(job: Job, store: ResultStore, registry: Registry, options: RunOptions,
           resources: Mapping[str, float], cache_transfer: bool) -> DetachedJob:
    """The detached form of ``job``: the store's snapshot it reads and, when the cache travels,
    the driver's cache entry of its fit (with its checksum)."""
    facts = tuple(store.facts(dataset=job.dataset, task=job.task.name, profile=job.profile))
    keys = {cell.key for cell in job.cells}
    finished = frozenset(store.finished_keys() & keys)
    files: dict[str, bytes] = {}
    if cache_transfer:
        root = Path(options.cache_dir)
        # A job's own fit; a batch job's, one per cell.
        for sanitizer in dict.fromkeys(cell.sanitizer for cell in job.cells):
            key = fit_key(registry, job.dataset, job.dataset_params, job.task, sanitizer, job.seed,
                          job.profile, job.seal, options.revision_of(
                              dataset_key(registry, job.dataset, job.dataset_params, job.seal)),
                          canaries=job.cells[0].canaries if job.cells else 0)
            path = fitted_path(root, sanitizer.name, key)
            for entry in (path, path.with_name(path.name + _CHECKSUM)):
                if entry.exists():
                    files[str(entry.relative_to(root))] = entry.read_bytes()
    return DetachedJob(job, finished, tuple(fact for fact in facts if fact.seed == job.seed),
                       dict(resources), files)


def _worker_cache(run_id: str) -> Path:
    """This machine's cache for a run whose cache travels: shared by the run's jobs here."""
    path = Path(tempfile.gettempdir()) / f"ppbench-worker-cache-{run_id}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _snapshot_files(root: Path) -> dict[str, float]:
    return {str(path.relative_to(root)): path.stat().st_mtime
            for path in root.rglob("*") if path.is_file() and not path.name.endswith((".lock", ".tmp"))}


def run_detached_job(detached: DetachedJob, options: RunOptions, *, cache_transfer: bool = False,
                     on_cell: Callable[[Cell, list[Write]], None] | None = None) -> DetachedOutcome:
    """Run a detached job against a :class:`RecordingStore`. ``on_cell(cell, writes)`` is called
    as each cell finishes, with the writes since the last call (the cell's, and any fact before
    it); the outcome holds the rest."""
    recording = RecordingStore(detached.finished, detached.facts)
    if cache_transfer:
        root = _worker_cache(options.run_id)
        for relative, contents in detached.cache_files.items():
            target = root / relative
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                temporary.write_bytes(contents)
                os.replace(temporary, target)
        options = replace(options, cache_dir=str(root))
        before = _snapshot_files(root)

    def cell_done(cell: Cell, status: str) -> None:
        if on_cell is not None:
            on_cell(cell, recording.flush())

    report = run_any_job(detached.job, options, cell_done, store=recording)
    outcome = DetachedOutcome(report, recording.flush())
    if cache_transfer:
        after = _snapshot_files(root)
        outcome.cache_files = {relative: (root / relative).read_bytes()
                               for relative, mtime in after.items() if before.get(relative) != mtime}
    return outcome


def receive_cache_files(cache_root: Path, files: Mapping[str, bytes]) -> None:
    """Keep the cache entries a detached job wrote in the driver's cache. Paths must stay inside
    the cache; every entry is checked against its checksum when it is next loaded."""
    root = cache_root.resolve()
    # Entries before their checksums: a reader never meets a checksum without its entry.
    for relative, contents in sorted(files.items(), key=lambda item: item[0].endswith(_CHECKSUM)):
        target = (root / relative).resolve()
        if root not in target.parents:
            raise ValueError(f"a detached job sent a cache file outside the cache: {relative!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_bytes(contents)
        os.replace(temporary, target)


class LeaseKeeper:
    """Holds the store leases of the jobs a cluster runs, renewing them all from one thread until
    each is released (a run killed mid-way lets them lapse for another run to take over)."""

    def __init__(self, store: ResultStore, owner: str, ttl: float) -> None:
        self.store, self.owner, self.ttl = store, owner, ttl
        self.held: set[str] = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="ppbench-leases")
        self.thread.start()

    def claim(self, key: str) -> bool:
        if not self.store.claim(key, self.owner, self.ttl):
            return False
        with self.lock:
            self.held.add(key)
        return True

    def release(self, key: str) -> None:
        with self.lock:
            self.held.discard(key)
        self.store.release(key, self.owner)

    def _beat(self) -> None:
        while not self.stopped.wait(self.ttl / 3):
            with self.lock:
                keys = sorted(self.held)
            for key in keys:
                try:
                    self.store.renew(key, self.owner, self.ttl)
                except Exception:  # noqa: BLE001 - a missed beat only risks duplicate work
                    pass

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        for key in sorted(self.held):
            self.release(key)
