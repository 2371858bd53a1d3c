"""Sweep curves: a board's privacy–utility trade-off drawn per sanitizer family, as papers draw it.

A benchmark that sweeps one numeric parameter of a sanitizer (a distortion budget, a blur radius)
reads best as curves: one per family of configurations that differ only in that parameter (for
example ``gap-filter`` with ``loss=entropy``), each point labelled with the parameter's value.
The x axis is the standard check's plain accuracy (Martinsson et al.'s "privacy loss"), the y axis the board's ranking utility; both carry the board's 95% intervals. Upper left
is better. Boards without a standard check, a utility or a sweep get no curve plot.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from .boards.board import ATTACK, Leaderboard, is_finite
from .spec import split_top_level

CURVES_PREFIX = "curves-"
_LABEL = re.compile(r"^(?P<name>[^()]+?)(?:\((?P<params>.*)\))?$")


def curves_path_name(board: Leaderboard) -> str:
    return f"{CURVES_PREFIX}{board.slug}.png"


def split_label(label: str) -> tuple[str, dict[str, str]]:
    """``"blur(sigma=2.0)"`` -> ``("blur", {"sigma": "2.0"})``, the inverse of
    :attr:`ppbench.spec.PluginConfig.label`; commas inside brackets (a list value) do not split."""
    match = _LABEL.match(label.strip())
    if match is None:
        return label, {}
    params: dict[str, str] = {}
    text = match.group("params") or ""
    for piece in split_top_level(text) if text else []:
        key, _, value = piece.partition("=")
        params[key.strip()] = value.strip()
    return match.group("name").strip(), params


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def sweep_families(labels: list[str]) -> dict[tuple[str, str], list[tuple[float, str]]]:
    """Group configuration labels into curves: ``(family name, swept parameter) -> [(value,
    label)]`` sorted by value. A parameter is swept when it is numeric in every configuration of
    a sanitizer and takes at least two values there; when several are, the one with the most
    values is the curve's axis and the others split the families."""
    by_name: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
    for label in labels:
        name, params = split_label(label)
        by_name[name].append((label, params))
    curves: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for name, members in by_name.items():
        keys = set.intersection(*(set(p) for _, p in members)) if members else set()
        numeric = {key: {p[key] for _, p in members} for key in keys
                   if all(_number(p[key]) is not None for _, p in members)}
        swept = [key for key, values in numeric.items() if len(values) >= 2]
        if not swept:
            continue
        axis = max(sorted(swept), key=lambda key: len(numeric[key]))
        families: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for label, params in members:
            # The family is named by what varies besides the axis; constants name nothing.
            rest = ", ".join(f"{k}={v}" for k, v in sorted(params.items())
                             if k != axis and len({p.get(k) for _, p in members}) > 1)
            family = f"{name} ({rest})" if rest else name
            families[family].append((float(params[axis]), label))
        for family, points in families.items():
            if len(points) >= 2:
                curves[(family, axis)] = sorted(points)
    return curves


def plot_sweep_curves(board: Leaderboard, path: Path) -> Path | None:
    """The board's sweep curves as a PNG; None when it has no standard check with an accuracy,
    no utility, or no swept parameter."""
    if board.utility_column is None or not board.standard_check:
        return None
    accuracy = next((c for c in board.columns if c.key.kind == ATTACK and c.plugin_name == board.standard_check
                     and c.key.value == "accuracy"), None)
    if accuracy is None:
        return None
    curves = sweep_families(list(board.ranking["sanitizer"]))
    if not curves:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, ((family, axis), points) in enumerate(sorted(curves.items())):
        xs, ys, xerr, yerr = [], [], [[], []], [[], []]
        for value, label in points:
            x, y = board.figure(label, accuracy), board.figure(label, board.utility_column)
            if not (is_finite(x["mean"]) and is_finite(y["mean"])):
                continue
            xs.append(float(x["mean"]))
            ys.append(float(y["mean"]))
            for errors, cell in ((xerr, x), (yerr, y)):
                errors[0].append(_gap(cell["mean"], cell["ci_low"]))
                errors[1].append(_gap(cell["ci_high"], cell["mean"]))
            axes.annotate(f"{value:g}", (xs[-1], ys[-1]), xytext=(4, 4), textcoords="offset points",
                          fontsize=7, color=f"C{index % 10}")
        if xs:
            axes.errorbar(xs, ys, xerr=xerr, yerr=yerr, marker="o", markersize=5, capsize=2,
                          elinewidth=0.8, linewidth=1.4, color=f"C{index % 10}", label=f"{family}: {axis}")
    # Accuracy lies in [0, 1]; a Student-t interval over few seeds may overshoot, the view need not.
    low, high = axes.get_xlim()
    axes.set_xlim(max(low, 0.0), min(high, 1.0))
    axes.set_xlabel(f"{board.standard_check} accuracy (the papers' privacy loss; nearer chance = more private)")
    axes.set_ylabel(f"{board.utility_column.header} ({board.utility_column.better} = better)")
    axes.set_title(f"{board.title}: trade-off by sweep (upper left is better)", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.text(0.01, 0.005, "point labels: the swept parameter's value; error bars: the board's 95% intervals",
                fontsize=7, color="0.3", ha="left", va="bottom")
    figure.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def _gap(high: Any, low: Any) -> float:
    return max(0.0, float(high) - float(low)) if is_finite(high) and is_finite(low) else 0.0
