"""What the runner keeps between cells and between runs: data sets in memory, fitted sanitizers
and their sanitized splits on disk, and models that do not depend on the sanitizer.

Disk entries are written atomically (a temporary file, then a rename) under a file lock, so that
several workers building the same entry build it once and a killed run never leaves half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .api import get_profile
from .data import DatasetSplits, ImageSet, validate_splits
from .planning import derive_seed
from .registry import Registry
from .spec import canonical_json


def atomic_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise workers that would build the same cache entry, so it is built once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SharedModels:
    """``Context.shared`` backed by files: values that do not depend on the sanitizer (classifiers
    trained on raw data), computed once per (data set, seed, profile) and the caller's key, and
    reused by every sanitizer's cells and every task."""

    def __init__(self, root: Path, scope: dict[str, Any]) -> None:
        self.root = root
        self.scope = scope
        self.built = 0

    def __call__(self, name: str, build: Callable[[], Any], key: dict[str, Any]) -> Any:
        import torch

        digest = hashlib.sha256(canonical_json([self.scope, name, key]).encode()).hexdigest()[:24]
        path = self.root / "shared" / f"{name}-{digest}.pt"
        with file_lock(path):
            if path.exists():
                # Shared values are built by plugins and may hold any picklable object.
                return torch.load(path, weights_only=False)
            value = build()
            atomic_save(value, path)
            self.built += 1
            return value


@dataclass
class FittedSanitizer:
    """A fitted sanitizer with the attack and test splits it sanitized."""

    sanitizer: Any
    attack: ImageSet
    test: ImageSet


def fitted_path(cache_root: Path, sanitizer: str, key: str) -> Path:
    return cache_root / "sanitizers" / sanitizer / f"{key}.pt"


def load_fitted(path: Path, splits: DatasetSplits) -> FittedSanitizer:
    import torch

    state = torch.load(path, weights_only=False)
    return FittedSanitizer(state["sanitizer"], splits.attack.with_images(state["attack"]),
                           splits.test.with_images(state["test"]))


def save_fitted(path: Path, fitted: FittedSanitizer) -> None:
    atomic_save({"sanitizer": fitted.sanitizer, "attack": fitted.attack.images,
                 "test": fitted.test.images}, path)


_DATA_CACHE: dict[str, DatasetSplits] = {}


def load_dataset(registry: Registry, name: str, params: tuple, profile: str, seed: int) -> DatasetSplits:
    """The splits of a data set, generated or loaded once per process (the last one is kept)."""
    spec = registry.dataset(name)
    merged = {**spec.params, **dict(params)}
    key = canonical_json([name, merged, spec.version, profile, seed])
    if key not in _DATA_CACHE:
        splits = spec.load(profile=get_profile(profile), seed=derive_seed(seed, "dataset", name, merged),
                           **merged)
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
