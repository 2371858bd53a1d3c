"""Rendering leaderboards: Markdown pipe tables, the tidy CSV, JSON and a standalone HTML page."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import pandas as pd
from tabulate import tabulate

from ..provenance import provenance_lines, provenance_once
from ..spec import Reference
from .board import FLAG, PARETO, SANITIZER, TIDY_COLUMNS, TIER, WORST_ATTACK, LEAKS, Leaderboard
from .references import REFERENCE_HEADERS, REFERENCE_NOTE, reference_table_rows
from .diagnostics import CSV_COLUMNS, DIAGNOSTICS_INTRO, csv_frame
from .diagnostics import markdown_lines as diagnostic_lines

Format = Literal["text", "md", "csv", "json", "html"]
FORMATS: tuple[str, ...] = ("text", "md", "csv", "json", "html")
# What `ppbench leaderboard --out` writes unless told: the text table is for reading in a terminal.
FILE_FORMATS: tuple[str, ...] = ("md", "csv", "json", "html")
EXTENSIONS = {"text": "txt", "md": "md", "csv": "csv", "json": "json", "html": "html"}


LEVELS_TITLE = "Worst case by attacker knowledge"
LEVELS_NOTE = ("Each level's worst case is over the keyless attacks of that attacker-knowledge level "
               "(their threat model's: ignorant = trained on raw data only, semi-informed = retrained "
               "on sanitized data, informed = holds the sanitizer's modules or an oracle), with its "
               "interval simultaneous over those attacks: a row that is private to one level and "
               "leaks to another passes that level's checks only.")


def _alignment(headers: Sequence[str]) -> list[str]:
    left = {SANITIZER, WORST_ATTACK, FLAG}
    return ["left" if h in left else "center" if h in (PARETO, LEAKS, TIER) else "right" for h in headers]


def render_markdown(boards: Sequence[Leaderboard], *, title: str | None = None,
                    description: str = "", images: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                    references: Sequence[Reference] = ()) -> str:
    """Pipe tables under a heading per board, with footnotes, notes and provenance. ``images``
    maps a board's slug to its plots: (path relative to the document, caption) pairs;
    ``references``: published figures shown beside the board's (:mod:`.references`)."""
    parts = [f"# {title}\n"] if title else []
    if description:
        parts.append(description.strip() + "\n")
    if not boards:
        parts.append("No results.\n")
    # Said once for a multi-board document: what every board shares, then each board's own.
    shared_provenance, own_provenance = provenance_once({b.slug: b.provenance for b in boards})
    for board in boards:
        shown = board.display()
        body = [[str(v).replace("|", "\\|") for v in row] for row in shown.itertuples(index=False)]
        table = tabulate(body, headers=list(shown.columns), tablefmt="pipe",
                         colalign=_alignment(list(shown.columns)), disable_numparse=True)
        section = [f"## {board.title}", "", table, ""]
        levels = board.level_table()
        if not levels.empty:
            section += [f"**{LEVELS_TITLE}**", "",
                        tabulate([[str(v).replace("|", "\\|") for v in r] for r in levels.itertuples(index=False)],
                                 headers=list(levels.columns), tablefmt="pipe", disable_numparse=True),
                        "", LEVELS_NOTE, ""]
        section += [f"- {line}" for line in board.footnotes] + [""]
        compared = reference_table_rows(board, references)
        if compared:
            body = [[cell.replace("|", "\\|") for cell in row] for row in compared]
            section += ["**Compared with the papers**", "",
                        tabulate(body, headers=list(REFERENCE_HEADERS), tablefmt="pipe", disable_numparse=True),
                        "", REFERENCE_NOTE, ""]
        for path, caption in (images or {}).get(board.slug, ()):
            section += [f"![{caption}]({path})", ""]
        if board.notes:
            section += ["**Notes**", ""] + [f"- {line}" for line in board.notes] + [""]
        diagnostics = diagnostic_lines(board)
        if diagnostics:
            section += ["**Diagnostics**", "", DIAGNOSTICS_INTRO, ""] + diagnostics + [""]
        if len(boards) == 1:
            section += ["**Provenance**", ""] + [f"- {line}" for line in provenance_lines(board.provenance)]
        elif own_provenance.get(board.slug):
            section += ["**Provenance of this board** (beside the shared one at the end)", ""] + [
                f"- {line}" for line in own_provenance[board.slug]]
        parts.append("\n".join(section) + "\n")
    if len(boards) > 1 and shared_provenance:
        parts.append("\n".join(["## Provenance", "", "Shared by every board above:", ""]
                               + [f"- {line}" for line in shared_provenance]) + "\n")
    return "\n".join(parts)


def tidy_frame(boards: Sequence[Leaderboard]) -> pd.DataFrame:
    """Every board's tidy table in one frame (the CSV)."""
    if not boards:
        return pd.DataFrame(columns=list(TIDY_COLUMNS))
    return pd.concat([b.table for b in boards], ignore_index=True)


def _exact(value: Any) -> Any:
    """A float as the shortest text that reads back as the very same float (its ``repr``), whatever
    the pandas or numpy version and whatever the float's width; '' for a missing value."""
    import numpy as np

    if isinstance(value, (float, np.floating)):
        value = float(value)
        return "" if math.isnan(value) else repr(value)
    return value


