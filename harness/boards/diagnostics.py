"""What a board's cells recorded besides their figures: wall times, diagnostics and messages.

The board model keeps them per (configuration, plugin) in :class:`~.board.CellInfo`; this module
lays them out for the tidy CSV (a ``message`` column, and one extra row per configuration, plugin
and diagnostic with ``kind`` = ``diagnostic``) and for Markdown (a compact list per board: one
line per plugin, its figures averaged over the board's rows, the range over rows beside them).
The JSON carries them per cell (:meth:`~.board.Leaderboard.rows`) and the site shows them in the
cells' tooltips.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .board import TIDY_COLUMNS, Leaderboard, cell_kind, diagnostic_name

DIAGNOSTIC = "diagnostic"  # the tidy rows' kind and role
WALL_TIME = "wall_time_s"
MESSAGE = "message"
CSV_COLUMNS = (*TIDY_COLUMNS, MESSAGE)


def _plugin_columns(board: Leaderboard) -> dict[tuple[str, str], Any]:
    """Each (cell kind, plugin label) of the board with its first column (for the threat model)."""
    found: dict[tuple[str, str], Any] = {}
    for column in board.columns:
        kind = cell_kind(column)
        if kind is not None:
            found.setdefault((kind, column.key.plugin), column)
    return found


def messages_column(board: Leaderboard) -> list[str]:
    """The ``message`` of each of ``board.table``'s rows: its cells' error and n/a messages."""
    by_header = {c.header: c for c in board.columns}
    texts = []
    for sanitizer, header in zip(board.table["sanitizer"], board.table["column"]):
        column = by_header.get(header)
        info = board.info(sanitizer, column) if column is not None else None
        texts.append("; ".join(f"{text} (seeds {', '.join(map(str, seeds))})"
                               for text, seeds in sorted(info.messages.items())) if info else "")
    return texts


def diagnostic_rows(board: Leaderboard) -> pd.DataFrame:
    """One tidy row per configuration, plugin and recorded figure that is not on the board: the
    cell's mean wall time over seeds (``value`` = ``wall_time_s``) and each diagnostic."""
    plugins = _plugin_columns(board)
    records = []
    for row in board.ranking.itertuples(index=False):
        for (kind, plugin), column in sorted(plugins.items()):
            info = board.cell_info.get((row.sanitizer, kind, plugin))
            if info is None:
                continue
            figures: list[tuple[str, str, float, float, float, int, str]] = []
            if info.wall_time:
                times = list(info.wall_time.values())
                figures.append((f"{plugin} wall time (s)", WALL_TIME, sum(times) / len(times),
                                math.nan, math.nan, len(times), "mean over seeds"))
            for name, figure in sorted(info.diagnostics.items()):
                figures.append((f"{plugin} {diagnostic_name(name)}", name, figure.mean, figure.ci_low,
                                figure.ci_high, figure.n_seeds, figure.interval))
            for header, value, mean, low, high, seeds, interval in figures:
                half = max(mean - low, high - mean) if math.isfinite(low) and math.isfinite(high) else math.nan
                records.append({
                    "dataset": board.dataset, "data": board.data, "task": board.task,
                    "sensitive": board.sensitive, "profile": board.profile, "position": row.position,
                    "tier": row.tier, "sanitizer": row.sanitizer, "column": header, "kind": DIAGNOSTIC,
                    "plugin": plugin, "value": value, "threat_model": column.threat_model,
                    "role": DIAGNOSTIC, "better": "", "mean": mean, "ci_low": low, "ci_high": high,
                    "half_width": half, "n_seeds": seeds, "interval": interval, "status": "ok",
                    "incomplete": row.incomplete, "leaks": row.leaks, "pareto": row.pareto,
                    "flag": row.flag, MESSAGE: "",
                })
    return pd.DataFrame(records, columns=list(CSV_COLUMNS))


def csv_frame(board: Leaderboard) -> pd.DataFrame:
    """The board's tidy rows with their messages, then its diagnostic rows."""
    table = board.table.assign(**{MESSAGE: messages_column(board)})
    extra = diagnostic_rows(board)
    if extra.empty:
        return table[list(CSV_COLUMNS)]
    # Concatenating with an all-NaN frame would change dtypes; the diagnostic rows have none.
    return pd.concat([table[list(CSV_COLUMNS)], extra], ignore_index=True)


def _number(value: float) -> str:
    return f"{value:.3g}"


def markdown_lines(board: Leaderboard) -> list[str]:
    """The compact "Diagnostics" list of a board: per plugin, its mean wall time per cell and its
    diagnostics averaged over the board's rows (the range over rows in brackets), then each error
    or n/a message with the rows it came from. Empty when the cells recorded nothing."""
    lines = []
    plugins = _plugin_columns(board)
    sanitizers = list(board.ranking["sanitizer"])
    for kind, plugin in sorted(plugins, key=lambda key: (key[0] != "attack", key[1])):
        infos = [board.cell_info[(s, kind, plugin)] for s in sanitizers if (s, kind, plugin) in board.cell_info]
        parts = []
        times = [t for info in infos for t in info.wall_time.values()]
        if times:
            parts.append(f"{_number(sum(times) / len(times))} s per cell")
        names = sorted({name for info in infos for name in info.diagnostics})
        for name in names:
            means = [info.diagnostics[name].mean for info in infos if name in info.diagnostics]
            means = [m for m in means if math.isfinite(m)]
            if not means:
                continue
            text = f"{diagnostic_name(name)} {_number(sum(means) / len(means))}"
            if min(means) != max(means):
                text += f" [{_number(min(means))}–{_number(max(means))}]"
            parts.append(text)
        if parts:
            lines.append(f"{plugin}: " + "; ".join(parts))
        messages: dict[str, list[str]] = {}
        for sanitizer in sanitizers:
            info = board.cell_info.get((sanitizer, kind, plugin))
            for text in sorted(info.messages) if info else ():
                messages.setdefault(text, []).append(sanitizer)
        for text, rows in messages.items():
            lines.append(f"{plugin} {text.replace(chr(10), ' ')} — {', '.join(rows)}")
    if not lines:
        return []
    return [f"- {line}" for line in lines]


DIAGNOSTICS_INTRO = ("What the plugins recorded besides their figures, not ranked: mean wall time per "
                     "cell, and each diagnostic's mean over the rows ([lowest–highest row]); per row "
                     "in leaderboard.json and leaderboard.csv (kind = diagnostic).")
