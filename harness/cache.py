"""What the runner keeps between cells and between runs: data sets in memory, fitted sanitizers
and their sanitized splits on disk, and models that do not depend on the sanitizer.

Disk entries are written atomically (a temporary file, then a rename) under a file lock, so that
several workers building the same entry build it once and a killed run never leaves half a file.
Each entry has a ``.sha256`` file beside it, written after it: an entry whose checksum is missing
or does not match, or that does not load, is reported with its path, deleted and recomputed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .api import get_profile
from .cache_admin import CHECKSUM_SUFFIX
from .data import DatasetSplits, ImageSet, validate_splits
from .pixels import compact, expand, is_stored_form
from .planning import derive_seed
from .profiling import phase
from .registry import Registry
from .spec import SpecError, canonical_json


class CorruptEntry(Exception):
    """A cache entry that cannot be trusted; the caller deletes and recomputes it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cache entry {path} is corrupt ({reason})")
        self.path = path
        self.reason = reason


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def atomic_save(obj: Any, path: Path) -> None:
    """Save ``obj`` with torch.save, then its checksum (an entry without one is never trusted)."""
    import torch

    _atomic_write(path, lambda tmp: torch.save(obj, tmp))
    digest = file_digest(path)
    _atomic_write(_checksum_path(path), lambda tmp: tmp.write_text(digest + "\n"))


def verified_load(path: Path, *, weights_only: bool) -> Any:
    """torch.load an entry after checking it against its checksum; :class:`CorruptEntry` if the
    checksum is missing or differs, or the file does not load."""
    import torch

    try:
        expected = _checksum_path(path).read_text().strip()
    except OSError:
        raise CorruptEntry(path, "no checksum file beside it") from None
    actual = file_digest(path)
    if actual != expected:
        raise CorruptEntry(path, f"checksum {actual[:12]}… differs from the recorded {expected[:12]}…")
    try:
        return torch.load(path, weights_only=weights_only)
    except Exception as exc:  # noqa: BLE001 - whatever unpickling raises, the entry is unusable
        raise CorruptEntry(path, f"it does not load: {type(exc).__name__}: {exc}") from None


