"""A leaderboard's HTML table, from one board of a published ``leaderboard.json``.

The ranking comes first and is always shown: tier, sanitizer, utility, the worst case with its
interval, the worst attack, leaks, Pareto and the flag. Every other column sits in a group: the
other metrics, then each attack's figures under its threat model (standard adversary, naive
audit, query oracle, white-box, key holder, membership...). A group collapses to one summary
column (its attacks' largest mean advantage), and the page's script collapses groups, rightmost
first, until the table fits its box; a click on a group's header opens it again. Every header
sorts the rows (numbers numerically, missing and failed cells last); every cell's tooltip gives
its interval, seeds, wall time and diagnostics, or the message of a failed or n/a cell.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..boards.board import cell_text, decimals, diagnostic_name, fixed

# Threat-model identifiers (ppbench.kinds.THREAT_MODELS) as the table's group names, in the order
# the groups are shown; an identifier not listed keeps its own name and comes after them.
GROUP_NAMES: dict[str, str] = {
    "sanitized-labelled": "standard adversary",
    "raw-trained": "naive audit",
    "query-access": "query oracle",
    "white-box": "white-box",
    "key-holder": "key holder",
    "membership": "membership",
    "distinguisher": "distinguisher",
    "reference-distinguisher": "reference distinguisher",
}
MEASURES = "other metrics"
NOT_RECORDED = "not recorded in this publication (republish the board to add it)"
STATUS_TEXT = {"error": "error", "n/a": "n/a", "missing": "—"}


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def breakable(text: str) -> str:
    """Escaped text with break opportunities after commas and before '(' (long row labels)."""
    return esc(text).replace(",", ",<wbr>").replace("(", "<wbr>(")


@dataclass
class Group:
    id: str
    name: str
    columns: list[dict[str, Any]] = field(default_factory=list)


def groups_of(board: dict[str, Any]) -> list[Group]:
    """The board's columns other than the ranking's, grouped: the other metrics, then each
    threat model's columns (its own worst case first, for a threat model judged apart)."""
    utility = board.get("utility_column")
    measures = Group("g0", MEASURES)
    by_model: dict[str, Group] = {}
    for column in board.get("columns", []):
        if column["header"] == utility or (column["kind"] == "worst case" and not column.get("plugin")):
            continue
        model = column.get("threat_model")
        if column["kind"] in ("utility", "measure") or not model:
            measures.columns.append(column)
            continue
        by_model.setdefault(model, Group("", GROUP_NAMES.get(model, model))).columns.append(column)
    order = list(GROUP_NAMES)
    models = sorted(by_model, key=lambda m: (order.index(m) if m in order else len(order), m))
    groups = ([measures] if measures.columns else []) + [by_model[m] for m in models]
    for number, group in enumerate(groups):
        group.id = f"g{number}"
        # A separate threat model's worst case leads its group.
        group.columns.sort(key=lambda c: c["kind"] != "worst case")
    return groups


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _short(value: float) -> str:
    return f"{value:.3g}"


def tooltip(cell: dict[str, Any], column: dict[str, Any]) -> str:
    """A cell's tooltip: its figure and interval, seeds, wall time, diagnostics or message."""
    status = cell.get("status", "missing")
    lines = [column["header"]]
    mean, low, high = _num(cell.get("mean")), _num(cell.get("ci_low")), _num(cell.get("ci_high"))
    if status == "ok" and math.isfinite(mean):
        places = decimals(mean, column.get("role", ""))
        text = f"mean {fixed(mean, places)}"
        if math.isfinite(low) and math.isfinite(high):
            text += f", 95% interval [{fixed(low, places)}, {fixed(high, places)}]"
        if cell.get("interval"):
            text += f" ({cell['interval']})"
        lines.append(text)
    elif status == "missing":
        lines.append("no result: the cell is not in the store this board was published from")
    else:
        lines.append(f"status: {status}")
    lines.append(f"seeds: {cell.get('n_seeds', 0)}")
    if column["kind"] == "worst case":
        return "\n".join(lines)
    if "messages" in cell:
        for message in cell["messages"]:
            seeds = ", ".join(str(s) for s in message.get("seeds", []))
            lines.append(f"{message['message']} (seeds {seeds})")
    elif status in ("error", "n/a"):
        lines.append(f"message: {NOT_RECORDED}")
    if "wall_time_s" in cell:
        times = cell["wall_time_s"]
        if times:
            per_seed = ", ".join(f"{seed}: {_short(t)} s" for seed, t in times.items())
            lines.append(f"wall time: {_short(sum(times.values()) / len(times))} s per seed ({per_seed})")
        else:
            lines.append("wall time: not recorded by the store")
    else:
        lines.append(f"wall time: {NOT_RECORDED}")
    if cell.get("cell_keys"):
        first = next(iter(cell["cell_keys"].values()))
        lines.append(f"in full (budget, provenance): ppbench show {first[:12]} --store STORE "
                     f"(seed {next(iter(cell['cell_keys']))}; {len(cell['cell_keys'])} cell(s))")
    if "diagnostics" in cell:
        for name, figure in cell["diagnostics"].items():
            text = f"{diagnostic_name(name)} {_short(_num(figure['mean']))}"
            lo, hi = _num(figure.get("ci_low")), _num(figure.get("ci_high"))
            if math.isfinite(lo) and math.isfinite(hi) and lo != hi:
                text += f" [{_short(lo)}, {_short(hi)}]"
            lines.append(f"diagnostic: {text}")
        if not cell["diagnostics"]:
            lines.append("diagnostics: none recorded")
    else:
        lines.append(f"diagnostics: {NOT_RECORDED}")
    return "\n".join(lines)


