"""The privacy–utility trade-off plot of one leaderboard (``tradeoff-<slug>.png``).

One numbered marker per configuration at (worst-case normalized advantage, ranking utility), with
both 95% intervals as error bars, the Pareto front as a step line and a key beside the axes that
names each number, so that no label needs room inside the axes: the x-axis ends at 1, where the
advantage ends. The points come from a built :class:`~ppbench.boards.board.Leaderboard`
(:func:`points_of_board`) or from a published ``leaderboard.json`` board
(:func:`points_of_json`), so an older folder can be redrawn without its store.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .boards.board import Leaderboard, is_finite, number
from .spec import split_top_level


@dataclass(frozen=True)
class Point:
    position: int
    sanitizer: str
    tier: int | None
    worst: float
    worst_low: float
    worst_high: float
    utility: float
    utility_low: float
    utility_high: float
    pareto: str  # 'front', 'possible' or ''
    flag: str
    incomplete: bool


@dataclass(frozen=True)
class Tradeoff:
    title: str
    utility_header: str
    utility_better: str
    floor: float
    points: tuple[Point, ...]


def _f(value: Any) -> float:
    value = number(value)
    return math.nan if value is None else value


def points_of_board(board: Leaderboard) -> Tradeoff | None:
    """The plot's data from a built board; None without a utility metric."""
    if board.utility_column is None:
        return None
    points = tuple(Point(int(r.position), str(r.sanitizer), int(r.tier) if is_finite(r.tier) else None,
                         _f(r.worst_case), _f(r.worst_case_ci_low), _f(r.worst_case_ci_high),
                         _f(r.utility), _f(r.utility_ci_low), _f(r.utility_ci_high),
                         str(r.pareto or ""), str(r.flag or ""), bool(r.incomplete))
                   for r in board.ranking.itertuples(index=False))
    return Tradeoff(board.title, board.utility_column.header, board.utility_column.better,
                    _f(board.floor.mean), points)


def json_title(board: Mapping[str, Any]) -> str:
    """A published board's title, as :attr:`Leaderboard.title` writes it."""
    data = f" [{board['data']}]" if board.get("data") else ""
    return f"{board['dataset']}{data} / {board['task']} (sensitive: {board['sensitive']})"


def points_of_json(board: Mapping[str, Any]) -> Tradeoff | None:
    """The plot's data from one board of a published ``leaderboard.json``; None without a utility
    metric or without a (keyless) worst-case column."""
    header = board.get("utility_column")
    columns = {c["header"]: c for c in board.get("columns", [])}
    worst = next((c["header"] for c in board.get("columns", [])
                  if c["kind"] == "worst case" and not c.get("plugin")), None)
    if header not in columns or worst is None:
        return None
    points = []
    for row in board.get("rows", []):
        w, u = row["values"].get(worst, {}), row["values"].get(header, {})
        points.append(Point(int(row["position"]), row["sanitizer"], row.get("tier"),
                            _f(w.get("mean")), _f(w.get("ci_low")), _f(w.get("ci_high")),
                            _f(u.get("mean")), _f(u.get("ci_low")), _f(u.get("ci_high")),
                            row.get("pareto") or "", row.get("flag") or "", bool(row.get("incomplete"))))
    floor = (board.get("leakage_floor") or {}).get("mean")
    return Tradeoff(json_title(board), header, columns[header]["better"], _f(floor), tuple(points))


_LABEL = re.compile(r"^(?P<name>[^(]+)\((?P<params>.*)\)$")


