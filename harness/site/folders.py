"""Reading published benchmark folders (``leaderboards/<benchmark>/``) for the site.

The site is built from the committed files, not from results stores: a folder's
``benchmark.toml``, ``leaderboard.json``, ``provenance.json`` and figures are all it needs, so
every published benchmark gets its pages even when the store it was published from is gone.
Older folders whose JSON lacks the newer per-cell fields (wall time, diagnostics, messages) load
as they are; the pages say what was not recorded.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..boards.references import compare_references
from ..budget_curves import BUDGET_CAPTION, BUDGET_PREFIX
from ..data_curves import DATA_CAPTION, DATA_CURVES_PREFIX
from ..membership_roc import ROC_CAPTION, ROC_PREFIX
from ..spec import Reference, SpecError, spec_from_dict
from ..sweep_curves import CURVES_PREFIX

# Each figure a folder may hold, by file-name prefix (``<prefix><board slug>.png``), with what
# it shows; in the order the pages show them.
FIGURES: tuple[tuple[str, str], ...] = (
    ("tradeoff-", "privacy–utility trade-off"),
    (CURVES_PREFIX, "trade-off by swept parameter"),
    (BUDGET_PREFIX, BUDGET_CAPTION),
    (DATA_CURVES_PREFIX, DATA_CAPTION),
    (ROC_PREFIX, ROC_CAPTION),
    ("points-", "example outputs: sanitized test points"),
    ("strip-", "example outputs"),
)


@dataclass
class Benchmark:
    """One published folder, as the site reads it."""

    folder: Path
    name: str
    description: str
    spec_text: str
    boards: list[dict[str, Any]]
    provenance: dict[str, Any]
    references: tuple[Reference, ...] = ()
    figures: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # slug -> (file, caption)
    problems: list[str] = field(default_factory=list)  # what could not be read, shown on the page

    @property
    def dir_name(self) -> str:
        return self.folder.name


def _references(spec: dict[str, Any], source: str, problems: list[str]) -> tuple[Reference, ...]:
    if not spec.get("reference"):
        return ()
    try:
        return spec_from_dict(spec, source).references
    except (SpecError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"the spec's [[reference]] tables could not be read: {exc}")
        return ()


def load_benchmark(folder: str | Path) -> Benchmark:
    """Read one published folder; raises ValueError with one clear line when it is not one."""
    folder = Path(folder)
    spec_path, board_path = folder / "benchmark.toml", folder / "leaderboard.json"
    for path in (spec_path, board_path):
        if not path.is_file():
            raise ValueError(f"{folder}: not a published leaderboard folder (no {path.name}); "
                             f"run `ppbench publish` for it")
    spec_text = spec_path.read_text(encoding="utf-8")
    try:
        spec = tomllib.loads(spec_text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{spec_path}: not valid TOML: {exc}") from None
    try:
        boards = json.loads(board_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{board_path}: not valid JSON: {exc}") from None
    if not isinstance(boards, list):
        raise ValueError(f"{board_path}: expected a list of leaderboards")
    problems: list[str] = []
    provenance: dict[str, Any] = {}
    if (folder / "provenance.json").is_file():
        try:
            provenance = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"provenance.json is not valid JSON: {exc}")
    header = spec.get("benchmark", {}) if isinstance(spec.get("benchmark"), dict) else {}
    benchmark = Benchmark(folder, str(header.get("name") or folder.name), str(header.get("description") or ""),
                          spec_text, boards, provenance, _references(spec, str(spec_path), problems),
                          problems=problems)
    for board in boards:
        slug = board["slug"]
        benchmark.figures[slug] = [(f"{prefix}{slug}.png", caption) for prefix, caption in FIGURES
                                   if (folder / f"{prefix}{slug}.png").is_file()]
    return benchmark


def benchmark_folders(root: str | Path) -> list[Path]:
    """The published folders under ``root`` (those with a benchmark.toml and a leaderboard.json),
    by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and (p / "benchmark.toml").is_file() and (p / "leaderboard.json").is_file())


def board_references(benchmark: Benchmark, board: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's published figures that apply to ``board``, each beside ours."""
    rows = {r["sanitizer"]: r for r in board.get("rows", [])}
    headers = {c["header"] for c in board.get("columns", [])}

    def figure(sanitizer: str, header: str) -> dict[str, Any]:
        return rows[sanitizer]["values"].get(header, {"status": "missing", "mean": None,
                                                     "ci_low": None, "ci_high": None, "n_seeds": 0})

    return compare_references(benchmark.references, board["task"], set(rows), headers, figure)
