"""Leaderboards for a terminal: the key figures in a table that fits the window, every column
with ``wide``, and the provenance once for all boards.

The compact table is what a reader scans first: tier, sanitizer, the ranking utility, the worst
case with its interval, the attack that reached it, whether the row leaks, the front, and a
numbered ⚠ whose reason is spelled out under the table (a flag's text would not fit in a column).
The Markdown, CSV, JSON and HTML renderings keep every figure and footnote.
"""

from __future__ import annotations

import math
import textwrap
from typing import Sequence

import pandas as pd
from tabulate import tabulate

from ..provenance import provenance_once
from .board import PARETO_TEXT, Leaderboard, attack_with_source, cell_text, fixed

WIDTH = 120
ELLIPSIS = "…"


def _figure(mean: float, low: float, high: float, role: str) -> str:
    if mean is None or not math.isfinite(mean):
        return "—"
    half = max(mean - low, high - mean) if math.isfinite(low) and math.isfinite(high) else math.nan
    return cell_text(mean, half, "ok", role)


def _separate_models(board: Leaderboard) -> list[str]:
    """Threat models judged apart on this board (the key holder), in column order."""
    suffix = "_worst_case"
    return [name[:-len(suffix)] for name in board.ranking.columns
            if name.endswith(suffix) and name != "worst_case"]


def compact_frame(board: Leaderboard) -> tuple[pd.DataFrame, list[str]]:
    """The compact table's rows and the flags it numbers (``⚠1``...), in board order."""
    ranking = board.ranking
    utility = board.utility_column
    separate = _separate_models(board)
    rows, flags = [], []
    # The records by column name: itertuples renames columns that are not identifiers
    # ("key-holder_worst_case") to positional names.
    for row, record in zip(ranking.itertuples(index=False), ranking.to_dict("records")):
        line = {"tier": str(int(row.tier)) if pd.notna(row.tier) else "—", "sanitizer": row.sanitizer}
        if utility is not None:
            line[utility.header] = _figure(row.utility, row.utility_ci_low, row.utility_ci_high, utility.role)
        if board.has_attacks:
            worst = _figure(row.worst_case, row.worst_case_ci_low, row.worst_case_ci_high, "leakage")
            line["worst case"] = worst + ("*" if row.incomplete else "")
            line["worst attack"] = attack_with_source(row.worst_attack, board.attack_sources)
            for model in separate:
                line[f"{model.replace('-', ' ')}"] = _figure(
                    record[f"{model}_worst_case"], record[f"{model}_worst_case_ci_low"],
                    record[f"{model}_worst_case_ci_high"], "leakage")
            line["leaks"] = {True: "yes", False: "no"}.get(row.leaks, "")
            line["front"] = PARETO_TEXT[row.pareto]
            if row.flag:
                flags.append(f"{row.sanitizer}: {row.flag}")
                line["⚠"] = f"⚠{len(flags)}"
            else:
                line["⚠"] = ""
        rows.append(line)
    columns = list(rows[0]) if rows else ["tier", "sanitizer"]
    if not flags and "⚠" in columns:
        columns.remove("⚠")
    return pd.DataFrame(rows, columns=columns), flags


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(1, width - 1)] + ELLIPSIS


def _table(frame: pd.DataFrame) -> str:
    align = ["left" if c in ("sanitizer", "worst attack", "⚠") else "center" if c in ("tier", "leaks", "front")
             else "right" for c in frame.columns]
    return tabulate(frame.values.tolist(), headers=list(frame.columns), tablefmt="simple",
                    colalign=align, disable_numparse=True)


def fit_width(frame: pd.DataFrame, width: int) -> str:
    """The table, with the sanitizer and attack names cut (with an ellipsis) until it fits
    ``width`` columns; the numbers are never cut."""
    frame = frame.copy()
    text = _table(frame)
    for column in ("sanitizer", "worst attack"):
        if column not in frame.columns:
            continue
        while max(map(len, text.splitlines())) > width:
            longest = max(len(str(v)) for v in frame[column])
            if longest <= 12:
                break
            frame[column] = [_shorten(str(v), longest - 1) for v in frame[column]]
            text = _table(frame)
    return text


def _heading(board: Leaderboard, seeds: str) -> str:
    floor = board.floor
    text = f"{board.title} · profile {board.profile} · seeds {seeds}"
    if math.isfinite(floor.mean) and board.has_attacks:
        text += f" · leakage floor {fixed(floor.mean, 3)}"
        if math.isfinite(floor.ci_low) and math.isfinite(floor.ci_high):
            text += f" [{fixed(floor.ci_low, 3)}, {fixed(floor.ci_high, 3)}]"
    return text


def _legend(boards: Sequence[Leaderboard], wide: bool) -> list[str]:
    attacks = any(b.has_attacks for b in boards)
    if not attacks:
        return []
    text = ("worst case: the largest normalized advantage over the board's attacks (0 = chance, "
            "1 = the secret read perfectly), ± its 95% interval simultaneous over those attacks; "
            "* incomplete (an attack failed). leaks: above the leakage floor for sure. front: ✓ on "
            "the privacy–utility front, (✓) possibly. Tiers group rows that do not differ "
            "significantly.")
    if not wide:
        text += " `--wide` shows every attack and metric; `--format md` adds the footnotes."
    return [text]


def render_terminal(boards: Sequence[Leaderboard], *, wide: bool = False, width: int = WIDTH) -> str:
    """Every board as a table for a terminal (``width`` columns unless ``wide``), its flags
    spelled out below it, a legend, and the provenance once."""
    if not boards:
        return "No results.\n"
    parts = []
    for board in boards:
        seeds = ", ".join(str(s) for s in board.provenance.get("seeds", [])) or "?"
        parts.append(_heading(board, seeds) if wide else _shorten(_heading(board, seeds), width))
        if wide:
            shown = board.display()
            flags = []
            if "flag" in shown.columns:
                marks = []
                for sanitizer, flag in zip(shown["sanitizer"], shown["flag"]):
                    if flag:
                        flags.append(f"{sanitizer}: {flag.removeprefix('⚠ ')}")
                    marks.append(f"⚠{len(flags)}" if flag else "")
                shown = shown.drop(columns=["flag"])
                if flags:
                    shown["⚠"] = marks
            parts.append(_table(shown))
            levels = board.level_table()
            if not levels.empty:
                parts += ["", "worst case by attacker knowledge:", _table(levels)]
        else:
            frame, flags = compact_frame(board)
            parts.append(fit_width(frame, width))
        for number, flag in enumerate(flags, 1):
            parts.append(textwrap.fill(flag, width, initial_indent=f"⚠{number} ",
                                       subsequent_indent=" " * (len(str(number)) + 2)))
        parts.append("")
    for line in _legend(boards, wide):
        parts.append(textwrap.fill(line, width))
    shared, own = provenance_once({b.slug: b.provenance for b in boards})
    parts.append("")
    parts.append("provenance: " + shared[0] if shared else "provenance:")
    parts += [textwrap.fill(line, width, initial_indent="  ", subsequent_indent="    ")
              for line in shared[1:]]
    for slug, lines in own.items():
        parts += [textwrap.fill(line, width, initial_indent=f"  {slug}: ", subsequent_indent="    ")
                  for line in lines]
    return "\n".join(parts) + "\n"