def short_labels(labels: Sequence[str]) -> list[str]:
    """Row labels without the parameters that every configuration of the same sanitizer shares
    ("gap-filter(epochs=40,eps=0.5,loss=entropy)" -> "gap-filter(eps=0.5,loss=entropy)" when
    every gap-filter row has epochs=40): the key beside the plot stays readable."""
    parsed: list[tuple[str, list[str]] | None] = []
    for label in labels:
        match = _LABEL.match(label)
        parsed.append((match["name"], split_top_level(match["params"])) if match else None)
    shared: dict[str, set[str]] = {}
    for entry in parsed:
        if entry is not None:
            name, params = entry
            shared[name] = shared[name] & set(params) if name in shared else set(params)
    counts: dict[str, int] = {}
    for entry in parsed:
        if entry is not None:
            counts[entry[0]] = counts.get(entry[0], 0) + 1
    out = []
    for label, entry in zip(labels, parsed):
        if entry is None or counts[entry[0]] < 2:
            out.append(label)
            continue
        name, params = entry
        kept = [p for p in params if p not in shared[name]]
        out.append(f"{name}({','.join(kept)})" if kept else name)
    return out


def _bar(mean: float, low: float, high: float) -> list[list[float]] | None:
    """Asymmetric error bar distances: the interval the board itself uses."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    return [[max(mean - low, 0.0)], [max(high - mean, 0.0)]]


COLOURS = {"front": "C0", "possible": "C9", "": "0.55"}


def draw_tradeoff(data: Tradeoff, path: Path) -> Path | None:
    """Write the plot as a PNG; None when no configuration has both figures."""
    shown = [p for p in data.points if math.isfinite(p.worst) and math.isfinite(p.utility)]
    left_out = [p for p in data.points if p not in shown]
    if not shown:
        return None
    # Object-oriented matplotlib on the Agg canvas: no pyplot, so no global backend is switched
    # under a caller (e.g. a notebook).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(11, 6.5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.07, 0.27, 0.52, 0.65))
    lows = [min(p.worst, p.worst_low) if math.isfinite(p.worst_low) else p.worst for p in shown]
    # Advantage lies in [-1, 1]: the axis ends at 1, and starts just left of the lowest interval
    # (a wide interval over few seeds may overshoot -1; the view need not).
    left = max(-1.0, min(0.0, min(lows)))
    axes.set_xlim(left - 0.03 * (1.0 - left), 1.0)
    for point in shown:
        colour = COLOURS.get(point.pareto, "0.55")
        # Pareto colour, hollow when incomplete; a red ring marks a flagged row. Error bars are
        # drawn in the marker's colour, thick enough to read at page size.
        axes.errorbar(point.worst, point.utility, xerr=_bar(point.worst, point.worst_low, point.worst_high),
                      yerr=_bar(point.utility, point.utility_low, point.utility_high), linestyle="none",
                      capsize=4, elinewidth=1.4, capthick=1.4, ecolor=colour, alpha=0.9,
                      marker="o", markersize=12, color=colour,
                      markerfacecolor="white" if point.incomplete else colour,
                      markeredgecolor="C3" if point.flag else colour,
                      markeredgewidth=2.2 if point.flag else 1.0, zorder=3)
        axes.annotate(str(point.position), (point.worst, point.utility), ha="center", va="center",
                      fontsize=7, fontweight="bold", zorder=4,
                      color="black" if point.incomplete or point.pareto == "possible" else "white")
    axes.axvline(0.0, color="0.6", linewidth=0.8, linestyle=":", zorder=1)
    if math.isfinite(data.floor):
        axes.axvline(max(0.0, data.floor), color="C3", linewidth=1.0, linestyle="--", zorder=1)
    bottom, top = axes.get_ylim()
    front = sorted((p for p in shown if p.pareto == "front"), key=lambda p: p.worst)
    if front:
        # The front as the boundary of the region it dominates: up from the bottom at the most
        # private front point, a step at each point that buys utility with privacy, and on to the
        # right edge (so a one-point front is visible too).
        higher = data.utility_better != "lower"
        xs = [front[0].worst] + [p.worst for p in front] + [1.0]
        ys = [bottom if higher else top] + [p.utility for p in front] + [front[-1].utility]
        axes.step(xs, ys, where="post", color="C0", linestyle="--", linewidth=1.3, zorder=2)
        axes.set_ylim(bottom, top)
    axes.set_xlabel("worst-case normalized advantage over the attacks\n(0 = chance, 1 = the attribute is read perfectly; lower = more private)")
    axes.set_ylabel(f"{data.utility_header} ({data.utility_better} = better)")
    axes.set_title(data.title, fontsize=11)
    axes.grid(alpha=0.3)

    legend = []
    if front:
        legend.append(Line2D([], [], color="C0", marker="o", linestyle="--",
                             label="on the front for sure: no row can be better on both axes"))
    if any(p.pareto == "possible" for p in shown):
        legend.append(Line2D([], [], color="C9", marker="o", linestyle="none",
                             label="possibly on the front: intervals overlap a row that may beat it"))
    if any(p.pareto == "" and not p.incomplete for p in shown):
        legend.append(Line2D([], [], color="0.55", marker="o", linestyle="none",
                             label="not on the front: another row is better on both axes for sure"))
    if any(p.incomplete for p in shown):
        legend.append(Line2D([], [], color="0.55", marker="o", markerfacecolor="white", linestyle="none",
                             label="incomplete (an attack failed or is missing): worst case may be\n"
                                   "understated, so not judged for the front"))
    if any(p.flag for p in shown):
        legend.append(Line2D([], [], color="0.55", marker="o", markeredgecolor="C3", markeredgewidth=2.2,
                             linestyle="none", label="⚠ flagged: passes an audit, leaks to another attack"))
    if math.isfinite(data.floor):
        legend.append(Line2D([], [], color="C3", linestyle="--",
                             label="leakage floor: what the kept utility attributes alone reveal"))
    legend.append(Line2D([], [], color="0.3", marker="|", markersize=10, linestyle="-", linewidth=1.4,
                         label="error bars: 95% intervals (worst case: simultaneous over attacks)"))
    figure.legend(handles=legend, fontsize=7.5, loc="lower left", bbox_to_anchor=(0.005, 0.0),
                  ncols=2, frameon=False)

    # The key: each marker's number, tier and row (short labels: parameters shared by every
    # configuration of a sanitizer are dropped), flagged rows in red with their flag.
    names = short_labels([p.sanitizer for p in data.points])
    lines = []
    for point, name in zip(data.points, names):
        tier = f"T{point.tier}" if point.tier is not None else "T—"
        mark = "" if point in shown else "  (not plotted)"
        lines.append((f"{point.position:>2}  {tier:<3} {name}{' *' if point.incomplete else ''}{mark}",
                      "C3" if point.flag else "black"))
    size = 8 if len(lines) <= 24 else max(5.0, 8 * 24 / len(lines))
    figure.text(0.62, 0.925, "key: number, tier, row", fontsize=8, fontweight="bold", va="bottom")
    step = min(0.034, 0.76 / max(len(lines), 1))
    for i, (text, colour) in enumerate(lines):
        figure.text(0.62, 0.905 - i * step, text, fontsize=size, color=colour, va="top", family="monospace")
    if any(p.flag for p in data.points):
        figure.text(0.62, 0.905 - len(lines) * step - 0.01, "red: ⚠ flagged (see the table's flag column)",
                    fontsize=7, color="C3", va="top")
    if left_out:
        figure.text(0.62, 0.02, "not plotted: " + ", ".join(p.sanitizer for p in left_out)
                    + " — no worst case or no utility\n(every attack failed or was n/a on it), so it has no point",
                    fontsize=7, color="0.3", va="bottom", wrap=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" metadata: keeps the file independent of the matplotlib version string.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def plot_tradeoff(board: Leaderboard, path: Path) -> Path | None:
    """The privacy–utility plot of one leaderboard as a PNG; None when there is nothing to plot
    (no utility metric, or no configuration with both figures)."""
    data = points_of_board(board)
    return draw_tradeoff(data, path) if data is not None else None
