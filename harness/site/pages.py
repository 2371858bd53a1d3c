"""The site's pages: the index of every benchmark, a page per benchmark and a page per board.

- ``leaderboards/index.html``: one card per benchmark (description, boards and rows, profile,
  dates, the top tier's sanitizers, flags);
- ``leaderboards/<benchmark>/index.html``: the description, links to the spec and the tables'
  files, the command that reproduces it, each board's ranking (key columns) beside its trade-off
  plot, and the provenance the boards share, once, with what differs per board;
- ``leaderboards/<benchmark>/<slug>.html``: one board in full: the grouped, sortable table,
  its footnotes, the papers' figures beside ours, every plot, the cells' messages, notes and
  provenance.
"""

from __future__ import annotations

from typing import Any, Sequence
from urllib.parse import quote

from ..provenance import provenance_lines
from ..tradeoff import json_title
from .assets import CSS, JS
from .folders import Benchmark, board_references
from .table import breakable, esc, messages, render_table

REPRODUCE = "ppbench run {spec} --store results.db\nppbench publish {spec} --store results.db"


def page(title: str, body: Sequence[str], crumbs: Sequence[tuple[str, str]] = ()) -> str:
    """A standalone page: inline style and script, no external resource."""
    nav = ""
    if crumbs:
        nav = '<nav class="crumbs">' + " › ".join(
            f'<a href="{esc(href)}">{esc(text)}</a>' if href else esc(text) for href, text in crumbs) + "</nav>"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>\n{CSS}\n</style>", "</head>", "<body>", nav,
        *body, f"<script>\n{JS}\n</script>", "</body>", "</html>"]) + "\n"


def board_page_name(board: dict[str, Any]) -> str:
    return f"{board['slug']}.html"


def _href(name: str) -> str:
    return quote(name, safe="/=.-_")


def _board_lines(board: dict[str, Any]) -> list[str]:
    try:
        return provenance_lines(board.get("provenance") or {})
    except (KeyError, TypeError, AttributeError):
        return ["provenance: not recorded in this publication"]