def _figure_td(cell: dict[str, Any] | None, column: dict[str, Any], attrs: str, incomplete: bool = False) -> str:
    cell = cell or {"status": "missing", "n_seeds": 0}
    status = cell.get("status", "missing")
    mean, half = _num(cell.get("mean")), _num(cell.get("half_width"))
    sort = repr(mean) if status == "ok" and math.isfinite(mean) else ""
    tip = esc(tooltip(cell, column))
    if status != "ok" or not math.isfinite(mean):
        text = STATUS_TEXT.get(status, status) if status != "ok" else "—"
        return (f'<td class="num st-{esc(status.replace("/", ""))}" data-v="" {attrs} title="{tip}">'
                f'{esc(text)}</td>')
    full = cell_text(mean, half, status, column.get("role", ""))
    value, _, spread = full.partition(" ± ")
    inner = f'<span class="m">{esc(value)}{"*" if incomplete else ""}</span>'
    if spread:
        inner += f'<span class="hw">± {esc(spread)}</span>'
    return f'<td class="num" data-v="{sort}" {attrs} title="{tip}">{inner}</td>'


def summary_value(group: Group) -> str:
    """What a collapsed group shows: its attacks' largest mean advantage, or for a group of
    detectors their largest AUC; '' for the metrics group (nothing to take a maximum of)."""
    values = {c["value"] for c in group.columns}
    return "advantage" if "advantage" in values else ("auc" if "auc" in values else "")


def _summary(row: dict[str, Any], group: Group) -> tuple[str, str, str]:
    """A collapsed group's cell: text, sort value and tooltip."""
    value = summary_value(group)
    best, which = -math.inf, ""
    for column in group.columns:
        if not value or column["value"] != value:
            continue
        cell = row["values"].get(column["header"], {})
        mean = _num(cell.get("mean"))
        if cell.get("status") == "ok" and math.isfinite(mean) and mean > best:
            best, which = mean, column["header"]
    if which:
        return (f"{best:.3f}", repr(best),
                f"largest mean {value} in this group: {which} (a mean, not a worst case with a "
                f"simultaneous interval); open the group for every figure")
    statuses = {row["values"].get(c["header"], {}).get("status", "missing") for c in group.columns}
    text = "n/a" if statuses == {"n/a"} else ("error" if "error" in statuses else "…")
    return text, "", f"{len(group.columns)} figures; open the group to see them"


KEY_HEADERS = ("tier", "sanitizer", "utility", "worst case", "worst attack", "leaks", "pareto", "flag")
PARETO_TEXT = {"front": "✓", "possible": "(✓)"}


def _key_header(key: str, text: str, tip: str, cls: str = "") -> str:
    return (f'<th rowspan="2" class="key sortable {cls}" data-col="{key}" title="{esc(tip)}">'
            f'{text}</th>')


