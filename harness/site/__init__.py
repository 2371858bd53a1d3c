"""The static leaderboard site, built from the published folders under ``leaderboards/``.

:func:`write_benchmark_pages` writes one benchmark folder's pages (``index.html`` and a page per
board); :func:`build_site` writes every folder's pages and the front page,
``<root>/index.html``. Both read only the committed files (:mod:`.folders`), so the site covers
every published benchmark, including those whose results store is gone, and both are
deterministic: the same folders give the same pages. The pages need no server: they open from
``file://``.
"""

from __future__ import annotations

from pathlib import Path

from .folders import Benchmark, benchmark_folders, load_benchmark
from .pages import benchmark_page, board_page, board_page_name, index_page

__all__ = ["build_site", "write_benchmark_pages", "load_benchmark", "Benchmark"]


def _write(path: Path, text: str, written: list[Path]) -> None:
    # Unchanged pages are left alone, so a regeneration touches only what changed.
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    written.append(path)


def write_benchmark_pages(folder: str | Path, benchmark: Benchmark | None = None) -> list[Path]:
    """Write a published folder's ``index.html`` and its boards' pages; remove pages of boards
    that are gone. Returns the pages written."""
    benchmark = benchmark or load_benchmark(folder)
    written: list[Path] = []
    _write(benchmark.folder / "index.html", benchmark_page(benchmark), written)
    current = {"index.html"}
    for board in benchmark.boards:
        name = board_page_name(board)
        current.add(name)
        _write(benchmark.folder / name, board_page(benchmark, board), written)
    for stale in benchmark.folder.glob("*.html"):
        if stale.name not in current:
            stale.unlink()
    return written


def build_site(root: str | Path = "leaderboards") -> list[Path]:
    """Regenerate the whole site under ``root``: every published folder's pages and the front
    page. Returns the pages written."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: no leaderboards folder here; publish a benchmark first or pass --root")
    benchmarks = [load_benchmark(folder) for folder in benchmark_folders(root)]
    written: list[Path] = []
    for benchmark in benchmarks:
        written += write_benchmark_pages(benchmark.folder, benchmark)
    _write(root / "index.html", index_page(benchmarks), written)
    return written