def discard(entry: CorruptEntry) -> None:
    """Report a corrupt entry on stderr, and delete it and its checksum."""
    print(f"ppbench: {entry}; deleted, recomputing", file=sys.stderr)
    for path in (entry.path, _checksum_path(entry.path)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class HeldLock:
    """An exclusive lock on a cache entry (its ``.lock`` file), held until :meth:`release`:
    workers that would build the same entry build it once, and a lock can also be held across
    the messages of a sandboxed build."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle: Any = open(path.with_suffix(".lock"), "w")
        fcntl.flock(self.handle, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    lock = HeldLock(path)
    try:
        yield
    finally:
        lock.release()


class SharedModels:
    """``Context.shared`` backed by files: values that do not depend on the sanitizer (classifiers
    trained on raw data), computed once per (data set, seed, profile) and the caller's key, and
    reused by every sanitizer's cells and every task."""

    def __init__(self, root: Path, scope: dict[str, Any]) -> None:
        self.root = root
        self.scope = scope
        self.built = 0

    def path(self, name: str, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(canonical_json([self.scope, name, key]).encode()).hexdigest()[:24]
        return self.root / "shared" / f"{name}-{digest}.pt"

    def lookup(self, name: str, key: dict[str, Any]) -> tuple[bool, Any, "HeldLock | None"]:
        """For a value built elsewhere (a sandboxed plugin): ``(True, value, None)`` when cached,
        else ``(False, None, lock)`` with the entry's lock held until :meth:`store` releases it."""
        path = self.path(name, key)
        lock = HeldLock(path)
        if path.exists():
            try:
                with phase("cache"):
                    value = verified_load(path, weights_only=False)
                lock.release()
                return True, value, None
            except CorruptEntry as corrupt:
                discard(corrupt)
        return False, None, lock

    def store(self, name: str, key: dict[str, Any], value: Any, lock: "HeldLock | None") -> None:
        try:
            with phase("cache"):
                atomic_save(value, self.path(name, key))
            self.built += 1
        finally:
            if lock is not None:
                lock.release()

    def __call__(self, name: str, build: Callable[[], Any], key: dict[str, Any]) -> Any:
        path = self.path(name, key)
        with file_lock(path):
            if path.exists():
                try:
                    # Shared values are built by plugins and may hold any picklable object.
                    with phase("cache"):
                        return verified_load(path, weights_only=False)
                except CorruptEntry as corrupt:
                    discard(corrupt)
            value = build()
            with phase("cache"):
                atomic_save(value, path)
            self.built += 1
            return value


@dataclass
class FittedSanitizer:
    """A fitted sanitizer with the attack and test splits it sanitized."""

    sanitizer: Any
    attack: ImageSet
    test: ImageSet
    notes: tuple[str, ...] = ()  # what the harness converted in the sanitizer's output
    # What the sanitizer recorded per item, by split ("attack", "test") and name: for metrics only.
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A release-mode sanitizer's surrogate set (ppbench.release). ``attack`` is then the same set
    # and ``test`` the raw test split: what an attribute attack trains and predicts on.
    release: ImageSet | None = None
    # The data set's other identities (``DatasetSplits.other_identities``) sanitized, when it
    # has them: what a re-identification attacker who retrains on sanitized images holds.
    other_identities: ImageSet | None = None


def released_fit(sanitizer: Any, release: ImageSet, splits: DatasetSplits,
                 notes: tuple[str, ...] = ()) -> FittedSanitizer:
    """A release-mode fit as cells see it (see :class:`FittedSanitizer`)."""
    return FittedSanitizer(sanitizer, release, splits.test, notes, {}, release)


def _load_release(path: Path, state: dict[str, Any], splits: DatasetSplits) -> ImageSet:
    import torch

    images, labels = state["release"], state.get("release_labels")
    if not is_stored_form(images) or tuple(images.shape[1:]) != tuple(splits.train.images.shape[1:]):
        raise CorruptEntry(path, "its release is not a stored tensor of the data's item shape")
    attributes = splits.train.attributes
    if not isinstance(labels, dict) or not labels or any(
            name not in attributes or not isinstance(values, torch.Tensor)
            or values.dtype != torch.int64 or tuple(values.shape) != (len(images),)
            for name, values in labels.items()):
        raise CorruptEntry(path, "its released labels do not match the release and the data")
    return ImageSet(expand(images), dict(labels), {name: attributes[name] for name in labels})


def fitted_path(cache_root: Path, sanitizer: str, key: str) -> Path:
    return cache_root / "sanitizers" / sanitizer / f"{key}.pt"


def load_fitted(path: Path, splits: DatasetSplits) -> FittedSanitizer:
    """The cached fit; :class:`CorruptEntry` when the entry fails its checksum or is malformed."""
    state = verified_load(path, weights_only=False)
    if isinstance(state, dict) and {"sanitizer", "release"} <= set(state):
        notes = state.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
            raise CorruptEntry(path, "its notes are not a list of strings")
        return released_fit(state["sanitizer"], _load_release(path, state, splits), splits,
                            tuple(notes))
    if not isinstance(state, dict) or not {"sanitizer", "attack", "test"} <= set(state):
        raise CorruptEntry(path, "not a fitted-sanitizer entry")
    for name, split in (("attack", splits.attack), ("test", splits.test)):
        if not is_stored_form(state[name]) or state[name].shape != split.images.shape:
            raise CorruptEntry(path, f"its sanitized {name} split is not a stored tensor of "
                                     "the data's shape")
    notes = state.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise CorruptEntry(path, "its notes are not a list of strings")
    records = state.get("records", {})
    if not isinstance(records, dict):
        raise CorruptEntry(path, "its records are not a dict")
    for name, split in (("attack", splits.attack), ("test", splits.test)):
        split_records = records.get(name, {})
        if not isinstance(split_records, dict) or any(
                tuple(getattr(values, "shape", ()))[:1] != (len(split),) for values in split_records.values()):
            raise CorruptEntry(path, f"its records of the {name} split do not match the data")
    # The other identities are sanitized only for a run whose attacks retrain on them
    # (jobs.py): an entry without them is whole; one with them must match the data.
    others = None
    stored = state.get("other_identities")
    if stored is not None:
        if (splits.other_identities is None or not is_stored_form(stored)
                or stored.shape != splits.other_identities.images.shape):
            raise CorruptEntry(path, "its sanitized other-identities split does not match the data")
        others = splits.other_identities.with_images(expand(stored))
    return FittedSanitizer(state["sanitizer"], splits.attack.with_images(expand(state["attack"])),
                           splits.test.with_images(expand(state["test"])), tuple(notes), records,
                           other_identities=others)


def save_fitted(path: Path, fitted: FittedSanitizer) -> None:
    """Save a fit, its sanitized splits (or its release) in their compact stored form
    (:mod:`~ppbench.pixels`)."""
    if fitted.release is not None:
        atomic_save({"sanitizer": fitted.sanitizer, "release": compact(fitted.release.images),
                     "release_labels": dict(fitted.release.labels), "notes": list(fitted.notes)},
                    path)
        return
    state = {"sanitizer": fitted.sanitizer, "attack": compact(fitted.attack.images),
             "test": compact(fitted.test.images), "notes": list(fitted.notes),
             "records": fitted.records}
    if fitted.other_identities is not None:
        state["other_identities"] = compact(fitted.other_identities.images)
    atomic_save(state, path)


_DATA_CACHE: dict[str, DatasetSplits] = {}


def forget_datasets() -> None:
    """Drop the data sets held in memory (after a plugin wrote into them): the next
    :func:`load_dataset` generates or loads them again."""
    _DATA_CACHE.clear()


def load_dataset(registry: Registry, name: str, params: tuple, profile: str, seed: int,
                 salt: str | None = None) -> DatasetSplits:
    """The splits of a data set, generated or loaded once per process (the last one is kept).

    ``salt``: a sealed run's secret. The loader's seed then derives from it too, so that nobody
    without the salt can draw the same items again, whatever they know of the run's seeds."""
    spec = registry.dataset(name)
    merged = {**spec.params, **dict(params)}
    key = canonical_json([name, merged, spec.version, profile, seed, salt])
    if key not in _DATA_CACHE:
        parts = [seed, "dataset", name, merged] + ([{"salt": salt}] if salt else [])
        splits = spec.load(profile=get_profile(profile), seed=derive_seed(*parts), **merged)
        if not isinstance(splits, DatasetSplits):
            raise TypeError(f"load() must return a DatasetSplits, got {type(splits).__name__}")
        # A loader may refine the registered attributes (e.g. the number of identities is a
        # parameter); the splits' own descriptions win.
        attributes = {**spec.attribute_map(), **splits.train.attributes}
        validate_splits(splits, attributes, f"data set {name!r}")
        for _, split in splits.items():
            split.attributes = dict(attributes)
        _DATA_CACHE.clear()  # one data set at a time in memory: matrices iterate data sets outermost
        _DATA_CACHE[key] = splits
    return _DATA_CACHE[key]


def check_dataset_inputs(registry: Registry, name: str, configs: Iterable[tuple], tasks: Iterable[Any],
                         profile: str, where: str) -> list[str]:
    """Run a local data set's ``check`` (``DatasetSpec.check``) on each data configuration, before
    any work: a missing or malformed folder is one :class:`~ppbench.spec.SpecError` naming
    ``where`` (the spec), not an error stored in every cell. Returns the checks' notes."""
    spec = registry.dataset(name)
    if spec.check is None:
        return []
    notes: list[str] = []
    tasks = tuple(dict.fromkeys(tasks))
    for params in dict.fromkeys(configs):
        try:
            notes.extend(spec.check(get_profile(profile), tasks, {**spec.params, **dict(params)}))
        except (ValueError, OSError) as exc:
            raise SpecError(f"{where}: [dataset] {exc}") from None
    return list(dict.fromkeys(notes))
