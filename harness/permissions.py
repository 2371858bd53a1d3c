"""Whether ppbench may write a file or folder: the permission check behind the one-line refusals
of a read-only store or cache, made before any work is done."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_ANY_WRITE_BIT = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def may_write(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (a file, or a folder to create files in) may be written.

    Root may write anything, so ``os.access`` alone would let a run as root (as in many
    containers) write into a store or cache somebody marked read-only, such as a published
    results file. A path without a single write bit is therefore read-only for everyone."""
    path = Path(path)
    wanted = os.W_OK | (os.X_OK if path.is_dir() else 0)
    if not os.access(path, wanted):
        return False
    return bool(path.stat().st_mode & _ANY_WRITE_BIT)