def render_table(board: dict[str, Any], *, groups: bool = True, table_id: str = "") -> str:
    """The board's table; ``groups=False`` gives only the ranking's columns (a summary)."""
    columns = {c["header"]: c for c in board.get("columns", [])}
    utility = columns.get(board.get("utility_column") or "")
    worst = next((c for c in board.get("columns", []) if c["kind"] == "worst case" and not c.get("plugin")), None)
    shown = groups_of(board) if groups else []
    head1 = [
        _key_header("k0", "tier", "rows whose worst cases do not differ significantly share a tier"),
        _key_header("k1", "sanitizer", "the sanitizer configuration", "text"),
        _key_header("k2", esc(utility["header"]) if utility else "utility",
                    f"the ranking utility ({utility['better']} = better)" if utility else "no utility metric"),
        _key_header("k3", "worst case", "worst-case normalized advantage over the attacks, with its 95% "
                    "interval simultaneous over them (lower = more private)"),
        _key_header("k4", "worst attack", "the attack that reached the worst case", "text"),
        _key_header("k5", "leaks", "yes when the worst case's interval lies wholly above the leakage floor", "text"),
        _key_header("k6", "pareto", "✓ on the privacy–utility front for sure; (✓) possibly", "text"),
        _key_header("k7", "flag", "⚠ passes an audit (the standard check or a naive one) while another "
                    "attack leaks", "text flag"),
    ]
    head2 = []
    for group in shown:
        n = len(group.columns)
        head1.append(f'<th class="group" colspan="{n}" data-group="{group.id}" data-n="{n}">'
                     f'<button type="button" class="toggle" aria-expanded="true" data-group="{group.id}" '
                     f'title="show or hide this group\'s {n} columns">▾ {esc(group.name)}</button></th>')
        for number, column in enumerate(group.columns):
            head2.append(f'<th class="sortable" data-col="{group.id}c{number}" data-g="{group.id}" '
                         f'data-part="full" title="{esc(column["header"])} ({column["better"]} = better)">'
                         f'{breakable(column["header"])}</th>')
        value = summary_value(group)
        label = {"advantage": "max adv", "auc": "max auc"}.get(value, f"{n} figures")
        head2.append(f'<th class="sortable" data-col="{group.id}s" data-g="{group.id}" data-part="sum" hidden '
                     f'title="{esc(group.name)}: {esc(label)} (closed group)">{esc(label)}</th>')
    body = []
    for row in board.get("rows", []):
        values = row.get("values", {})
        tier = row.get("tier")
        cells = [f'<td class="num" data-col="k0" data-v="{tier if tier is not None else ""}">'
                 f'{tier if tier is not None else "—"}</td>',
                 f'<td class="text san" data-col="k1" data-v="{esc(row["sanitizer"])}">{breakable(row["sanitizer"])}</td>',
                 _figure_td(values.get(utility["header"]) if utility else None, utility or {"header": "utility", "kind": "utility"},
                            'data-col="k2"'),
                 _figure_td(values.get(worst["header"]) if worst else None, worst or {"header": "worst case", "kind": "worst case"},
                            'data-col="k3"', bool(row.get("incomplete")))]
        attack = row.get("worst_attack") or ""
        leaks = {True: "yes", False: "no"}.get(row.get("leaks"), "")
        flag = row.get("flag") or ""
        source = row.get("worst_attack_source") or ""
        named = (f'{breakable(attack)}<br><span class="muted" title="best known attack, from a package '
                 f'other than ppbench">{esc(source)}</span>' if source else breakable(attack))
        cells += [f'<td class="text wa" data-col="k4" data-v="{esc(attack)}">{named}</td>',
                  f'<td class="text c" data-col="k5" data-v="{leaks}">{leaks}</td>',
                  f'<td class="text c" data-col="k6" data-v="{esc(row.get("pareto") or "")}">'
                  f'{PARETO_TEXT.get(row.get("pareto") or "", "")}</td>',
                  f'<td class="text flag" data-col="k7" data-v="{esc(flag)}">{"⚠ " + esc(flag) if flag else ""}</td>']
        for group in shown:
            for number, column in enumerate(group.columns):
                cells.append(_figure_td(values.get(column["header"]), column,
                                        f'data-col="{group.id}c{number}" data-g="{group.id}" data-part="full"'))
            text, sort, tip = _summary(row, group)
            cells.append(f'<td class="num" data-col="{group.id}s" data-g="{group.id}" data-part="sum" hidden '
                         f'data-v="{sort}" title="{esc(tip)}">{esc(text)}</td>')
        flagged = ' class="flagged"' if flag else ""
        body.append(f"<tr{flagged}>" + "".join(cells) + "</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    if not shown:  # the ranking alone: one header row
        return (f'<div class="tablewrap"><table class="board"{ident}>\n<thead>\n<tr>'
                + "".join(head1).replace(' rowspan="2"', "") + "</tr>\n</thead>\n<tbody>\n"
                + "\n".join(body) + "\n</tbody>\n</table></div>")
    return (f'<div class="tablewrap"><table class="board"{ident}>\n<thead>\n<tr>' + "".join(head1) + "</tr>\n<tr>"
            + "".join(head2) + "</tr>\n</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table></div>")


def messages(board: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The error and n/a messages of the board's cells, each with the cells it came from; a cell
    whose publication predates messages is listed under :data:`NOT_RECORDED`."""
    found: dict[str, list[str]] = {}
    for row in board.get("rows", []):
        for header, cell in row.get("values", {}).items():
            if cell.get("status") not in ("error", "n/a"):
                continue
            texts: Iterable[str] = ([m["message"] for m in cell["messages"]] if "messages" in cell
                                    else [f"{cell['status']}: message {NOT_RECORDED}"])
            for text in texts:
                found.setdefault(text, []).append(f"{row['sanitizer']} / {header}")
    return sorted(found.items())