def render_csv(boards: Sequence[Leaderboard]) -> str:
    """The tidy CSV. Floats are written by this function, not by pandas' formatter (which depends
    on the pandas and numpy versions and on the column's dtype), so the CSV's numbers are the
    table's numbers exactly: parsed back, they compare equal."""
    # Each board's tidy rows with their cells' messages, then its diagnostic rows (kind
    # "diagnostic": wall time and the plugins' diagnostics), so the CSV stays one figure a row.
    frame = (pd.concat([csv_frame(b) for b in boards], ignore_index=True) if boards
             else pd.DataFrame(columns=list(CSV_COLUMNS)))
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values) or pd.api.types.is_object_dtype(values):
            frame[column] = [_exact(v) for v in values]
    return frame.to_csv(index=False, lineterminator="\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render_json(boards: Sequence[Leaderboard]) -> str:
    return json.dumps(_jsonable([b.as_dict() for b in boards]), indent=2, ensure_ascii=False,
                      allow_nan=False) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; }
td { text-align: left; font-variant-numeric: tabular-nums; }
td[style*="right"] { white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
.footnotes, .notes, .provenance { font-size: 0.85em; color: #444; }
img { max-width: 100%; border: 1px solid #ddd; }
""".strip()


def render_html(boards: Sequence[Leaderboard], *, title: str = "ppbench leaderboard",
                description: str = "", images: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                links: Sequence[tuple[str, str]] = (), references: Sequence[Reference] = ()) -> str:
    """A standalone page. ``images`` maps a board's slug to its plots: (path relative to the
    page, caption) pairs;
    ``links`` are (href, text) pairs listed under the title (e.g. the CSV and JSON files)."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{esc(title)}</title>", f"<style>\n{_CSS}\n</style>", "</head>", "<body>",
             f"<h1>{esc(title)}</h1>"]
    if description:
        parts.append(f"<p>{esc(description.strip())}</p>")
    if links:
        parts.append("<p>" + " · ".join(f'<a href="{esc(href)}">{esc(text)}</a>'
                                        for href, text in links) + "</p>")
    if not boards:
        parts.append("<p>No results.</p>")
    for board in boards:
        shown = board.display()
        # Numbers right-aligned (the tabulate alignment), text columns left and wrapping.
        table = str(tabulate(shown.values.tolist(), headers=list(shown.columns), tablefmt="html",
                             colalign=_alignment(list(shown.columns)), disable_numparse=True))
        parts += [f'<section id="{esc(board.slug)}">', f"<h2>{esc(board.title)}</h2>", table]
        parts.append('<ul class="footnotes">' + "".join(f"<li>{esc(n)}</li>" for n in board.footnotes)
                     + "</ul>")
        compared = reference_table_rows(board, references)
        if compared:
            parts += ["<h3>Compared with the papers</h3>",
                      str(tabulate(compared, headers=list(REFERENCE_HEADERS), tablefmt="html",
                                   disable_numparse=True)),
                      f"<p>{esc(REFERENCE_NOTE)}</p>"]
        for path, caption in (images or {}).get(board.slug, ()):
            parts.append(f'<p><img src="{esc(path)}" alt="{esc(caption)}"></p>')
        if board.notes:
            parts.append('<h3>Notes</h3><ul class="notes">'
                         + "".join(f"<li>{esc(n)}</li>" for n in board.notes) + "</ul>")
        parts.append('<h3>Provenance</h3><ul class="provenance">'
                     + "".join(f"<li>{esc(line)}</li>" for line in provenance_lines(board.provenance))
                     + "</ul>")
        parts.append("</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def render(boards: Sequence[Leaderboard], fmt: Format | str = "md", *, title: str | None = None) -> str:
    """All boards in one document: ``text`` (the compact terminal table, :mod:`.terminal`), ``md`` (pipe tables with footnotes and provenance), ``csv`` (the
    tidy frame, one row per configuration and column), ``json`` (boards with rows and provenance,
    NaN as null) or ``html`` (a standalone page)."""
    if fmt == "text":
        from .terminal import render_terminal

        return render_terminal(boards)
    if fmt == "md":
        return render_markdown(boards, title=title)
    if fmt == "csv":
        return render_csv(boards)
    if fmt == "json":
        return render_json(boards)
    if fmt == "html":
        return render_html(boards, title=title or "ppbench leaderboard")
    raise ValueError(f"unknown leaderboard format {fmt!r}; choose one of {list(FORMATS)}")


def write_leaderboards(boards: Sequence[Leaderboard], out_dir: str | Path,
                       formats: Iterable[str] = FILE_FORMATS) -> list[Path]:
    """Write ``<slug>.<ext>`` per board and a combined ``leaderboard.<ext>`` per format, where the
    slug is ``<dataset>-<task>``; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown leaderboard format {fmt!r}; choose one of {list(FORMATS)}")
        ext = EXTENSIONS[fmt]
        for board in boards:
            path = out_dir / f"{board.slug}.{ext}"
            path.write_text(render([board], fmt, title=f"ppbench leaderboard: {board.title}"),
                            encoding="utf-8")
            written.append(path)
        path = out_dir / f"leaderboard.{ext}"
        path.write_text(render(boards, fmt, title="ppbench leaderboard"), encoding="utf-8")
        written.append(path)
    return written
