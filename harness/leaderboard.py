"""Results → leaderboards: one table per (data set, task), ranked by the worst case over attacks.

A leaderboard's rows are sanitizer configurations. Its columns, left to right:

- each utility metric's primary value, named by the metric's label (``fixed-utility``);
- each other metric's primary value, named ``<label> (<value>)`` (``distortion (mse)``), followed
  for a distortion metric by its other non-diagnostic values (``distortion (psnr)``...);
- each attack's accuracy and normalized advantage (``<label> acc``, ``<label> adv``);
- ``worst-case adv``, the largest mean normalized advantage over the attacks that ran on the row,
  and ``worst attack``, the attack that reached it. Normalized advantage (0 at chance, 1 perfect)
  is what makes attacks on different attributes and class counts comparable.

Every number is a mean over seeds. Its interval is the 95% Student-t interval over seeds when there
are two or more, and the cell's own stored 95% interval (Wilson for an attack's accuracy) when
there is one; the rendered tables say which.

Choices that decide who looks private, all conservative:

- a cell any of whose seeds failed shows ``error``, and the worst case of its row is taken over the
  attacks that did run and marked incomplete (``*``): it is only a lower bound. Incomplete rows rank
  after complete ones and are not eligible for the Pareto front, so that a sanitizer never looks
  more private because an attack crashed;
- ranking: complete rows first, then worst-case advantage ascending, then the *ranking utility*
  (the first utility column in alphabetical order) from best to worst, then the label;
- the privacy–utility Pareto front is drawn among complete rows with both figures known;
- a row is flagged when the standard check of the papers (:data:`STANDARD_CHECK_ATTACK`) finds
  little (advantage ≤ :data:`LOOKS_PRIVATE_MAX_ADVANTAGE`) while the worst case is large
  (≥ :data:`LEAKS_MIN_ADVANTAGE`).

If the store holds two attempts at the same (configuration, plugin, seed) — e.g. after a plugin's
version changed the cell key — the most recent one counts and the notes say how many were set aside.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import pandas as pd
from tabulate import tabulate

from .scoring import mean_interval

# The papers' standard privacy check: a classifier trained on sanitized images with true labels.
STANDARD_CHECK_ATTACK = "adversarial-classifier"
# A row "looks private" to the standard check at or below this normalized advantage...
LOOKS_PRIVATE_MAX_ADVANTAGE = 0.1
# ...and "leaks" when the worst case reaches this one. The gap between the two thresholds keeps the
# flag off rows whose two figures differ only by seed noise around a single threshold.
LEAKS_MIN_ADVANTAGE = 0.2

# Error messages in the notes are cut to one line of this many characters.
NOTE_WIDTH = 200

Format = Literal["md", "csv", "json", "html"]
FORMATS: tuple[str, ...] = ("md", "csv", "json", "html")
EXTENSIONS = {"md": "md", "csv": "csv", "json": "json", "html": "html"}

RANK = "#"
SANITIZER = "sanitizer"
WORST_CASE = "worst-case adv"
WORST_ATTACK = "worst attack"
PARETO = "pareto"
FLAG = "flag"

STUDENT_T = "student-t over seeds"
CELL_INTERVAL = "cell's own"

TIDY_COLUMNS = (
    "dataset", "task", "sensitive", "profile", "rank", "sanitizer", "column", "kind", "plugin",
    "metric", "role", "better", "mean", "ci_low", "ci_high", "half_width", "n_seeds", "interval",
    "status", "incomplete", "pareto", "flag",
)

_STATUS_TEXT = {"error": "error", "n/a": "n/a", "missing": "—"}


@dataclass(frozen=True)
class Column:
    """One value column of a leaderboard and the stored values it is made of."""

    name: str  # the header, e.g. "adversarial-classifier adv"
    kind: str  # 'metric', 'attack', or 'worst case'
    plugin: str  # the plugin's label ('' for the worst case, whose attack varies by row)
    plugin_name: str
    metric: str  # the stored value's name ('accuracy', 'utility', 'mse'...)
    role: str  # utility, distortion, leakage...
    better: str  # 'higher' or 'lower', for the sanitizer


@dataclass
class Leaderboard:
    """One (data set, task) table.

    ``table`` is tidy: one row per (sanitizer configuration, column) with numeric ``mean``,
    ``ci_low``, ``ci_high``, ``half_width``, ``n_seeds``, the ``interval`` kind and the ``status``
    (ok, error, n/a, missing), plus the row's ``rank``, ``pareto``, ``flag`` and ``incomplete``.
    ``ranking`` has one row per configuration in rank order with the two figures the ranking and
    the Pareto front use (the worst case and the ranking utility) and their intervals.
    """

    dataset: str
    task: str
    sensitive: str
    profile: str
    slug: str  # file-name stem: "<dataset>-<task>" (plus "-<profile>" when profiles are mixed)
    columns: list[Column]
    utility_column: str | None  # the column ranked on and plotted against the worst case
    table: pd.DataFrame
    ranking: pd.DataFrame
    provenance: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.dataset} / {self.task} (sensitive: {self.sensitive})"

    def display(self) -> pd.DataFrame:
        """The table as shown: one row per configuration, cells as "mean ± half-width" text."""
        by_key = self.table.set_index(["sanitizer", "column"])
        # Without attacks there is no worst case, front or flag: those columns would be empty.
        has_attacks = any(c.kind == "attack" for c in self.columns)
        lines = []
        for row in self.ranking.itertuples(index=False):
            line: dict[str, str] = {RANK: str(row.rank), SANITIZER: row.sanitizer}
            for column in self.columns:
                cell = by_key.loc[(row.sanitizer, column.name)]
                text = _cell_text(cell["mean"], cell["half_width"], cell["status"], column.role)
                if column.kind == "worst case" and row.incomplete:
                    text += "*"
                line[column.name] = text
            if has_attacks:
                line[WORST_ATTACK] = row.worst_attack or ""
                line[PARETO] = "✓" if row.pareto else ""
                line[FLAG] = f"⚠ {row.flag}" if row.flag else ""
            lines.append(line)
        headers = [RANK, SANITIZER] + [c.name for c in self.columns]
        if has_attacks:
            headers += [WORST_ATTACK, PARETO, FLAG]
        return pd.DataFrame(lines, columns=headers)

    def rows(self) -> list[dict[str, Any]]:
        """Per-configuration records with numbers as numbers (NaN as None), for JSON."""
        by_key = self.table.set_index(["sanitizer", "column"])
        records = []
        for row in self.ranking.itertuples(index=False):
            cells = {}
            for column in self.columns:
                cell = by_key.loc[(row.sanitizer, column.name)]
                cells[column.name] = {
                    "mean": _number(cell["mean"]), "ci_low": _number(cell["ci_low"]),
                    "ci_high": _number(cell["ci_high"]), "half_width": _number(cell["half_width"]),
                    "n_seeds": int(cell["n_seeds"]), "interval": cell["interval"] or None,
                    "status": cell["status"],
                }
            records.append({"rank": int(row.rank), "sanitizer": row.sanitizer,
                            "worst_attack": row.worst_attack or None,
                            "incomplete": bool(row.incomplete), "pareto": bool(row.pareto),
                            "flag": row.flag or None, "values": cells})
        return records

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset, "task": self.task, "sensitive": self.sensitive,
            "profile": self.profile, "slug": self.slug, "utility_column": self.utility_column,
            "columns": [{"name": c.name, "kind": c.kind, "plugin": c.plugin or None,
                         "metric": c.metric, "role": c.role, "better": c.better}
                        for c in self.columns],
            "rows": self.rows(), "footnotes": self.footnotes, "notes": self.notes,
            "provenance": self.provenance,
        }


# --- building ------------------------------------------------------------------------------------


def build_leaderboards(frame: pd.DataFrame) -> list[Leaderboard]:
    """One leaderboard per (data set, task) in the store's rows (``ResultStore.frame()``).

    Rows of different profiles are never averaged together: a (data set, task) that holds several
    profiles gets one leaderboard per profile.
    """
    if frame.empty:
        return []
    profiles_per_task = frame.groupby(["dataset", "task"])["profile"].nunique()
    boards = []
    for (dataset, task, profile), rows in frame.groupby(["dataset", "task", "profile"], sort=True):
        slug = f"{dataset}-{task}"
        if profiles_per_task[(dataset, task)] > 1:
            slug += f"-{profile}"
        boards.append(_build_board(str(dataset), str(task), str(profile), slug,
                                   rows.reset_index(drop=True)))
    return boards


@dataclass
class _Figure:
    """One column's aggregate for one configuration."""

    mean: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    n_seeds: int = 0
    interval: str = ""
    status: str = "missing"

    @property
    def half_width(self) -> float:
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return math.nan
        # A cell's own interval (Wilson) can be asymmetric: show its larger side.
        return max(self.mean - self.ci_low, self.ci_high - self.mean)


