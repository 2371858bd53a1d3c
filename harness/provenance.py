"""Where a result came from: versions, commit, device and seeds, recorded with every cell and
collected back from the rows of a leaderboard."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .planning import dataset_key, version_of
from .registry import Registry

if TYPE_CHECKING:
    import pandas as pd

    from .planning import Cell


_GIT_COMMIT: list[str | None] = []


def git_commit() -> str | None:
    """The commit of the ppbench checkout this code runs from, marked when the tree is dirty."""
    if not _GIT_COMMIT:
        here = Path(__file__).resolve().parent
        try:
            commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=5, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            _GIT_COMMIT.append(commit + ("-dirty" if dirty else ""))
        except (OSError, subprocess.SubprocessError):
            _GIT_COMMIT.append(None)
    return _GIT_COMMIT[0]


def cell_provenance(registry: Registry, cell: "Cell", device: str, cell_seed: int) -> dict[str, Any]:
    import torch

    from . import __version__

    return {
        "ppbench": __version__, "git_commit": git_commit(), "torch": torch.__version__,
        "python": platform.python_version(), "device": device, "run_seed": cell.seed,
        "cell_seed": cell_seed, "profile": cell.profile,
        # Which generated data the cell saw: the board matches its leakage floor by it.
        "data_key": dataset_key(registry, cell.dataset, cell.dataset_params, cell.seal),
        # The spec's [dataset] parameters: a data sweep's boards are told apart by them.
        "data_params": dict(cell.dataset_params),
        **({"seal": cell.seal} if cell.seal else {}),
        # Membership canaries in the fit split (ppbench.membership).
        **({"canaries": cell.canaries} if cell.canaries else {}),
        "dataset": version_of(registry, "datasets", cell.dataset),
        "sanitizer": version_of(registry, "sanitizers", cell.sanitizer.name),
        cell.kind: version_of(registry, cell.kind + "s", cell.plugin.name),
    }


def _distinct(values: Iterable[Any]) -> list[Any]:
    return sorted({v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))},
                  key=str)


def collect_provenance(rows: pd.DataFrame) -> dict[str, Any]:
    """What produced these rows, read from the rows: versions, commits, devices, seeds, dates."""
    cells = rows.drop_duplicates("cell_key")
    records = []
    for cell in cells.itertuples(index=False):
        try:
            records.append((cell, json.loads(cell.provenance) if cell.provenance else {}))
        except (TypeError, json.JSONDecodeError):
            records.append((cell, {}))
    plugins: dict[str, dict[str, list[dict[str, str]]]] = {
        "dataset": {}, "sanitizer": {}, "attack": {}, "metric": {}}
    for cell, prov in records:
        for kind, name in (("dataset", cell.dataset), ("sanitizer", cell.sanitizer),
                           (cell.kind, cell.plugin)):
            entry = prov.get(kind)
            if not isinstance(entry, dict) or kind not in plugins:
                continue
            versions = plugins[kind].setdefault(str(name), [])
            version = {k: str(v) for k, v in sorted(entry.items()) if v not in (None, "")}
            if version not in versions:
                versions.append(version)
    for by_name in plugins.values():
        for versions in by_name.values():
            versions.sort(key=lambda v: json.dumps(v, sort_keys=True))
    created = cells["created_at"].dropna()
    counts = cells["status"].value_counts()
    return {
        "ppbench": _distinct(p.get("ppbench") for _, p in records),
        "git_commit": _distinct(p.get("git_commit") for _, p in records),
        "torch": _distinct(p.get("torch") for _, p in records),
        "python": _distinct(p.get("python") for _, p in records),
        "device": _distinct(list(cells["device"]) + [p.get("device") for _, p in records]),
        "profile": _distinct(cells["profile"]),
        "seeds": sorted({int(s) for s in cells["seed"]}),
        "created": {"first": created.min() if len(created) else None,
                    "last": created.max() if len(created) else None},
        "cells": {"total": int(len(cells)),
                  **{status: int(counts.get(status, 0)) for status in ("ok", "error", "n/a")}},
        "plugins": {kind: dict(sorted(by_name.items())) for kind, by_name in plugins.items()},
    }


def version_text(version: Mapping[str, str]) -> str:
    text = " ".join(v for v in (version.get("distribution"), version.get("version")) if v)
    if version.get("plugin_version"):
        text += f" (plugin v{version['plugin_version']})"
    return text or "unknown"


def provenance_lines(provenance: Mapping[str, Any]) -> list[str]:
    """The provenance block as short lines of text."""
    def listed(key: str) -> str:
        return ", ".join(str(v) for v in provenance.get(key, [])) or "unknown"

    cells = provenance["cells"]
    created = provenance["created"]
    lines = [
        f"ppbench {listed('ppbench')} (git {listed('git_commit')}); torch {listed('torch')}; "
        f"python {listed('python')}",
        f"device: {listed('device')}; profile: {listed('profile')}; seeds: {listed('seeds')}",
        f"results created {created['first']} … {created['last']}: {cells['total']} cells "
        f"({cells['ok']} ok, {cells['error']} error, {cells['n/a']} n/a)",
    ]
    for kind, title in (("dataset", "data set"), ("sanitizer", "sanitizers"),
                        ("attack", "attacks"), ("metric", "metrics")):
        by_name = provenance["plugins"].get(kind, {})
        if by_name:
            entries = [f"{name} — " + "; ".join(version_text(v) for v in versions)
                       for name, versions in by_name.items()]
            lines.append(f"{title}: " + ", ".join(entries))
    return lines


def provenance_once(provenances: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], dict[str, list[str]]]:
    """For boards' provenances keyed by slug: the lines every board shares (said once), and per
    board the lines of its own (only boards that have any)."""
    per_board = {slug: provenance_lines(p) for slug, p in provenances.items()}
    if not per_board:
        return [], {}
    first = next(iter(per_board.values()))
    shared = [line for line in first if all(line in lines for lines in per_board.values())]
    own = {slug: [line for line in lines if line not in shared] for slug, lines in per_board.items()}
    return shared, {slug: lines for slug, lines in own.items() if lines}