def _common_provenance(boards: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The provenance lines every board shares, and each board's own other lines."""
    lines = [_board_lines(b) for b in boards]
    common = [line for line in lines[0] if all(line in other for other in lines[1:])] if lines else []
    return common, [[line for line in own if line not in common] for own in lines]


def _ul(items: Sequence[str], cls: str) -> str:
    return f'<ul class="{cls}">' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def _top_tier(board: dict[str, Any]) -> list[str]:
    tiers = [r.get("tier") for r in board.get("rows", []) if r.get("tier") is not None]
    if not tiers:
        return []
    return [r["sanitizer"] for r in board["rows"] if r.get("tier") == min(tiers)]


def _date_range(benchmark: Benchmark) -> str:
    firsts = [b.get("provenance", {}).get("created", {}).get("first") for b in benchmark.boards]
    lasts = [b.get("provenance", {}).get("created", {}).get("last") for b in benchmark.boards]
    firsts, lasts = [f for f in firsts if f], [x for x in lasts if x]
    if not firsts:
        return "not recorded"
    return f"{min(firsts)[:10]} … {max(lasts)[:10]}"


def _profiles(benchmark: Benchmark) -> str:
    return ", ".join(sorted({str(b.get("profile")) for b in benchmark.boards})) or "—"


def _links(benchmark: Benchmark) -> str:
    files = [("benchmark.toml", "benchmark spec"), ("leaderboard.csv", "CSV (tidy)"),
             ("leaderboard.json", "JSON"), ("provenance.json", "provenance"), ("leaderboard.md", "Markdown")]
    present = [(name, text) for name, text in files if (benchmark.folder / name).is_file()]
    return '<p class="links">' + "".join(f'<a href="{_href(n)}">{esc(t)}</a>' for n, t in present) + "</p>"


def _reproduce(benchmark: Benchmark) -> str:
    spec = f"leaderboards/{benchmark.dir_name}/benchmark.toml"
    return ('<div class="box"><h3>Reproduce</h3><pre><code>' + esc(REPRODUCE.format(spec=spec))
            + "</code></pre><p class=\"muted\">The first command runs every cell of the spec (resumable: "
            "finished cells are kept), the second writes this folder and regenerates the site. "
            "<code>ppbench publish --site-only</code> regenerates only the pages.</p></div>")


def _controls() -> str:
    return ('<p class="controls"><span class="state">Column groups can be opened and closed.</span> '
            '<button type="button" data-action="open">open all</button>'
            '<button type="button" data-action="close">close all</button>'
            '<button type="button" data-action="fit">fit the page</button></p>')


def _figures(benchmark: Benchmark, board: dict[str, Any], *, only: tuple[str, ...] = ()) -> list[str]:
    parts = []
    for name, caption in benchmark.figures.get(board["slug"], []):
        if only and not name.startswith(only):
            continue
        parts.append(f'<figure><img src="{_href(name)}" alt="{esc(caption)}" loading="lazy">'
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    return parts


def _references(benchmark: Benchmark, board: dict[str, Any]) -> list[str]:
    from ..boards.references import REFERENCE_HEADERS, REFERENCE_NOTE

    rows = board_references(benchmark, board)
    if not rows:
        return []
    head = "".join(f"<th>{esc(h)}</th>" for h in REFERENCE_HEADERS)
    body = "".join("<tr>" + "".join(f'<td class="text">{esc(r[k])}</td>' for k in
                                    ("source", "sanitizer", "column", "paper", "ours", "agrees")) + "</tr>"
                   for r in rows)
    return ["<h3>Compared with the papers</h3>",
            f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>',
            f'<p class="muted">{esc(REFERENCE_NOTE)}</p>']


def index_page(benchmarks: Sequence[Benchmark]) -> str:
    """The site's front page: one card per benchmark."""
    cards = []
    for benchmark in benchmarks:
        rows = sum(len(b.get("rows", [])) for b in benchmark.boards)
        flags = sum(1 for b in benchmark.boards for r in b.get("rows", []) if r.get("flag"))
        tops = []
        for board in benchmark.boards:
            top = _top_tier(board)
            label = f"{board['task']}" + (f" [{board['data']}]" if board.get("data") else "")
            names = ", ".join(breakable(t) for t in top[:4]) + (f" and {len(top) - 4} more" if len(top) > 4 else "")
            tops.append(f"<b>{esc(label)}</b>: {names if top else 'no tiers'}")
        href = _href(f"{benchmark.dir_name}/index.html")
        cards.append(
            f'<div class="card"><h2><a href="{href}">{esc(benchmark.name)}</a></h2>'
            f"<p>{esc(benchmark.description) or '<span class=muted>no description</span>'}</p><dl>"
            f"<dt>boards</dt><dd>{len(benchmark.boards)} ({rows} rows)</dd>"
            f"<dt>profile</dt><dd>{esc(_profiles(benchmark))}</dd>"
            f"<dt>results</dt><dd>{esc(_date_range(benchmark))}</dd>"
            f"<dt>top tier</dt><dd>{'<br>'.join(tops) if tops else '—'}</dd>"
            f"<dt>flagged</dt><dd class=\"{'flagcount' if flags else ''}\">{flags} row{'s' if flags != 1 else ''}"
            f"</dd></dl></div>")
    body = ["<h1>ppbench leaderboards</h1>",
            '<p class="lead">Image sanitizers against privacy attacks. Each board ranks sanitizer '
            "configurations by their <b>worst case over every attack</b> (normalized advantage: 0 = "
            "chance, lower = more private), in tiers of rows that do not differ significantly, beside "
            "the utility they keep. ⚠ marks a row that passes an audit while another attack leaks.</p>",
            '<div class="cards">', *cards, "</div>"]
    if not benchmarks:
        body.append("<p>No published benchmark yet: run <code>ppbench publish</code>.</p>")
    return page("ppbench leaderboards", body)


def benchmark_page(benchmark: Benchmark) -> str:
    """A benchmark's page: what it is, how to reproduce it, each board's ranking."""
    body = [f"<h1>{esc(benchmark.name)}</h1>"]
    if benchmark.description:
        body.append(f'<p class="lead">{esc(benchmark.description)}</p>')
    body += [_links(benchmark), _reproduce(benchmark)]
    body += [f'<p class="muted">{esc(problem)}</p>' for problem in benchmark.problems]
    common, own = _common_provenance(benchmark.boards)
    for number, board in enumerate(benchmark.boards):
        title = json_title(board)
        flags = sum(1 for r in board.get("rows", []) if r.get("flag"))
        top = _top_tier(board)
        summary = [f'<h2 id="{esc(board["slug"])}"><a href="{_href(board_page_name(board))}">{esc(title)}</a></h2>',
                   f'<p>{len(board.get("rows", []))} rows; top tier: {esc(", ".join(top)) or "—"}; '
                   f'<span class="{"flagcount" if flags else ""}">{flags} flagged</span>. '
                   f'<a href="{_href(board_page_name(board))}">The full board</a>: every attack\'s figures '
                   f"by threat model, the footnotes, plots, messages and provenance.</p>"]
        compared = board_references(benchmark, board)
        if compared:
            agree = sum(1 for r in compared if r["agrees"] == "yes")
            summary.append(f'<p class="muted">Compared with the papers: {agree} of {len(compared)} '
                           f"published figures lie inside our intervals (see the full board).</p>")
        plot = _figures(benchmark, board, only=("tradeoff-",))
        table = render_table(board, groups=False, table_id=f"summary-{number}")
        body += summary + ['<div class="boardsum"><div>', table, "</div><div>", *plot, "</div></div>"]
    body.append("<h2>Provenance</h2>")
    if common:
        body += ["<p class=\"muted\">Shared by every board:</p>", _ul(common, "provenance")]
    for board, lines in zip(benchmark.boards, own):
        if lines and len(benchmark.boards) > 1:
            body += [f'<p class="muted">{esc(json_title(board))} only:</p>', _ul(lines, "provenance")]
    return page(f"{benchmark.name} — ppbench", body, [("../index.html", "all benchmarks"), ("", benchmark.name)])


def _levels(board: dict[str, Any]) -> list[str]:
    """The keyless worst case per attacker-knowledge level, beside the overall one."""
    rows = [r for r in board.get("rows", []) if r.get("worst_by_level")]
    if not rows:
        return []
    levels = list(rows[0]["worst_by_level"])

    def cell(figure: dict[str, Any]) -> str:
        mean, low, high = (figure.get(k) for k in ("mean", "ci_low", "ci_high"))
        if mean is None:
            return "<td>—</td>"
        interval = f"95% interval [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        half = f" ± {max(mean - low, high - mean):.3f}" if interval else ""
        attack = figure.get("attack") or ""
        return (f'<td title="{esc(interval)}; {esc(attack)}">{mean:.3f}<span class="muted">{half} '
                f'{esc(attack)}</span></td>')

    head = "".join(f"<th>{esc(level)}</th>" for level in levels)
    body = []
    for row in rows:
        worst = row["values"].get(next((c["header"] for c in board["columns"] if c["kind"] == "worst case"
                                        and not c.get("threat_model")), ""), {})
        overall = {"mean": worst.get("mean"), "ci_low": worst.get("ci_low"), "ci_high": worst.get("ci_high"),
                   "attack": row.get("worst_attack")}
        body.append(f"<tr><td>{esc(row['sanitizer'])}</td>"
                    + "".join(cell(row["worst_by_level"][level]) for level in levels) + cell(overall) + "</tr>")
    return ["<h2>Worst case by attacker knowledge</h2>",
            '<p class="muted">Each level\'s worst case is over the keyless attacks of that level (their '
            "threat model's), with its interval simultaneous over them (hover a figure): a row private "
            "to one level and leaking to another passes that level's checks only.</p>",
            f'<div class="tablewrap"><table class="levels"><thead><tr><th>sanitizer</th>{head}'
            f"<th>all levels</th></tr></thead><tbody>{''.join(body)}</tbody></table></div>"]


def board_page(benchmark: Benchmark, board: dict[str, Any]) -> str:
    """One board in full."""
    title = json_title(board)
    body = [f"<h1>{breakable(title)}</h1>",
            f'<p class="lead">{esc(benchmark.description)}</p>' if benchmark.description else "",
            f'<p class="links"><a href="index.html">benchmark page</a>'
            f'<a href="{_href("benchmark.toml")}">spec</a><a href="{_href("leaderboard.csv")}">CSV</a>'
            f'<a href="{_href("leaderboard.json")}">JSON</a><a href="{_href("provenance.json")}">provenance</a></p>',
            _controls(), render_table(board, table_id="board"),
            '<p class="muted">Click a header to sort (again to reverse; missing and failed cells stay last). '
            "Hover a cell for its interval, seeds, wall time and diagnostics, or its message. ± is the "
            "95% interval's half-width; * marks an incomplete row.</p>",
            _ul(board.get("footnotes", []), "footnotes")]
    body += _levels(board)
    body += _references(benchmark, board)
    figures = _figures(benchmark, board)
    if figures:
        body += ["<h2>Plots</h2>", *figures]
    found = messages(board)
    if found:
        body.append("<h2>Errors and n/a cells</h2><ul class=\"notes\">" + "".join(
            f"<li>{esc(text)} — <span class=\"muted\">{esc(', '.join(cells[:12]))}"
            f"{esc(f' and {len(cells) - 12} more') if len(cells) > 12 else ''}</span></li>"
            for text, cells in found) + "</ul>")
    if board.get("notes"):
        body += ["<h2>Notes</h2>", _ul(board["notes"], "notes")]
    body += ["<h2>Provenance</h2>", _ul(_board_lines(board), "provenance")]
    return page(f"{title} — {benchmark.name} — ppbench", body,
                [("../index.html", "all benchmarks"), ("index.html", benchmark.name), ("", title)])
