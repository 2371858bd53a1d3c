"""Data curves: each attack's figure against a swept ``[dataset]`` parameter.

A benchmark that sweeps a data-set parameter (``n_train = [500, 2000]``: the fit-set size of
Webster et al.'s membership trend) has one board per data configuration. Read side by side, they
answer "how does leakage change with the data?": this figure draws, for boards of one data set,
task and profile that differ in one numeric data parameter, each attack's primary figure (its
advantage: normalized for an attribute attack, 2·accuracy − 1 for a membership attack; 0 is
chance) against the parameter's value, with the boards' 95% intervals. One panel per figure
name, a colour per attack, a line style per sanitizer configuration.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from .boards.board import Column, Leaderboard, parse_data_label
from .budget_curves import figure_series, primary_attack_columns

DATA_CURVES_PREFIX = "data-"
DATA_CAPTION = "leakage against the data configuration"
_LINE_STYLES = ("-", "--", ":", "-.")


def data_curves_path_name(board: Leaderboard) -> str:
    return f"{DATA_CURVES_PREFIX}{board.slug}.png"


def _numeric_data(label: str) -> dict[str, float] | None:
    values: dict[str, float] = {}
    for key, text in parse_data_label(label):
        try:
            values[key] = float(text)
        except ValueError:
            return None
    return values


def data_sweeps(boards: Sequence[Leaderboard]) -> list[tuple[str, list[tuple[float, Leaderboard]]]]:
    """``[(parameter, [(value, board)])]``: boards of one data set, task and profile whose data
    labels differ in exactly one numeric parameter, sorted by its value."""
    groups: dict[tuple, list[Leaderboard]] = defaultdict(list)
    for board in boards:
        if board.data:
            groups[(board.dataset, board.task, board.profile)].append(board)
    sweeps = []
    for members in groups.values():
        parsed = [(_numeric_data(board.data), board) for board in members]
        if len(parsed) < 2 or any(values is None for values, _ in parsed):
            continue
        keys = set.union(*(set(values) for values, _ in parsed))
        if len(keys) != 1:
            continue
        parameter = keys.pop()
        sweeps.append((parameter, sorted(((values[parameter], board) for values, board in parsed),
                                         key=lambda point: point[0])))
    return sweeps


def plot_data_sweep(parameter: str, points: Sequence[tuple[float, Leaderboard]], path: Path) -> Path:
    """One data sweep (:func:`data_sweeps`) as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # (figure name) -> (attack label) -> column per board
    panels: dict[str, dict[str, dict[int, Column]]] = defaultdict(lambda: defaultdict(dict))
    for index, (_, board) in enumerate(points):
        for attack, column in primary_attack_columns(board).items():
            panels[column.key.value][attack][index] = column
    sanitizers = list(dict.fromkeys(s for _, board in points for s in board.ranking["sanitizer"]))
    attacks = sorted({attack for by_attack in panels.values() for attack in by_attack})
    count = len(panels)
    columns = min(3, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(5.0 * columns + 3.2, 4.0 * rows), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    values = [value for value, _ in points]
    handles: dict[str, object] = {}
    for panel, (name, by_attack) in enumerate(sorted(panels.items())):
        axes = figure.add_subplot(rows, columns, panel + 1)
        for attack, by_board in sorted(by_attack.items()):
            colour = f"C{attacks.index(attack) % 10}"
            for number, sanitizer in enumerate(sanitizers):
                xs, ys, low, high = figure_series(
                    (value, board, sanitizer, by_board[index]) for index, (value, board) in enumerate(points)
                    if index in by_board and sanitizer in set(board.ranking["sanitizer"]))
                if xs:
                    line = axes.errorbar(xs, ys, yerr=[low, high], marker="o", markersize=4, capsize=2,
                                         elinewidth=0.8, linewidth=1.3, color=colour,
                                         linestyle=_LINE_STYLES[number % len(_LINE_STYLES)])
                    handles.setdefault(f"{attack} · {sanitizer}", line)
        chance = {"accuracy": 0.5, "advantage": 0.0}.get(name)
        if chance is not None:
            axes.axhline(chance, color="0.4", linestyle=":", linewidth=1)
        if min(values) > 0 and max(values) / min(values) >= 4:
            axes.set_xscale("log")
        axes.set_xticks(values, [f"{v:g}" for v in values])
        axes.minorticks_off()
        axes.set_xlabel(parameter)
        axes.set_ylabel(f"{name} (0 = chance)" if name == "advantage" else name)
        axes.grid(alpha=0.3)
    figure.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=7)
    board = points[0][1]
    figure.suptitle(f"{board.dataset} / {board.task}: {DATA_CAPTION} ({parameter})", fontsize=10)
    figure.text(0.01, 0.005, "colour: attack; line style: sanitizer; error bars: the boards' 95% "
                "intervals; dotted: chance", fontsize=7, color="0.3",
                ha="left", va="bottom")
    figure.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