def _latest_attempts(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep, per (configuration, plugin, seed), the cell written last; count the others."""
    cells = rows.drop_duplicates("cell_key")[
        ["cell_key", "sanitizer_label", "kind", "plugin_label", "seed", "created_at"]]
    cells = cells.sort_values(["created_at", "cell_key"])
    latest = cells.drop_duplicates(["sanitizer_label", "kind", "plugin_label", "seed"], keep="last")
    superseded = len(cells) - len(latest)
    return rows[rows["cell_key"].isin(set(latest["cell_key"]))], superseded


def _combined_status(statuses: Sequence[str]) -> str:
    if not statuses:
        return "missing"
    if "error" in statuses:
        return "error"
    if "ok" in statuses:
        return "ok"
    return "n/a"


def _nan(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def _columns(rows: pd.DataFrame) -> list[Column]:
    """The value columns, derived from what the plugins stored."""
    ok = rows[(rows["status"] == "ok") & (rows["metric"] != "")]
    utility: list[Column] = []
    measures: list[Column] = []
    for label in sorted(rows.loc[rows["kind"] == "metric", "plugin_label"].unique()):
        mine = ok[(ok["kind"] == "metric") & (ok["plugin_label"] == label)]
        name = str(rows.loc[rows["plugin_label"] == label, "plugin"].iloc[0])
        primary = mine[mine["is_primary"] == 1]
        if primary.empty and mine["metric"].nunique() == 1:
            primary = mine
        if primary.empty:
            # Every cell of the metric failed (or it marks no primary value): one column carries
            # its status.
            measures.append(Column(label, "metric", label, name, "", "", "higher"))
            continue
        first = primary.sort_values("metric").iloc[0]
        role, metric = str(first["role"]), str(first["metric"])
        if role == "utility":
            utility.append(Column(label, "metric", label, name, metric, role, str(first["better"])))
            continue
        measures.append(Column(f"{label} ({metric})", "metric", label, name, metric, role,
                               str(first["better"])))
        if role == "distortion":
            extras = mine[(mine["metric"] != metric) & (mine["role"] != "diagnostic")]
            for extra, values in extras.groupby("metric", sort=True):
                measures.append(Column(f"{label} ({extra})", "metric", label, name, str(extra),
                                       str(values["role"].iloc[0]), str(values["better"].iloc[0])))
    attacks: list[Column] = []
    for label in sorted(rows.loc[rows["kind"] == "attack", "plugin_label"].unique()):
        name = str(rows.loc[rows["plugin_label"] == label, "plugin"].iloc[0])
        attacks.append(Column(f"{label} acc", "attack", label, name, "accuracy", "leakage", "lower"))
        attacks.append(Column(f"{label} adv", "attack", label, name, "advantage", "leakage", "lower"))
    worst = [Column(WORST_CASE, "worst case", "", "", "advantage", "leakage", "lower")] if attacks else []
    return utility + measures + attacks + worst


def _build_board(dataset: str, task: str, profile: str, slug: str, rows: pd.DataFrame) -> Leaderboard:
    rows, superseded = _latest_attempts(rows)
    sensitive = str(rows["sensitive"].iloc[0])
    columns = _columns(rows)
    value_columns = [c for c in columns if c.kind != "worst case"]
    attack_labels = sorted({c.plugin for c in columns if c.kind == "attack"})
    sanitizers = sorted(rows["sanitizer_label"].unique())

    cells = rows.drop_duplicates("cell_key")
    statuses: dict[tuple[str, str, str], list[str]] = {}
    for cell in cells.itertuples(index=False):
        statuses.setdefault((cell.sanitizer_label, cell.kind, cell.plugin_label), []).append(cell.status)
    ok = rows[(rows["status"] == "ok") & (rows["metric"] != "")].sort_values("seed")
    stored = {key: group for key, group in
              ok.groupby(["sanitizer_label", "kind", "plugin_label", "metric"], sort=False)}

    figures: dict[tuple[str, str], _Figure] = {}
    for sanitizer in sanitizers:
        for column in value_columns:
            status = _combined_status(statuses.get((sanitizer, column.kind, column.plugin), []))
            figure = _Figure(status=status)
            values = stored.get((sanitizer, column.kind, column.plugin, column.metric))
            if status == "ok":
                if values is None or values["value"].isna().all():
                    figure.status = "missing"
                else:
                    figure = _aggregate(values)
            figures[(sanitizer, column.name)] = figure

    summaries = []
    for sanitizer in sanitizers:
        attack_status = {a: figures[(sanitizer, f"{a} adv")].status for a in attack_labels}
        ran = {a: figures[(sanitizer, f"{a} adv")] for a in attack_labels
               if attack_status[a] == "ok" and math.isfinite(figures[(sanitizer, f"{a} adv")].mean)}
        incomplete = any(s in ("error", "missing") for s in attack_status.values())
        if ran:
            worst_attack = max(ran, key=lambda a: (ran[a].mean, a))
            worst = ran[worst_attack]
        else:
            worst_attack = ""
            worst = _Figure(status=_combined_status(
                [s for s in attack_status.values() if s != "missing"]) if attack_status else "missing")
        figures[(sanitizer, WORST_CASE)] = worst
        summaries.append({"sanitizer": sanitizer, "worst": worst, "worst_attack": worst_attack,
                          "incomplete": incomplete, "standard": _standard_check(sanitizer, columns, figures)})

    utility_columns = [c for c in columns if c.role == "utility" and c.kind == "metric"]
    ranking_utility = utility_columns[0] if utility_columns else None
    for summary in summaries:
        summary["utility"] = (figures[(summary["sanitizer"], ranking_utility.name)]
                              if ranking_utility else _Figure())
    # Utility is compared with "higher is better" by flipping the sign of a lower-is-better one.
    sign = -1.0 if ranking_utility is not None and ranking_utility.better == "lower" else 1.0

    def rank_key(summary: dict[str, Any]) -> tuple:
        worst, utility = summary["worst"].mean, sign * summary["utility"].mean
        return (not math.isfinite(worst), summary["incomplete"], worst if math.isfinite(worst) else 0.0,
                not math.isfinite(utility), -utility if math.isfinite(utility) else 0.0,
                summary["sanitizer"])

    summaries.sort(key=rank_key)
    _mark_pareto(summaries, sign)
    for rank, summary in enumerate(summaries, start=1):
        summary["rank"] = rank
        worst, standard = summary["worst"].mean, summary["standard"]
        summary["flag"] = ""
        if (standard is not None and standard <= LOOKS_PRIVATE_MAX_ADVANTAGE
                and math.isfinite(worst) and worst >= LEAKS_MIN_ADVANTAGE):
            summary["flag"] = f"leaks to {summary['worst_attack']}"

    table = _tidy_table(dataset, task, sensitive, profile, columns, summaries, figures)
    ranking = pd.DataFrame([{
        "rank": s["rank"], "sanitizer": s["sanitizer"],
        "worst_case": s["worst"].mean, "worst_case_ci_low": s["worst"].ci_low,
        "worst_case_ci_high": s["worst"].ci_high, "worst_case_n_seeds": s["worst"].n_seeds,
        "worst_attack": s["worst_attack"], "incomplete": s["incomplete"],
        "utility": s["utility"].mean, "utility_ci_low": s["utility"].ci_low,
        "utility_ci_high": s["utility"].ci_high, "utility_n_seeds": s["utility"].n_seeds,
        "pareto": s["pareto"], "flag": s["flag"],
    } for s in summaries])
    notes = _notes(rows, superseded)
    board = Leaderboard(dataset=dataset, task=task, sensitive=sensitive, profile=profile, slug=slug,
                        columns=columns, utility_column=ranking_utility.name if ranking_utility else None,
                        table=table, ranking=ranking, provenance=collect_provenance(rows), notes=notes)
    board.footnotes = _footnotes(board)
    return board


def _aggregate(values: pd.DataFrame) -> _Figure:
    values = values[values["value"].notna()]
    seeds = [float(v) for v in values["value"]]
    if len(seeds) >= 2:
        mean, low, high = mean_interval(seeds)
        return _Figure(mean, low, high, len(seeds), STUDENT_T, "ok")
    only = values.iloc[0]
    low, high = _nan(only["ci_low"]), _nan(only["ci_high"])
    interval = CELL_INTERVAL if math.isfinite(low) and math.isfinite(high) else ""
    return _Figure(seeds[0], low, high, 1, interval, "ok")


def _standard_check(sanitizer: str, columns: Sequence[Column],
                    figures: Mapping[tuple[str, str], _Figure]) -> float | None:
    """The standard check's advantage on a row (its strongest configuration), if it ran."""
    found = [figures[(sanitizer, c.name)].mean for c in columns
             if c.kind == "attack" and c.metric == "advantage" and c.plugin_name == STANDARD_CHECK_ATTACK
             and figures[(sanitizer, c.name)].status == "ok"]
    found = [v for v in found if math.isfinite(v)]
    return max(found) if found else None


def _mark_pareto(summaries: list[dict[str, Any]], sign: float) -> None:
    """Mark rows no other eligible row dominates (lower-or-equal worst case and higher-or-equal
    utility, strictly better in one). Eligible: complete, with both figures known."""
    points = {}
    for summary in summaries:
        worst, utility = summary["worst"].mean, sign * summary["utility"].mean
        if not summary["incomplete"] and math.isfinite(worst) and math.isfinite(utility):
            points[summary["sanitizer"]] = (worst, utility)
    for summary in summaries:
        mine = points.get(summary["sanitizer"])
        summary["pareto"] = mine is not None and not any(
            other[0] <= mine[0] and other[1] >= mine[1] and (other[0] < mine[0] or other[1] > mine[1])
            for name, other in points.items() if name != summary["sanitizer"])


def _tidy_table(dataset: str, task: str, sensitive: str, profile: str, columns: Sequence[Column],
                summaries: Sequence[dict[str, Any]], figures: Mapping[tuple[str, str], _Figure]) -> pd.DataFrame:
    records = []
    for summary in summaries:
        for column in columns:
            figure = figures[(summary["sanitizer"], column.name)]
            plugin = summary["worst_attack"] if column.kind == "worst case" else column.plugin
            records.append({
                "dataset": dataset, "task": task, "sensitive": sensitive, "profile": profile,
                "rank": summary["rank"], "sanitizer": summary["sanitizer"], "column": column.name,
                "kind": column.kind, "plugin": plugin, "metric": column.metric, "role": column.role,
                "better": column.better, "mean": figure.mean, "ci_low": figure.ci_low,
                "ci_high": figure.ci_high, "half_width": figure.half_width,
                "n_seeds": figure.n_seeds, "interval": figure.interval, "status": figure.status,
                "incomplete": summary["incomplete"], "pareto": summary["pareto"],
                "flag": summary["flag"],
            })
    return pd.DataFrame(records, columns=list(TIDY_COLUMNS))


def _one_line(text: Any) -> str:
    lines = text.strip().splitlines() if isinstance(text, str) else []
    line = lines[0] if lines else ""
    return line if len(line) <= NOTE_WIDTH else line[:NOTE_WIDTH - 1] + "…"


def _seed_list(seeds: Iterable[Any]) -> str:
    ordered = sorted({int(s) for s in seeds})
    return ("seed " if len(ordered) == 1 else "seeds ") + ", ".join(str(s) for s in ordered)


def _notes(rows: pd.DataFrame, superseded: int) -> list[str]:
    """Failures and set-aside results, one line each, grouped over seeds."""
    notes = []
    cells = rows.drop_duplicates("cell_key")
    for status in ("error", "n/a"):
        failed = cells[cells["status"] == status].copy()
        failed["line"] = failed["error"].map(_one_line)
        # One line per (sanitizer, message): a sanitizer that does not apply to a data set is
        # n/a for every plugin, and saying so once per plugin would bury the other notes.
        for (sanitizer, line), group in failed.groupby(["sanitizer_label", "line"], sort=True):
            plugins = ", ".join(sorted(group["plugin_label"].unique()))
            notes.append(f"{status}: {sanitizer} × {plugins} ({_seed_list(group['seed'])}): "
                         f"{line or 'no message'}")
    if superseded:
        notes.append(f"{superseded} older attempt(s) of cells that were run again are set aside; "
                     "each (configuration, plugin, seed) counts its latest result.")
    return notes


def _footnotes(board: Leaderboard) -> list[str]:
    table = board.table
    kinds = set(table.loc[table["status"] == "ok", "interval"])
    seed_counts = sorted(set(table.loc[table["status"] == "ok", "n_seeds"]))
    if kinds <= {STUDENT_T}:
        interval = (f"± is the half-width of the 95% Student-t interval over "
                    f"{'/'.join(str(n) for n in seed_counts)} seeds.")
    elif STUDENT_T not in kinds:
        interval = ("one seed: ± is the larger side of the cell's own 95% interval (Wilson for an "
                    "attack's accuracy, mapped through the same formula for its advantage); "
                    "no ± where the cell stored none.")
    else:
        interval = ("± is the half-width of the 95% Student-t interval over seeds where a cell has "
                    "two or more; where it has one, the larger side of the cell's own 95% interval "
                    "(Wilson for an attack's accuracy).")
    notes = [f"Cells are means over seeds; {interval}"]
    if not any(c.kind == "attack" for c in board.columns):
        notes.append(f"No attack has results here, so there is no leakage to rank on: {RANK} "
                     f"follows {board.utility_column or 'the label'}, and there is no Pareto front.")
        return notes
    notes.append("adv is the normalized advantage (acc − chance) / (1 − chance): 0 at chance, 1 for "
                 f"a perfect attack. {WORST_CASE} is the largest mean advantage over the attacks that "
                 f"ran on the row ({WORST_ATTACK}), with that attack's interval; lower is more private.")
    if board.utility_column:
        notes.append(f"{RANK}: complete rows first, then {WORST_CASE} ascending, then "
                     f"{board.utility_column} from best to worst. {PARETO} ✓: no other complete row "
                     f"has a lower-or-equal {WORST_CASE} and an equal-or-better {board.utility_column}, "
                     "strictly better in one.")
    else:
        notes.append(f"{RANK}: complete rows first, then {WORST_CASE} ascending. No utility metric "
                     "ran, so there is no Pareto front.")
    if board.ranking["incomplete"].any():
        notes.append("* incomplete: an attack failed (or has not run) on this row, so its worst case "
                     "covers only the attacks that ran and is a lower bound. Such rows rank after "
                     "complete ones and are not eligible for the Pareto front: a sanitizer never "
                     "looks more private because an attack crashed.")
    if any(c.plugin_name == STANDARD_CHECK_ATTACK for c in board.columns):
        notes.append(f"⚠ {FLAG}: the standard check ({STANDARD_CHECK_ATTACK}) finds advantage ≤ "
                     f"{LOOKS_PRIVATE_MAX_ADVANTAGE:g}, but a stronger attack reaches ≥ "
                     f"{LEAKS_MIN_ADVANTAGE:g}.")
    statuses = set(table["status"])
    legend = [text for key, text in (("error", "error: a seed of the cell failed (see notes)"),
                                     ("n/a", "n/a: the attack's requirements are not met"),
                                     ("missing", "—: not in the store (not run yet)"))
              if key in statuses]
    if legend:
        notes.append("; ".join(legend) + ".")
    return notes


# --- provenance ----------------------------------------------------------------------------------


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


def _version_text(version: Mapping[str, str]) -> str:
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
            entries = [f"{name} — " + "; ".join(_version_text(v) for v in versions)
                       for name, versions in by_name.items()]
            lines.append(f"{title}: " + ", ".join(entries))
    return lines


# --- rendering -----------------------------------------------------------------------------------


def _decimals(value: float, role: str) -> int:
    """Three decimals; three significant digits for small distortion-like figures (an MSE)."""
    if role in ("leakage", "utility") or value == 0 or not math.isfinite(value) or abs(value) >= 0.1:
        return 3
    return min(6, 2 - math.floor(math.log10(abs(value))))


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _cell_text(mean: float, half_width: float, status: str, role: str) -> str:
    if status != "ok":
        return _STATUS_TEXT.get(status, status)
    if not math.isfinite(mean):
        return _STATUS_TEXT["missing"]
    decimals = _decimals(mean, role)
    text = _fixed(mean, decimals)
    if math.isfinite(half_width):
        text += f" ± {_fixed(half_width, decimals)}"
    return text


def _number(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _alignment(headers: Sequence[str]) -> list[str]:
    left = {SANITIZER, WORST_ATTACK, FLAG}
    return ["left" if h in left else "center" if h == PARETO else "right" for h in headers]


def render_markdown(boards: Sequence[Leaderboard], *, title: str | None = None,
                    description: str = "", images: Mapping[str, str] | None = None) -> str:
    """Pipe tables under a heading per board, with footnotes, notes and provenance. ``images``
    maps a board's slug to an image path relative to the document (the trade-off plot)."""
    parts = [f"# {title}\n"] if title else []
    if description:
        parts.append(description.strip() + "\n")
    if not boards:
        parts.append("No results.\n")
    for board in boards:
        shown = board.display()
        body = [[str(v).replace("|", "\\|") for v in row] for row in shown.itertuples(index=False)]
        table = tabulate(body, headers=list(shown.columns), tablefmt="pipe",
                         colalign=_alignment(list(shown.columns)), disable_numparse=True)
        section = [f"## {board.title}", "", table, ""]
        section += [f"- {line}" for line in board.footnotes] + [""]
        if images and board.slug in images:
            section += [f"![privacy–utility trade-off, {board.title}]({images[board.slug]})", ""]
        if board.notes:
            section += ["**Notes**", ""] + [f"- {line}" for line in board.notes] + [""]
        section += ["**Provenance**", ""] + [f"- {line}" for line in provenance_lines(board.provenance)]
        parts.append("\n".join(section) + "\n")
    return "\n".join(parts)


def tidy_frame(boards: Sequence[Leaderboard]) -> pd.DataFrame:
    """Every board's tidy table in one frame (the CSV)."""
    if not boards:
        return pd.DataFrame(columns=list(TIDY_COLUMNS))
    return pd.concat([b.table for b in boards], ignore_index=True)


def render_csv(boards: Sequence[Leaderboard]) -> str:
    # Full precision (no float_format): the CSV's numbers are the store's numbers.
    return tidy_frame(boards).to_csv(index=False, lineterminator="\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render_json(boards: Sequence[Leaderboard]) -> str:
    return json.dumps(_jsonable([b.as_dict() for b in boards]), indent=2, ensure_ascii=False,
                      allow_nan=False) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; }
td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td:nth-child(2) { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
.footnotes, .notes, .provenance { font-size: 0.85em; color: #444; }
img { max-width: 100%; border: 1px solid #ddd; }
""".strip()


def render_html(boards: Sequence[Leaderboard], *, title: str = "ppbench leaderboard",
                description: str = "", images: Mapping[str, str] | None = None,
                links: Sequence[tuple[str, str]] = ()) -> str:
    """A standalone page. ``images`` maps a board's slug to an image path relative to the page;
    ``links`` are (href, text) pairs listed under the title (e.g. the CSV and JSON files)."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{esc(title)}</title>", f"<style>\n{_CSS}\n</style>", "</head>", "<body>",
             f"<h1>{esc(title)}</h1>"]
    if description:
        parts.append(f"<p>{esc(description.strip())}</p>")
    if links:
        parts.append("<p>" + " · ".join(f'<a href="{esc(href)}">{esc(text)}</a>'
                                        for href, text in links) + "</p>")
    if not boards:
        parts.append("<p>No results.</p>")
    for board in boards:
        shown = board.display()
        table = str(tabulate(shown.values.tolist(), headers=list(shown.columns), tablefmt="html",
                             disable_numparse=True))
        parts += [f'<section id="{esc(board.slug)}">', f"<h2>{esc(board.title)}</h2>", table]
        parts.append('<ul class="footnotes">' + "".join(f"<li>{esc(n)}</li>" for n in board.footnotes)
                     + "</ul>")
        if images and board.slug in images:
            alt = f"privacy–utility trade-off, {board.title}"
            parts.append(f'<p><img src="{esc(images[board.slug])}" alt="{esc(alt)}"></p>')
        if board.notes:
            parts.append('<h3>Notes</h3><ul class="notes">'
                         + "".join(f"<li>{esc(n)}</li>" for n in board.notes) + "</ul>")
        parts.append('<h3>Provenance</h3><ul class="provenance">'
                     + "".join(f"<li>{esc(line)}</li>" for line in provenance_lines(board.provenance))
                     + "</ul>")
        parts.append("</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def render(boards: Sequence[Leaderboard], fmt: Format | str = "md", *, title: str | None = None) -> str:
    """All boards in one document: ``md`` (pipe tables with footnotes and provenance), ``csv`` (the
    tidy frame, one row per configuration and column), ``json`` (boards with rows and provenance,
    NaN as null) or ``html`` (a standalone page)."""
    if fmt == "md":
        return render_markdown(boards, title=title)
    if fmt == "csv":
        return render_csv(boards)
    if fmt == "json":
        return render_json(boards)
    if fmt == "html":
        return render_html(boards, title=title or "ppbench leaderboard")
    raise ValueError(f"unknown leaderboard format {fmt!r}; choose one of {list(FORMATS)}")


def write_leaderboards(boards: Sequence[Leaderboard], out_dir: str | Path,
                       formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write ``<slug>.<ext>`` per board and a combined ``leaderboard.<ext>`` per format, where the
    slug is ``<dataset>-<task>``; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown leaderboard format {fmt!r}; choose one of {list(FORMATS)}")
        ext = EXTENSIONS[fmt]
        for board in boards:
            path = out_dir / f"{board.slug}.{ext}"
            path.write_text(render([board], fmt, title=f"ppbench leaderboard: {board.title}"),
                            encoding="utf-8")
            written.append(path)
        path = out_dir / f"leaderboard.{ext}"
        path.write_text(render(boards, fmt, title="ppbench leaderboard"), encoding="utf-8")
        written.append(path)
    return written
