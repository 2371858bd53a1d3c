"""The leaderboard model: one table per (data set, task, profile), its columns and its rows.

Columns are keyed by structured :class:`ColumnKey` s (kind, plugin label, value name); their
headers are only for display. ``Leaderboard.table`` is tidy (one row per configuration and column,
with numbers as numbers) and ``Leaderboard.ranking`` has one row per configuration in board
order with the figures the ranking policy used.
"""

from __future__ import annotations

import math
import re
from dataclasses import astuple, dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd

# The kinds of column, left to right on a board.
UTILITY, MEASURE, ATTACK, WORST_CASE = "utility", "measure", "attack", "worst case"
DETECTION = "detection"  # a detector attack's figure: shown beside the ranking, not in its worst case

TIER = "tier"
SANITIZER = "sanitizer"
WORST_ATTACK = "worst attack"
LEAKS = "leaks"
PARETO = "pareto"
FLAG = "flag"

PARETO_TEXT = {"front": "✓", "possible": "(✓)", "": ""}
# Ranking columns of the keyless worst case per attacker-knowledge level: "level:<level>:<name>".
LEVEL_PREFIX = "level:"

TIDY_COLUMNS = (
    "dataset", "data", "task", "sensitive", "profile", "position", "tier", "sanitizer", "column", "kind",
    "plugin", "value", "threat_model", "role", "better", "mean", "ci_low", "ci_high", "half_width",
    "n_seeds", "interval", "status", "incomplete", "leaks", "pareto", "flag",
)

_STATUS_TEXT = {"error": "error", "n/a": "n/a", "missing": "—"}


def data_label(config: Mapping[str, Any], configs: Sequence[Mapping[str, Any]]) -> str:
    """A data configuration's name on its board: the ``[dataset]`` parameters that differ among
    the benchmark's ``configs`` ("n_train=500"), '' when there is only one configuration."""
    keys = sorted({key for other in configs for key in other})
    varying = [key for key in keys if len({repr(other.get(key)) for other in configs}) > 1]
    return ",".join(f"{key}={config.get(key)}" for key in varying)


def parse_data_label(label: str) -> list[tuple[str, str]]:
    """``"n_train=500,n_test=100"`` -> ``[("n_train", "500"), ("n_test", "100")]``."""
    return [(key, value) for key, _, value in (pair.partition("=") for pair in label.split(","))] if label else []


def board_slug(dataset: str, task: str, profile: str | None = None, data: str = "") -> str:
    """A board's file-name stem: ``<dataset>-<task>``, plus ``-<profile>`` when a benchmark mixes
    profiles and ``-<data label>`` in a data sweep (``synthfaces-identity-n_train=500``)."""
    slug = f"{dataset}-{task}"
    if profile:
        slug += f"-{profile}"
    if data:
        slug += "-" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", data.replace(",", "-"))
    return slug


@dataclass(frozen=True)
class ColumnKey:
    """What a column holds: a ``kind`` of column, the plugin's label ('' for the worst case) and
    the name of the stored value ('advantage', 'utility', 'mse'...)."""

    kind: str
    plugin: str
    value: str


@dataclass(frozen=True)
class Column:
    key: ColumnKey
    header: str
    plugin_name: str  # the registered name ('' for the worst case)
    role: str  # utility, distortion, leakage...
    better: str  # 'higher' or 'lower', for the sanitizer
    threat_model: str = ""  # an attack column's threat-model identifier
    scoring: str = ""  # an attack column's scoring kind ('attribute', 'detector'...)


@dataclass
class Figure:
    """One column's aggregate for one configuration: a mean and its interval."""

    mean: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    n_seeds: int = 0
    interval: str = ""  # how the interval was computed
    status: str = "missing"  # ok, error, n/a, missing

    @property
    def half_width(self) -> float:
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return math.nan
        # A bootstrap interval can be asymmetric: show its larger side.
        return max(self.mean - self.ci_low, self.ci_high - self.mean)


@dataclass
class CellInfo:
    """What one configuration's cells of one plugin recorded beside their figures: each seed's
    wall time (seconds, the cell's own run: a shared sanitizer fit is not in it), the plugin's
    diagnostics (values stored with role 'diagnostic', aggregated over seeds like any stored
    value) and the messages of its error and n/a cells, each with the seeds it came from."""

    wall_time: dict[int, float] = field(default_factory=dict)
    diagnostics: dict[str, Figure] = field(default_factory=dict)
    messages: dict[str, list[int]] = field(default_factory=dict)
    cell_keys: dict[int, str] = field(default_factory=dict)  # seed -> the stored cell (ppbench show)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cell_keys": {str(seed): self.cell_keys[seed] for seed in sorted(self.cell_keys)},
            "wall_time_s": {str(seed): self.wall_time[seed] for seed in sorted(self.wall_time)},
            "diagnostics": {name: {"mean": number(f.mean), "ci_low": number(f.ci_low),
                                   "ci_high": number(f.ci_high), "n_seeds": f.n_seeds,
                                   "interval": f.interval or None}
                            for name, f in sorted(self.diagnostics.items())},
            "messages": [{"message": text, "seeds": seeds} for text, seeds in sorted(self.messages.items())],
        }


