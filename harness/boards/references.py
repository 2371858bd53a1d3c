"""Published figures beside a board's own: the spec's ``[[reference]]`` tables.

A benchmark that reproduces a paper states the paper's numbers next to the configurations that
reproduce them::

    [[reference]]
    source = "Martinsson et al. 2020, Table 2 (CelebA smiling, eps = 0.05)"
    sanitizer = "filter-generator(epochs=10,eps=0.05)"   # a row label as the board shows it
    column = "adversarial-classifier acc"               # a column header as the board shows it
    value = 0.541                                       # or: range = [0.824, 0.912]
    task = "smiling"                                    # optional: which board (default: every board)

``ppbench publish`` renders them as a table under the board: the source, the paper's figure, ours
with its 95% interval and seeds, and whether the paper's figure lies inside our interval. A row
or column that is not on the board is shown as such, never dropped: a reference that silently
vanished would read as agreement.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from ..spec import Reference
from .board import Leaderboard


def reference_rows(board: Leaderboard, references: Sequence[Reference]) -> list[dict[str, Any]]:
    """One row per reference that applies to ``board``: the paper's figure and ours."""
    columns = {c.header: c for c in board.columns}

    def figure(sanitizer: str, header: str) -> dict[str, Any]:
        cell = board.figure(sanitizer, columns[header])
        return {k: cell[k] for k in ("mean", "ci_low", "ci_high", "n_seeds", "status")}

    return compare_references(references, board.task, set(board.ranking["sanitizer"]), set(columns), figure)


def compare_references(references: Sequence[Reference], task: str, labels: set[str], headers: set[str],
                       figure: Callable[[str, str], Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The comparison of :func:`reference_rows` for a board given by its row ``labels``, column
    ``headers`` and a ``figure(sanitizer, header)`` lookup (mean, ci_low, ci_high, n_seeds,
    status; a number may be None): also what the site uses on a published leaderboard.json."""
    rows = []
    for ref in references:
        if ref.task is not None and ref.task != task:
            continue
        row: dict[str, Any] = {"source": ref.source, "sanitizer": ref.sanitizer, "column": ref.column,
                               "paper": ref.paper_text, "ours": "", "agrees": ""}
        if ref.sanitizer not in labels:
            row["ours"] = "not on this board (no such row)"
        elif ref.column not in headers:
            row["ours"] = "not on this board (no such column)"
        else:
            cell = figure(ref.sanitizer, ref.column)
            mean, low, high = (math.nan if cell[k] is None else float(cell[k]) for k in ("mean", "ci_low", "ci_high"))
            if cell["status"] != "ok" or not math.isfinite(mean):
                row["ours"] = str(cell["status"])
            else:
                interval = f" [{low:.3f}, {high:.3f}]" if math.isfinite(low) and math.isfinite(high) else ""
                row["ours"] = f"{mean:.3f}{interval} ({int(cell['n_seeds'])} seeds)"
                if math.isfinite(low) and math.isfinite(high):
                    inside = low <= ref.high and ref.low <= high
                    row["agrees"] = "yes" if inside else ("ours higher" if low > ref.high else "ours lower")
        rows.append(row)
    return rows


REFERENCE_HEADERS = ("source", "sanitizer", "column", "paper", "ours (95% interval)", "paper inside ours")
REFERENCE_NOTE = ("The paper's figure against ours: \"yes\" when the paper's value (or range) meets our "
                  "95% interval. Our setting differs from the paper's (see the spec's comments), so a "
                  "difference is a finding to read, not a failure.")


def reference_table_rows(board: Leaderboard, references: Sequence[Reference]) -> list[list[str]]:
    return [[r["source"], r["sanitizer"], r["column"], r["paper"], r["ours"], r["agrees"]]
            for r in reference_rows(board, references)]
