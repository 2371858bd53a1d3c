"""Where the cache lives, and ``ppbench cache info`` / ``ppbench cache prune``.

The cache (see :mod:`~ppbench.cache`) holds fitted sanitizers with their sanitized splits,
``<cache>/sanitizers/<sanitizer>/<key>.pt``, and values shared across sanitizers (classifiers trained
on raw data), ``<cache>/shared/<name>-<digest>.pt``, each with a ``.lock`` file beside it (and a
``.sha256`` checksum file, ``<entry>.pt.sha256``, where the harness writes one). By default
it is a per-user cache folder: ``platformdirs.user_cache_dir("ppbench")`` when ``platformdirs`` is
installed, else ``$XDG_CACHE_HOME/ppbench`` or ``~/.cache/ppbench``; ``$PPBENCH_CACHE`` overrides the
default and ``--cache`` overrides both.

Only files of that layout are ever listed or deleted: pointing ``--cache`` at another folder cannot
make ``prune`` remove anything else.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .permissions import may_write

CACHE_ENV = "PPBENCH_CACHE"
ENTRY_SUFFIX = ".pt"
CHECKSUM_SUFFIX = ".sha256"  # <entry>.pt.sha256: the entry's checksum (see ppbench.cache)
SIDECAR_SUFFIXES = (CHECKSUM_SUFFIX,)  # files named <entry>.pt<suffix>, deleted with the entry


def _sidecars(entry: Path) -> list[Path]:
    return [entry.with_name(entry.name + suffix) for suffix in SIDECAR_SUFFIXES]


def default_cache_dir() -> Path:
    """The per-user cache folder (the default when neither ``--cache`` nor ``$PPBENCH_CACHE`` is set)."""
    try:
        import platformdirs
    except ImportError:
        platformdirs = None
    if platformdirs is not None:
        return Path(platformdirs.user_cache_dir("ppbench"))
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: absolute only
    return base / "ppbench"


def resolve_cache_dir(flag: str | os.PathLike[str] | None = None) -> Path:
    """``--cache`` wins, then ``$PPBENCH_CACHE``, then :func:`default_cache_dir`."""
    if flag:
        return Path(flag).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return default_cache_dir()


class CacheError(OSError):
    """The cache folder cannot be used; the message is one line naming it."""


def check_cache_dir(root: Path) -> None:
    """Raise :class:`CacheError` when ``root`` cannot be created or written (before any work)."""
    if root.exists():
        if not root.is_dir():
            raise CacheError(f"the cache {root} is not a folder; pass another --cache")
        if not may_write(root):
            raise CacheError(f"the cache folder {root} is read-only; pass another --cache or set "
                             f"{CACHE_ENV}")
        return
    existing = next((p for p in root.parents if p.exists()), Path("."))
    if not existing.is_dir() or not may_write(existing):
        raise CacheError(f"cannot create the cache folder {root}: {existing} is not a writable "
                         f"folder; pass another --cache or set {CACHE_ENV}")


@dataclass(frozen=True)
class Entry:
    """One cached value: its file, what kind of entry it is, its size and when it was written."""

    path: Path
    kind: str  # 'sanitizers/<name>' or 'shared'
    size: int  # with its sidecar files
    mtime: float


def entries(root: Path) -> list[Entry]:
    """Every cached value under ``root`` (the layout above; anything else is ignored)."""
    patterns = (("sanitizers/*/*" + ENTRY_SUFFIX, None), ("shared/*" + ENTRY_SUFFIX, "shared"))
    found = []
    for pattern, kind in patterns:
        for path in sorted(root.glob(pattern)):
            if path.name.startswith(".") or not path.is_file():
                continue
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                stat = path.stat()
                size = stat.st_size + sum(s.stat().st_size for s in _sidecars(path) if s.exists())
                found.append(Entry(path, kind or f"sanitizers/{path.parent.name}", size, stat.st_mtime))
    return found


@dataclass
class CacheInfo:
    root: Path
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (entries, bytes)

    @property
    def total(self) -> int:
        return sum(size for _, size in self.by_kind.values())

    @property
    def count(self) -> int:
        return sum(n for n, _ in self.by_kind.values())

    def lines(self) -> list[str]:
        if not self.root.exists():
            return [f"cache: {self.root} (does not exist yet: nothing cached)"]
        out = [f"cache: {self.root}", f"total: {human_size(self.total)} in {_entries(self.count)}"]
        width = max((len(k) for k in self.by_kind), default=0)
        for kind, (n, size) in sorted(self.by_kind.items()):
            out.append(f"  {kind:<{width}}  {human_size(size):>10}  {_entries(n)}")
        return out


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def info(root: Path) -> CacheInfo:
    result = CacheInfo(root)
    for entry in entries(root):
        n, size = result.by_kind.get(entry.kind, (0, 0))
        result.by_kind[entry.kind] = (n + 1, size + entry.size)
    return result


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _try_lock(entry: Path) -> Iterator[bool]:
    """The entry's lock, if no run holds it now (True), else False: an entry being built or read is
    left alone."""
    lock = entry.with_suffix(".lock")
    if not lock.exists():
        yield True
        return
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _entry_of(path: Path) -> Path:
    """The entry a file belongs to: itself, or the entry whose sidecar it is."""
    for suffix in SIDECAR_SUFFIXES:
        if path.name.endswith(ENTRY_SUFFIX + suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


@dataclass
class PruneReport:
    removed: int = 0
    freed: int = 0
    kept: int = 0  # younger than the threshold
    busy: int = 0  # locked by a running job

    def line(self, root: Path) -> str:
        text = f"removed {_entries(self.removed)} ({human_size(self.freed)}) from {root}"
        if self.kept:
            text += f"; kept {self.kept} younger ones"
        if self.busy:
            text += f"; {self.busy} in use by a running job left alone"
        return text


def prune(root: Path, older_than_days: float | None = None, *, now: float | None = None) -> PruneReport:
    """Delete the cache's entries (those written more than ``older_than_days`` days ago, when
    given), their lock files and leftover temporary files, and the folders this empties."""
    report = PruneReport()
    if not root.exists():
        return report
    now = time.time() if now is None else now
    cutoff = None if older_than_days is None else now - older_than_days * 86400
    for entry in entries(root):
        if cutoff is not None and entry.mtime > cutoff:
            report.kept += 1
            continue
        with _try_lock(entry.path) as free:
            if not free:
                report.busy += 1
                continue
            with contextlib.suppress(FileNotFoundError):
                entry.path.unlink()
                report.removed += 1
                report.freed += entry.size
            for sidecar in _sidecars(entry.path):
                with contextlib.suppress(FileNotFoundError):
                    sidecar.unlink()
    # Temporary files a killed run left (".<file>.<pid>.tmp"), and lock and sidecar files whose
    # entry is gone, once old enough and when no job holds the entry's lock; then the folders this
    # empties.
    folders = [root / "shared", *sorted((root / "sanitizers").glob("*"))]
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                entry = _entry_of(folder / path.name[1:].rsplit(".", 2)[0])
            elif path.suffix == ".lock":
                entry = path.with_suffix(ENTRY_SUFFIX)
            elif path.suffix in SIDECAR_SUFFIXES:
                entry = _entry_of(path)
            else:
                continue
            if entry.exists() and path.suffix != ".tmp":
                continue  # the lock or sidecar of an entry that stays
            with contextlib.suppress(FileNotFoundError):
                if cutoff is not None and path.stat().st_mtime > cutoff:
                    continue
                with _try_lock(entry) as free:
                    if free:
                        path.unlink()
    for folder in [*folders, root / "sanitizers"]:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
    return report
