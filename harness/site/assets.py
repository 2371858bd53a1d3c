"""The site's stylesheet and script, inlined in every page.

Inline, so that a page works alone from ``file://`` (no server, no CDN, no external font) and
the installed package needs no data files. The script sorts tables on a header click (numbers
numerically, missing and failed cells last in both directions; a second click reverses), opens
and closes column groups, and on load closes groups, rightmost first, until each table fits its
box without horizontal scrolling.
"""

CSS = """
:root { --fg: #1d2330; --muted: #5a6272; --line: #d9dde5; --head: #eef1f6; --accent: #2457a6;
        --warn: #b3261e; --warnbg: #fff4f2; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; padding: 0.8rem 1rem 3rem; max-width: 1240px; font-size: 14px; line-height: 1.4; }
a { color: var(--accent); }
nav.crumbs { font-size: 0.9em; color: var(--muted); margin-bottom: 0.4rem; }
h1 { font-size: 1.55em; margin: 0.2em 0 0.3em; }
h2 { font-size: 1.25em; margin: 1.6em 0 0.4em; border-bottom: 1px solid var(--line); padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.3em; }
p.lead { font-size: 1.05em; margin-top: 0; }
.links a { margin-right: 0.9em; white-space: nowrap; }
.box { border: 1px solid var(--line); border-radius: 6px; padding: 0.6em 0.9em; margin: 0.8em 0; background: #fafbfc; }
.box h3 { margin-top: 0; }
pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
pre { background: #f3f5f8; padding: 0.5em 0.7em; border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.3em 0; }
.muted, .footnotes, .notes, .provenance { color: var(--muted); font-size: 0.9em; }
ul.footnotes li, ul.notes li, ul.provenance li { margin: 0.15em 0; }
.tablewrap { max-width: 100%; overflow-x: auto; margin: 0.6em 0; }
table { border-collapse: collapse; font-size: 0.92em; }
table.board { width: auto; }
th, td { border: 1px solid var(--line); padding: 0.25em 0.45em; vertical-align: top; }
th { background: var(--head); font-weight: 600; text-align: left; font-size: 0.95em; }
thead th { position: relative; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable:hover { background: #e2e7ef; }
th[aria-sort="ascending"]::after { content: " ▲"; font-size: 0.8em; }
th[aria-sort="descending"]::after { content: " ▼"; font-size: 0.8em; }
thead tr:last-child th { max-width: 7.5em; font-weight: 500; }
th.group { text-align: left; background: #e4e9f2; padding: 0.15em 0.3em; }
button.toggle { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer; padding: 0.1em 0.2em; color: var(--fg); text-align: left; }
th.group[colspan="1"] { max-width: 7em; }
th.group[colspan="1"] button.toggle { overflow-wrap: anywhere; }
button.toggle:hover { color: var(--accent); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.num .m { display: block; }
td.num .hw { display: block; font-size: 0.82em; color: var(--muted); }
td.text { text-align: left; }
td.c { text-align: center; }
td.san { min-width: 9em; max-width: 15em; font-weight: 500; }
th.flag, td.flag { min-width: 11em; max-width: 15em; }
td.wa { min-width: 6.5em; max-width: 9em; }
td.flag { color: var(--warn); white-space: normal; overflow-wrap: anywhere; }
tr.flagged td.san { color: var(--warn); }
td.st-error { color: var(--warn); background: var(--warnbg); text-align: center; cursor: help; }
td.st-na { color: var(--muted); font-style: italic; text-align: center; cursor: help; }
td.st-missing { color: var(--muted); text-align: center; }
tbody tr:nth-child(even) td { background-color: #fafbfd; }
tbody tr:nth-child(even) td.st-error { background: var(--warnbg); }
td[title] { cursor: help; }
.controls { font-size: 0.9em; color: var(--muted); margin: 0.4em 0 0; }
.controls button { font: inherit; margin-right: 0.4em; cursor: pointer; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.9em; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1em; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 0.8em 1em; background: #fff; }
.card h2 { margin-top: 0; border: 0; font-size: 1.2em; }
.card dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.15em 0.8em; margin: 0.5em 0; font-size: 0.92em; }
.card dt { color: var(--muted); }
.card dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
.flagcount { color: var(--warn); }
.boardsum { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 440px); gap: 1em; align-items: start; }
.boardsum img { max-width: 100%; border: 1px solid var(--line); }
@media (max-width: 900px) { .boardsum { grid-template-columns: 1fr; } }
""".strip()

