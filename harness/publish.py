"""``ppbench publish``: a leaderboard folder that is committed and reviewed like code.

:func:`publish` writes into ``out_dir`` (``leaderboards/<benchmark>/``):

- ``benchmark.toml``: the spec, verbatim, so the folder says how to reproduce itself;
- ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard.json``: the tables (see
  :mod:`ppbench.boards`);
- ``provenance.json``: per leaderboard, the versions, commits, devices, seeds and dates of its rows;
- ``tradeoff-<dataset>-<task>.png``: worst-case normalized advantage against the ranking utility,
  one labelled point per sanitizer configuration, the Pareto front as a step line;
- ``curves-<dataset>-<task>.png``: where a sanitizer's parameter is swept, one curve per family
  of configurations (:mod:`ppbench.sweep_curves`);
- ``budget-<dataset>-<task>.png``: where an attack is listed at several budgets, its leakage
  against the budget, one curve per sanitizer (:mod:`ppbench.budget_curves`);
- ``data-<dataset>-<task>-<data>.png``: where the spec sweeps a ``[dataset]`` parameter, each
  attack's figure against it across the boards (:mod:`ppbench.data_curves`);
- ``points-*.png`` / ``strip-*.png``: example outputs, when the spec has an ``[examples]``
  table (:mod:`ppbench.examples`);
- with the spec's ``[[reference]]`` tables, the papers' figures beside the board's own
  (:mod:`ppbench.boards.references`);
- ``index.html``: a static page with the tables and the plots.

Nothing is stamped with the time of publishing: re-publishing the same rows gives the same text
files (PNG bytes may differ between matplotlib versions). Trade-off plots left over from an earlier
publication whose leaderboard is gone are removed, so the folder never shows a stale figure.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Sequence

from .boards.board import Leaderboard, is_finite
from .boards.render import render_csv, render_html, render_json, render_markdown
from .budget_curves import BUDGET_CAPTION, BUDGET_PREFIX, budget_path_name, plot_budget_curves
from .data_curves import DATA_CAPTION, DATA_CURVES_PREFIX, data_curves_path_name, data_sweeps, plot_data_sweep
from .examples import EXAMPLE_PREFIXES
from .spec import Reference
from .sweep_curves import CURVES_PREFIX, curves_path_name, plot_sweep_curves

PLOT_PREFIX = "tradeoff-"


def plot_path_name(board: Leaderboard) -> str:
    return f"{PLOT_PREFIX}{board.slug}.png"


def _spec_header(spec_toml_text: str, fallback_name: str) -> tuple[str, str]:
    try:
        spec = tomllib.loads(spec_toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"the benchmark spec to publish is not valid TOML: {exc}") from None
    benchmark = spec.get("benchmark", {}) if isinstance(spec.get("benchmark"), dict) else {}
    return str(benchmark.get("name") or fallback_name), str(benchmark.get("description") or "")


def publish(boards: list[Leaderboard], spec_toml_text: str, out_dir: str | Path, *,
            plots: bool = True, examples: dict[str, list[tuple[str, str]]] | None = None,
            references: Sequence[Reference] = ()) -> list[Path]:
    """Write the leaderboard folder for ``boards`` (built from the benchmark's cells) and the spec
    they were run from; returns the paths written. ``examples``: figures already written into
    ``out_dir`` (:func:`ppbench.examples.draw_examples`), shown under their board;
    ``references``: the spec's published figures, compared with the boards' own."""
    out_dir = Path(out_dir)
    name, description = _spec_header(spec_toml_text, out_dir.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{name} leaderboard"
    written: list[Path] = []

    def write(file_name: str, text: str) -> None:
        path = out_dir / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)

    images: dict[str, list[tuple[str, str]]] = {}
    if plots:
        for board in boards:
            for plot, name, caption in (
                    (plot_tradeoff, plot_path_name(board), "privacy–utility trade-off"),
                    (plot_sweep_curves, curves_path_name(board), "trade-off by swept parameter"),
                    (plot_budget_curves, budget_path_name(board), BUDGET_CAPTION)):
                path = plot(board, out_dir / name)
                if path is not None:
                    images.setdefault(board.slug, []).append((path.name, f"{caption}, {board.title}"))
                    written.append(path)
        for parameter, points in data_sweeps(boards):
            first = points[0][1]
            path = plot_data_sweep(parameter, points, out_dir / data_curves_path_name(first))
            images.setdefault(first.slug, []).append(
                (path.name, f"{DATA_CAPTION} ({parameter}), {first.dataset} / {first.task}"))
            written.append(path)
    for slug, figures in (examples or {}).items():
        images.setdefault(slug, []).extend(figures)
        written.extend(out_dir / name for name, _ in figures)
    current = {name for shown in images.values() for name, _ in shown}
    for prefix in (PLOT_PREFIX, CURVES_PREFIX, BUDGET_PREFIX, DATA_CURVES_PREFIX, *EXAMPLE_PREFIXES):
        for stale in out_dir.glob(f"{prefix}*.png"):
            if stale.name not in current:
                stale.unlink()

    write("benchmark.toml", spec_toml_text)
    write("leaderboard.md", render_markdown(boards, title=title, description=description,
                                            images=images, references=references))
    write("leaderboard.csv", render_csv(boards))
    write("leaderboard.json", render_json(boards))
    write("provenance.json", json.dumps({
        "benchmark": name,
        "leaderboards": [{"dataset": b.dataset, "task": b.task, "profile": b.profile,
                          "slug": b.slug, "provenance": b.provenance} for b in boards],
    }, indent=2, ensure_ascii=False, default=str) + "\n")
    links = [("leaderboard.md", "Markdown"), ("leaderboard.csv", "CSV"),
             ("leaderboard.json", "JSON"), ("provenance.json", "provenance"),
             ("benchmark.toml", "benchmark spec")]
    write("index.html", render_html(boards, title=title, description=description, images=images,
                                    links=links, references=references))
    return written


def _error_bar(mean: float, low: float, high: float) -> list[list[float]] | None:
    """Asymmetric error bar distances: the interval the board itself uses."""
    if not (is_finite(low) and is_finite(high)):
        return None
    return [[mean - low], [high - mean]]


def plot_tradeoff(board: Leaderboard, path: Path) -> Path | None:
    """The privacy–utility plot of one leaderboard as a PNG; None when there is nothing to plot
    (no utility metric, or no configuration with both figures)."""
    if board.utility_column is None:
        return None
    ranking = board.ranking
    known = ranking["worst_case"].map(is_finite) & ranking["utility"].map(is_finite)
    shown, left_out = ranking[known], ranking[~known]
    if shown.empty:
        return None
    # Object-oriented matplotlib on the Agg canvas: no pyplot, so no global backend is switched
    # under a caller (e.g. a notebook).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(8, 5.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    # Colour says Pareto or dominated, shape says flagged, a hollow marker says incomplete.
    x_extent: list[float] = [0.0]
    for row in shown.itertuples(index=False):
        x, y = float(row.worst_case), float(row.utility)
        colour = {"front": "C0", "possible": "C9"}.get(row.pareto, "0.45")
        xerr = _error_bar(x, row.worst_case_ci_low, row.worst_case_ci_high)
        yerr = _error_bar(y, row.utility_ci_low, row.utility_ci_high)
        x_extent += [x - xerr[0][0], x + xerr[1][0]] if xerr else [x]
        axes.errorbar(x, y, xerr=xerr, yerr=yerr, linestyle="none", capsize=3, elinewidth=1,
                      marker="X" if row.flag else "o", markersize=9 if row.flag else 7,
                      color=colour, markerfacecolor="white" if row.incomplete else colour,
                      zorder=3)
        tier = f"T{int(row.tier)} " if is_finite(row.tier) else ""
        label = f"{tier}{row.sanitizer}" + ("*" if row.incomplete else "")
        if row.flag:
            label += f" ({row.flag})"
        axes.annotate(label, (x, y), xytext=(6, 5), textcoords="offset points", fontsize=8,
                      color="C3" if row.flag else "black", zorder=4)
    axes.axvline(0.0, color="0.6", linewidth=0.8, linestyle=":", zorder=1)

    # Advantage lies in [-1, 1]; a wide interval over few seeds may overshoot, the view need not.
    low, high = max(min(x_extent), -1.0), min(max(max(x_extent), 0.1), 1.0)
    axes.axvline(board.floor.mean if is_finite(board.floor.mean) else 0.0, color="C3", linewidth=0.8,
                 linestyle="--", zorder=1)
    spread = high - low
    axes.set_xlim(low - 0.05 * spread, high + 0.3 * spread)  # room on the right for labels
    bottom, top = axes.get_ylim()
    front = shown[shown["pareto"] == "front"].sort_values("worst_case")
    if len(front):
        # The front as the boundary of the dominated region: up from the bottom at the most
        # private front point, a step at each point that buys utility with privacy, and on to
        # the right edge (so a one-point front is visible too).
        xs = [float(front["worst_case"].iloc[0])] + list(front["worst_case"]) + [axes.get_xlim()[1]]
        ys = [bottom] + list(front["utility"]) + [float(front["utility"].iloc[-1])]
        axes.step(xs, ys, where="post", color="C0", linestyle="--", linewidth=1.2, zorder=2)
        axes.set_ylim(bottom, top)
    utility_better = board.utility_column.better
    axes.set_xlabel("worst-case normalized advantage (0 = chance; lower = more private)")
    axes.set_ylabel(f"{board.utility_column.header} ({utility_better} = better)")
    axes.set_title(board.title, fontsize=11)
    axes.grid(alpha=0.3)

    legend = []
    if is_finite(board.floor.mean):
        legend.append(Line2D([], [], color="C3", linestyle="--", label="leakage floor"))
    if len(front):
        legend.append(Line2D([], [], color="C0", marker="o", linestyle="--", label="Pareto front"))
    if (shown["pareto"] == "possible").any():
        legend.append(Line2D([], [], color="C9", marker="o", linestyle="none",
                             label="possibly on the front (intervals overlap)"))
    if (shown["pareto"] == "").any():
        legend.append(Line2D([], [], color="0.45", marker="o", linestyle="none",
                             label="dominated by another row for sure, or incomplete"))
    if shown["flag"].astype(bool).any():
        legend.append(Line2D([], [], color="0.2", marker="X", linestyle="none",
                             label="flagged (red label): private to the standard check, leaks to "
                                   "another attack"))
    if shown["incomplete"].any():
        legend.append(Line2D([], [], color="0.45", marker="o", markerfacecolor="white",
                             linestyle="none", label="* incomplete: an attack failed"))
    axes.legend(handles=legend, fontsize=8, loc="best")

    captions = []
    captions.append("error bars: the board's 95% intervals (worst case: simultaneous over attacks)")
    if len(left_out):
        captions.append("not plotted (a figure is missing): " + ", ".join(left_out["sanitizer"]))
    if captions:
        figure.text(0.01, 0.005, "; ".join(captions), fontsize=7, color="0.3", ha="left", va="bottom")
        figure.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" metadata: keeps the file independent of the matplotlib version string.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
