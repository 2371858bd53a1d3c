"""``ppbench publish``: a leaderboard folder that is committed and reviewed like code.

:func:`publish` writes into ``out_dir`` (``leaderboards/<benchmark>/``):

- ``benchmark.toml``: the spec, verbatim, so the folder says how to reproduce itself;
- ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard.json``: the tables (see
  :mod:`ppbench.boards`);
- ``provenance.json``: per leaderboard, the versions, commits, devices, seeds and dates of its rows;
- ``tradeoff-<dataset>-<task>.png``: worst-case normalized advantage against the ranking utility,
  one numbered point per sanitizer configuration with both intervals, the Pareto front as a step
  line (:mod:`ppbench.tradeoff`);
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
- ``index.html`` and ``<slug>.html``: the benchmark's pages of the static site
  (:mod:`ppbench.site`); ``ppbench publish`` then regenerates the site's front page from every
  folder beside this one.

Nothing is stamped with the time of publishing: re-publishing the same rows gives the same text
files (PNG bytes may differ between matplotlib versions). Trade-off plots left over from an earlier
publication whose leaderboard is gone are removed, so the folder never shows a stale figure.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Sequence

from .boards.board import Leaderboard
from .boards.render import render_csv, render_json, render_markdown
from .budget_curves import BUDGET_CAPTION, BUDGET_PREFIX, budget_path_name, plot_budget_curves
from .data_curves import DATA_CAPTION, DATA_CURVES_PREFIX, data_curves_path_name, data_sweeps, plot_data_sweep
from .examples import EXAMPLE_PREFIXES
from .spec import Reference
from .sweep_curves import CURVES_PREFIX, curves_path_name, plot_sweep_curves
from .tradeoff import plot_tradeoff

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
            for plot, file_name, caption in (
                    (plot_tradeoff, plot_path_name(board), "privacy–utility trade-off"),
                    (plot_sweep_curves, curves_path_name(board), "trade-off by swept parameter"),
                    (plot_budget_curves, budget_path_name(board), BUDGET_CAPTION)):
                path = plot(board, out_dir / file_name)
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
        written.extend(out_dir / file_name for file_name, _ in figures)
    current = {file_name for shown in images.values() for file_name, _ in shown}
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
    # The folder's site pages (index.html and a page per board), from the files just written: the
    # same pages `ppbench publish --site-only` regenerates for every folder.
    from .site import load_benchmark, write_benchmark_pages

    benchmark = load_benchmark(out_dir)
    benchmark.references = tuple(references)  # the spec's, as given (the same when read from it)
    written.extend(write_benchmark_pages(out_dir, benchmark))
    return written


def kept_examples(out_dir: str | Path, slugs: Sequence[str],
                  drawn: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
    """The example figures an earlier publication left in ``out_dir`` for boards whose examples
    could not be drawn this time (their fits are not in this machine's cache): kept and shown, not
    deleted, since the spec still asks for them. Returns them per slug, in
    :func:`ppbench.examples.draw_examples`' form."""
    out_dir = Path(out_dir)
    kept: dict[str, list[tuple[str, str]]] = {}
    for slug in slugs:
        if drawn.get(slug):
            continue
        for prefix, caption in (("points-", "sanitized test points"), ("strip-", "example outputs")):
            if (out_dir / f"{prefix}{slug}.png").is_file():
                kept.setdefault(slug, []).append((f"{prefix}{slug}.png", f"{caption}, {slug}"))
    return kept
