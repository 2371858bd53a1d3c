"""Sealed runs: test items that nobody can draw again until the run is over.

A data set plugin's loader is public code, and a run's seeds are public too, so an attack could
regenerate the data set and read the test labels. A sealed run (``ppbench run --sealed``) draws
the data with a secret salt as well: 32 random hex digits generated for the run and kept in a
file beside the store that only the harness reads (``<store>.salt``, owner-only permissions),
never in the store, the cache or anything a plugin is handed. The store records a commitment,
the SHA-256 of the salt, so that the salt cannot be changed afterwards. When the run is
published, ``ppbench reveal`` writes the salt into the store; anyone can then verify it against
the commitment and reproduce the run with ``ppbench run --salt <salt>``.

A plugin that runs in the same process as the harness can still find the salt in memory: the
seal protects the data against regeneration, and process isolation protects the salt.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

SALT_BYTES = 16
_PREFIX = "ppbench-seal-v1:"


class SealError(ValueError):
    """A salt that is missing, malformed, or does not match its commitment."""


def new_salt() -> str:
    return secrets.token_hex(SALT_BYTES)


def commitment(salt: str) -> str:
    """The public commitment to a salt: SHA-256 of a prefix and the salt, in hex."""
    return hashlib.sha256((_PREFIX + salt).encode()).hexdigest()


def check_salt(salt: str) -> str:
    salt = salt.strip().lower()
    if len(salt) != 2 * SALT_BYTES or any(c not in "0123456789abcdef" for c in salt):
        raise SealError(f"a salt is {2 * SALT_BYTES} hex digits, got {salt!r}")
    return salt


def salt_file(store: str | os.PathLike) -> Path:
    """Where the harness keeps the salts of a store's sealed runs (never the cache folder)."""
    return Path(f"{store}.salt")


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SealError(f"{path}: not a ppbench salt file ({exc})") from None
    if not isinstance(data, dict):
        raise SealError(f"{path}: not a ppbench salt file")
    return {str(k): str(v) for k, v in data.items()}


def keep_salt(store: str | os.PathLike, salt: str) -> str:
    """Record a salt in the store's salt file (owner-only); returns its commitment."""
    path = salt_file(store)
    salts = _read(path)
    seal = commitment(salt)
    salts[seal] = salt
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(salts, handle, indent=1)
    os.replace(tmp, path)
    return seal


def find_salt(store: str | os.PathLike, seal: str) -> str:
    """The salt behind a commitment, from the store's salt file."""
    salt = _read(salt_file(store)).get(seal)
    if salt is None:
        raise SealError(f"{salt_file(store)} holds no salt for the sealed run {seal[:12]}…; "
                        "it was deleted or the store was moved without it")
    if commitment(salt) != seal:
        raise SealError(f"{salt_file(store)}: the salt for {seal[:12]}… does not match its commitment")
    return salt
