"""Budget curves: leakage as the attacker grows, one curve per sanitizer.

A privacy claim made against one attacker says little about a stronger one. A benchmark that
lists an attack at several budgets (``adversarial-classifier`` with ``width = [8, 32, 64]`` and
``max_epochs = [3, 30]``, say) gets a figure of the attack's primary leakage figure (normalized
advantage, with the board's 95% interval) against the budget parameter with the most values, one
panel per setting of the others, one curve per sanitizer configuration. A sanitizer whose curve
rises with the budget has not shown that its claim holds; one that stays at the leakage floor
has, for this family of attackers.

Which configurations form a budget sweep is read from the board's attack labels as
:func:`ppbench.sweep_curves.sweep_families` reads sanitizer sweeps: a numeric parameter that
takes at least two values among the configurations of one attack that set it. The attack's
default configuration (no parameters, usually the standard check) is not a point of the curve:
its budget is the profile's, which the label does not say.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from .boards.board import ATTACK, Column, Leaderboard, is_finite
from .sweep_curves import split_label, sweep_families

BUDGET_PREFIX = "budget-"
BUDGET_CAPTION = "leakage as the attacker grows"


def budget_path_name(board: Leaderboard) -> str:
    return f"{BUDGET_PREFIX}{board.slug}.png"


def primary_attack_columns(board: Leaderboard) -> dict[str, Column]:
    """Each attack configuration's first column (its scoring kind's primary figure)."""
    primary: dict[str, Column] = {}
    for column in board.columns:
        if column.key.kind == ATTACK:
            primary.setdefault(column.key.plugin, column)
    return primary


def figure_series(points: Iterable[tuple[float, Leaderboard, str, Column]]
                  ) -> tuple[list[float], list[float], list[float], list[float]]:
    """``(x, board, sanitizer, column)`` points -> xs, means and the distances from each mean down
    and up to its 95% interval (for ``errorbar``); points without a finite mean are left out."""
    xs, ys, low, high = [], [], [], []
    for x, board, sanitizer, column in points:
        cell = board.figure(sanitizer, column)
        if not is_finite(cell["mean"]):
            continue
        xs.append(x)
        ys.append(float(cell["mean"]))
        low.append(max(0.0, ys[-1] - float(cell["ci_low"])) if is_finite(cell["ci_low"]) else 0.0)
        high.append(max(0.0, float(cell["ci_high"]) - ys[-1]) if is_finite(cell["ci_high"]) else 0.0)
    return xs, ys, low, high


def budget_sweeps(board: Leaderboard) -> dict[tuple[str, str], list[tuple[float, Column]]]:
    """``(family, budget parameter) -> [(value, column)]``, sorted by value, for every attack
    listed at two or more budgets."""
    primary = primary_attack_columns(board)
    by_attack: dict[str, list[str]] = defaultdict(list)
    for label in primary:
        name, params = split_label(label)
        if params:
            by_attack[name].append(label)
    sweeps: dict[tuple[str, str], list[tuple[float, Column]]] = {}
    for labels in by_attack.values():
        for (family, axis), points in sweep_families(labels).items():
            sweeps[(family, axis)] = [(value, primary[label]) for value, label in points]
    return sweeps


def plot_budget_curves(board: Leaderboard, path: Path) -> Path | None:
    """The board's budget curves as a PNG; None when no attack is listed at several budgets."""
    sweeps = budget_sweeps(board)
    if not sweeps:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = sorted(sweeps.items())
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.6 * columns + 2.4, 3.8 * rows), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    sanitizers = list(board.ranking["sanitizer"])
    floor = float(board.floor.mean) if is_finite(board.floor.mean) else None
    handles: dict[str, object] = {}
    for index, ((family, axis), points) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        values = [value for value, _ in points]
        for number, sanitizer in enumerate(sanitizers):
            xs, ys, low, high = figure_series((value, board, sanitizer, column) for value, column in points)
            if xs:
                line = axes.errorbar(xs, ys, yerr=[low, high], marker="o", markersize=4, capsize=2,
                                     elinewidth=0.8, linewidth=1.3, color=f"C{number % 10}")
                handles.setdefault(sanitizer, line)
        if floor is not None:
            axes.axhline(floor, color="0.4", linestyle=":", linewidth=1)
        if min(values) > 0 and max(values) / min(values) >= 4:
            axes.set_xscale("log", base=2)
        axes.set_xticks(values, [f"{v:g}" for v in values])
        axes.minorticks_off()
        axes.set_xlabel(axis)
        axes.set_ylabel(f"{points[0][1].key.value} (0 = chance)")
        axes.set_title(family, fontsize=9)
        axes.grid(alpha=0.3)
    figure.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=7)
    note = "error bars: the board's 95% intervals"
    if floor is not None:
        note += f"; dotted: the leakage floor ({floor:.3f})"
    figure.suptitle(f"{board.title}: {BUDGET_CAPTION}", fontsize=10)
    figure.text(0.01, 0.005, note, fontsize=7, color="0.3", ha="left", va="bottom")
    figure.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