JS = r"""
(function () {
  "use strict";
  function cellOf(row, col) { return row.querySelector('[data-col="' + col + '"]'); }
  function keyOf(td) {
    if (!td) return null;
    var v = td.getAttribute("data-v");
    if (v === null || v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortTable(table, th) {
    var col = th.getAttribute("data-col");
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    table.querySelectorAll("th[aria-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var sign = dir === "ascending" ? 1 : -1;
    rows.forEach(function (r, i) { r._order = i; });
    rows.sort(function (a, b) {
      var x = keyOf(cellOf(a, col)), y = keyOf(cellOf(b, col));
      if (x === null || y === null) {  // missing, n/a and error cells last, whatever the direction
        if (x === null && y === null) return a._order - b._order;
        return x === null ? 1 : -1;
      }
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      if (x < y) return -sign;
      if (x > y) return sign;
      return a._order - b._order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function setGroup(table, id, open) {
    table.querySelectorAll('[data-g="' + id + '"]').forEach(function (el) {
      el.hidden = (el.getAttribute("data-part") === "full") !== open;
    });
    var head = table.querySelector('th.group[data-group="' + id + '"]');
    if (!head) return;
    head.colSpan = open ? Number(head.getAttribute("data-n")) : 1;
    var button = head.querySelector("button");
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = (open ? "▾ " : "▸ ") + button.textContent.slice(2);
  }
  function groups(table) { return Array.prototype.slice.call(table.querySelectorAll("th.group")); }
  function overflows(wrap) { return wrap.scrollWidth > wrap.clientWidth + 1; }
  function fit(table) {
    var wrap = table.parentElement;
    var list = groups(table);
    list.forEach(function (g) { setGroup(table, g.getAttribute("data-group"), true); });
    for (var i = list.length - 1; i >= 0 && overflows(wrap); i--) {
      setGroup(table, list[i].getAttribute("data-group"), false);
    }
    var note = wrap.previousElementSibling;
    if (note && note.classList.contains("controls")) {
      var closed = list.filter(function (g) { return g.querySelector("button").getAttribute("aria-expanded") === "false"; }).length;
      var span = note.querySelector(".state");
      if (span) span.textContent = closed ? closed + " of " + list.length +
        " column groups closed to fit the page: click a group's name to open it (the table then scrolls in its box)." :
        "Every column group is open; click a group's name to close it.";
    }
  }
  function init() {
    document.querySelectorAll("table.board").forEach(function (table) {
      table.querySelectorAll("th.sortable").forEach(function (th) {
        th.addEventListener("click", function () { sortTable(table, th); });
      });
      table.querySelectorAll("button.toggle").forEach(function (b) {
        b.addEventListener("click", function (e) {
          e.stopPropagation();
          setGroup(table, b.getAttribute("data-group"), b.getAttribute("aria-expanded") !== "true");
        });
      });
      fit(table);
      var controls = table.parentElement.previousElementSibling;
      if (controls && controls.classList.contains("controls")) {
        controls.querySelectorAll("button[data-action]").forEach(function (b) {
          b.addEventListener("click", function () {
            var action = b.getAttribute("data-action");
            if (action === "fit") { fit(table); return; }
            groups(table).forEach(function (g) { setGroup(table, g.getAttribute("data-group"), action === "open"); });
          });
        });
      }
    });
  }
  window.ppbenchSite = { sortTable: sortTable, setGroup: setGroup, fit: fit };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
""".strip()