def cell_kind(column: Column) -> str | None:
    """The stored cell kind behind a board column ('attack' or 'metric'); None for a worst case,
    which no single cell holds."""
    if column.key.kind in (ATTACK, DETECTION):
        return "attack"
    if column.key.kind in (UTILITY, MEASURE):
        return "metric"
    return None


def diagnostic_name(name: str) -> str:
    """A stored diagnostic's name as shown: attacks store theirs as ``diag:<name>``."""
    return name.removeprefix("diag:")


@dataclass
class Leaderboard:
    dataset: str
    task: str
    sensitive: str
    profile: str
    slug: str  # file-name stem: "<dataset>-<task>" (plus "-<profile>" when profiles are mixed)
    columns: list[Column]
    utility_column: Column | None  # ranked on within a tier, and plotted against the worst case
    standard_check: str | None  # the attack the spec names as the papers' standard check
    floor: Figure  # the leakage floor: what the kept utility attributes alone reveal
    table: pd.DataFrame
    ranking: pd.DataFrame
    provenance: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)
    # The data configuration of a data sweep ("n_train=500": the [dataset] parameters that differ
    # among the benchmark's configurations); '' when the benchmark has only one.
    data: str = ""
    # Attacks from a package other than ppbench, by label: "distribution version". A row whose
    # worst attack is one names it as the best known attack, with where it comes from.
    attack_sources: dict[str, str] = field(default_factory=dict)
    # Per (sanitizer, cell kind, plugin label): wall times, diagnostics and messages of the cells.
    cell_info: dict[tuple[str, str, str], CellInfo] = field(default_factory=dict)

    def info(self, sanitizer: str, column: Column) -> CellInfo | None:
        """What the cells behind one configuration's figure in ``column`` recorded besides it."""
        kind = cell_kind(column)
        return self.cell_info.get((sanitizer, kind, column.key.plugin)) if kind else None

    @property
    def title(self) -> str:
        data = f" [{self.data}]" if self.data else ""
        return f"{self.dataset}{data} / {self.task} (sensitive: {self.sensitive})"

    @property
    def has_attacks(self) -> bool:
        return any(c.key.kind == ATTACK for c in self.columns)

    @property
    def levels(self) -> list[str]:
        """The attacker-knowledge levels the board's keyless attacks span (each with a worst case
        of its own in the ranking), in order; empty when they share one."""
        suffix = ":worst_case"
        return [name[len(LEVEL_PREFIX):-len(suffix)] for name in self.ranking.columns
                if name.startswith(LEVEL_PREFIX) and name.endswith(suffix)]

    def level_worst(self, sanitizer: str, level: str) -> tuple[float, float, float, str]:
        """A row's keyless worst case at ``level``: mean, interval ends, and the attack."""
        record = self.ranking.loc[self.ranking["sanitizer"] == sanitizer].iloc[0]
        stem = f"{LEVEL_PREFIX}{level}:"
        return (record[stem + "worst_case"], record[stem + "worst_case_ci_low"],
                record[stem + "worst_case_ci_high"], record[stem + "worst_attack"] or "")

    def figure(self, sanitizer: str, column: Column) -> pd.Series:
        """One configuration's figure in one column: mean, interval, seeds, status."""
        return self._by_key.loc[(sanitizer, column.key.kind, column.key.plugin, column.key.value)]

    @property
    def _by_key(self) -> pd.DataFrame:
        # The worst case's plugin varies by row; its key's plugin is '' (keyless) or the threat
        # model judged apart (the key holder's worst case).
        apart = self.table["threat_model"].fillna("").astype(str)
        table = self.table.assign(plugin=self.table["plugin"].where(self.table["kind"] != WORST_CASE, apart))
        return table.set_index(["sanitizer", "kind", "plugin", "value"])

    def display(self) -> pd.DataFrame:
        """The table as shown: one row per configuration, cells as "mean ± half-width" text."""
        by_key = self._by_key
        lines = []
        for row in self.ranking.itertuples(index=False):
            line: dict[str, str] = {TIER: str(int(row.tier)) if pd.notna(row.tier) else "—",
                                    SANITIZER: row.sanitizer}
            for column in self.columns:
                cell = by_key.loc[(row.sanitizer, *astuple(column.key))]
                text = cell_text(cell["mean"], cell["half_width"], cell["status"], column.role)
                if column.key.kind == WORST_CASE and row.incomplete:
                    text += "*"
                line[column.header] = text
            if self.has_attacks:
                line[WORST_ATTACK] = attack_with_source(row.worst_attack, self.attack_sources)
                line[LEAKS] = {True: "yes", False: "no"}.get(row.leaks, "")
                line[PARETO] = PARETO_TEXT[row.pareto]
                line[FLAG] = f"⚠ {row.flag}" if row.flag else ""
            lines.append(line)
        headers = [TIER, SANITIZER] + [c.header for c in self.columns]
        if self.has_attacks:
            headers += [WORST_ATTACK, LEAKS, PARETO, FLAG]
        return pd.DataFrame(lines, columns=headers)

    def level_table(self) -> pd.DataFrame:
        """The keyless worst case per attacker-knowledge level beside the overall one, one row per
        configuration in board order ("mean ± half-width (attack)"); empty without levels."""
        if not self.levels:
            return pd.DataFrame()
        lines = []
        for row in self.ranking.itertuples(index=False):
            line = {SANITIZER: row.sanitizer}
            for level in self.levels:
                mean, low, high, attack = self.level_worst(row.sanitizer, level)
                half = max(mean - low, high - mean) if all(map(is_finite, (mean, low, high))) else math.nan
                text = cell_text(mean, half, "ok", "leakage") if is_finite(mean) else "—"
                line[level] = f"{text} ({attack})" if attack else text
            half = (max(row.worst_case - row.worst_case_ci_low, row.worst_case_ci_high - row.worst_case)
                    if all(map(is_finite, (row.worst_case, row.worst_case_ci_low, row.worst_case_ci_high)))
                    else math.nan)
            worst = cell_text(row.worst_case, half, "ok", "leakage") if is_finite(row.worst_case) else "—"
            line["all levels"] = f"{worst} ({row.worst_attack})" if row.worst_attack else worst
            lines.append(line)
        return pd.DataFrame(lines)

    def rows(self) -> list[dict[str, Any]]:
        """Per-configuration records with numbers as numbers (NaN as None), for JSON."""
        by_key = self._by_key
        records = []
        for row in self.ranking.itertuples(index=False):
            cells = {}
            for column in self.columns:
                cell = by_key.loc[(row.sanitizer, *astuple(column.key))]
                cells[column.header] = {
                    "mean": number(cell["mean"]), "ci_low": number(cell["ci_low"]),
                    "ci_high": number(cell["ci_high"]), "half_width": number(cell["half_width"]),
                    "n_seeds": int(cell["n_seeds"]), "interval": cell["interval"] or None,
                    "status": cell["status"],
                }
                info = self.info(row.sanitizer, column)
                if info is not None:
                    cells[column.header].update(info.as_dict())
            by_level = {}
            for level in self.levels:
                mean, low, high, attack = self.level_worst(row.sanitizer, level)
                by_level[level] = {"mean": number(mean), "ci_low": number(low), "ci_high": number(high),
                                   "attack": attack or None}
            records.append({"position": int(row.position),
                            "tier": int(row.tier) if pd.notna(row.tier) else None,
                            "sanitizer": row.sanitizer, "worst_attack": row.worst_attack or None,
                            "incomplete": bool(row.incomplete), "leaks": row.leaks,
                            "pareto": row.pareto or None, "flag": row.flag or None, "values": cells,
                            **({"worst_by_level": by_level} if by_level else {}),
                            **({"worst_attack_source": self.attack_sources[row.worst_attack]}
                               if row.worst_attack in self.attack_sources else {})})
        return records

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "data": self.data or None, "task": self.task,
            "sensitive": self.sensitive, "profile": self.profile, "slug": self.slug,
            "utility_column": self.utility_column.header if self.utility_column else None,
            "standard_check": self.standard_check,
            "leakage_floor": {"mean": number(self.floor.mean), "ci_low": number(self.floor.ci_low),
                              "ci_high": number(self.floor.ci_high), "n_seeds": self.floor.n_seeds,
                              "interval": self.floor.interval or None},
            "columns": [{"header": c.header, "kind": c.key.kind, "plugin": c.key.plugin or None,
                         "value": c.key.value, "role": c.role, "better": c.better,
                         "threat_model": c.threat_model or None, "plugin_name": c.plugin_name or None,
                         "scoring": c.scoring or None} for c in self.columns],
            "rows": self.rows(), "footnotes": self.footnotes, "notes": self.notes,
            **({"attack_sources": dict(sorted(self.attack_sources.items()))} if self.attack_sources else {}),
            "provenance": self.provenance,
        }


def attack_with_source(attack: str | None, sources: Mapping[str, str]) -> str:
    """An attack's label, with its package and version when it is not one of ppbench's own."""
    if not attack:
        return ""
    return f"{attack} ({sources[attack]})" if sources.get(attack) else attack


def number(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def is_finite(value: Any) -> bool:
    """A figure that can be drawn: not None, NaN or infinite."""
    value = number(value)
    return value is not None and math.isfinite(value)


def decimals(value: float, role: str) -> int:
    """Three decimals; three significant digits for small distortion-like figures (an MSE)."""
    if role in ("leakage", "utility", "reported") or value == 0 or not math.isfinite(value) or abs(value) >= 0.1:
        return 3
    return min(6, 2 - math.floor(math.log10(abs(value))))


def fixed(value: float, places: int) -> str:
    text = f"{value:.{places}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def cell_text(mean: float, half_width: float, status: str, role: str) -> str:
    if status != "ok":
        return _STATUS_TEXT.get(status, status)
    if not math.isfinite(mean):
        return _STATUS_TEXT["missing"]
    places = decimals(mean, role)
    text = fixed(mean, places)
    if math.isfinite(half_width):
        text += f" ± {fixed(half_width, places)}"
    return text
