"""What local files hold: a digest per data configuration, so that neither the cache nor the
results store serves what was computed from files that have changed since.

Cell keys name a folder by its path (``root``), which is all ``ppbench leaderboard`` and
``ppbench publish`` can know without the folder. A data set read from local files declares a
``DatasetSpec.revision`` (a digest of its files: names, sizes and modification times), and a run
then

- records each configuration's revision in the store the first time, and refuses, in one line,
  to add to a store whose cells were computed from other contents of the same path;
- mixes the revision into the keys of cached fits and shared models, so an edited folder is
  never answered from the cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping

import numpy as np

from .spec import SpecError

REVISION_FACT = "data_revision"


def folder_digest(*paths: str | os.PathLike[str]) -> str:
    """A digest of every file under ``paths`` (folders walked in sorted order, files taken as
    they are): relative name, size and modification time, not the bytes, so that a folder of
    200,000 images costs a directory walk rather than a read."""
    digest = hashlib.sha256()
    for top in paths:
        top = Path(top)
        digest.update(f"\0top:{top.name}".encode())
        if top.is_file():
            info = top.stat()
            digest.update(f"\0{top.name}\0{info.st_size}\0{info.st_mtime_ns}".encode())
            continue
        for folder, folders, files in os.walk(top):
            folders.sort()
            for name in sorted(files):
                path = Path(folder) / name
                info = path.stat()
                digest.update(f"\0{path.relative_to(top).as_posix()}\0{info.st_size}\0"
                              f"{info.st_mtime_ns}".encode())
    return digest.hexdigest()


def data_revisions(registry: Any, name: str, configs: Iterable[tuple], where: str,
                   needed: Collection[tuple] = ()) -> dict[tuple, str]:
    """Each data configuration's revision (``DatasetSpec.revision``); empty for generated data.
    A configuration whose files cannot be read is an error when it is ``needed`` (cells of it
    will run), and is left out otherwise (its cells are all stored, e.g. on a machine that only
    prints the board)."""
    spec = registry.dataset(name)
    if spec.revision is None:
        return {}
    revisions = {}
    for params in dict.fromkeys(configs):
        try:
            revisions[params] = str(spec.revision({**spec.params, **dict(params)}))
        except (ValueError, OSError, KeyError, TypeError) as exc:
            if params in needed:
                raise SpecError(f"{where}: [dataset] data set {name!r}: cannot read what its files "
                                f"hold: {exc}") from None
    return revisions


def check_store_revisions(store: Any, name: str, revisions: Mapping[str, str], where: str) -> None:
    """Record each data key's revision in ``store``, or refuse (one line) when the store holds
    cells computed from another revision of the same data configuration."""
    known = {fact.data_key: bytes(fact.arrays["sha256"]).hex()
             for fact in store.facts(dataset=name, task="", profile="") if fact.name == REVISION_FACT}
    for data_key, revision in revisions.items():
        recorded = known.get(data_key)
        if recorded is None:
            store.put_fact(name, data_key, "", 0, "", REVISION_FACT,
                           {"sha256": np.frombuffer(bytes.fromhex(revision), dtype=np.uint8)})
        elif recorded != revision:
            raise SpecError(f"{where}: [dataset] data set {name!r}: its files changed since the cells "
                            f"in {store.path} were computed from them (revision {recorded[:12]} "
                            f"then, {revision[:12]} now); use a new --store for the new files (the "
                            f"cache keys fits by revision, so nothing stale is reused)")
