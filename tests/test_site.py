"""The leaderboard site in a real browser: headless Chromium on the pages built from the committed
folders under leaderboards/.

A probe script is injected first in a copy of each page's <head>: it records window errors and
console.error calls, and after load measures the page (horizontal scroll at 1280 px, where the
ranking's headers are), sorts a table by clicking a header twice, and writes what it found as
JSON into the DOM, which ``chromium --dump-dom`` prints. A deliberately broken page checks that
the probe does see scrolling, off-screen columns and console errors.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ppbench.site import build_site

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"
KEY_COLUMNS = [f"k{i}" for i in range(8)]  # tier, sanitizer, utility, worst case, worst attack, leaks, pareto, flag


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    for path in ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/snap/bin/chromium"):
        if Path(path).exists():
            return path
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not found: install Debian's `chromium` package "
                             "(.ci/run does) to run the site's browser test")

PROBE = r"""
<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) { errors.push("error: " + (e.message || e.type)); }, true);
  var original = console.error;
  console.error = function () { errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); return original.apply(console, arguments); };
  function values(table, col) {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      var td = r.querySelector('[data-col="' + col + '"]');
      var v = td ? td.getAttribute("data-v") : null;
      return v === null || v === "" ? null : (isNaN(Number(v)) ? v : Number(v));
    });
  }
  window.addEventListener("load", function () {
    var out = {errors: errors, width: window.innerWidth,
               scrollWidth: document.documentElement.scrollWidth,
               clientWidth: document.documentElement.clientWidth, keys: {}, sorted: null};
    var table = document.querySelector("table.board");
    if (table) {
      KEYS.forEach(function (key) {
        var th = table.querySelector('th[data-col="' + key + '"]');
        if (!th) { out.keys[key] = null; return; }
        var r = th.getBoundingClientRect();
        out.keys[key] = {left: r.left, right: r.right, width: r.width, text: th.textContent.trim()};
      });
      var th = table.querySelector('th[data-col="' + SORT + '"]');
      if (th) {
        var before = values(table, SORT);
        th.click();
        var first = values(table, SORT);
        th.click();
        var second = values(table, SORT);
        out.sorted = {before: before, first: first, second: second,
                      finalDir: th.getAttribute("aria-sort")};
      }
      var wraps = document.querySelectorAll(".tablewrap");
      out.boxOverflow = Array.prototype.some.call(wraps, function (w) { return w.scrollWidth > w.clientWidth + 1; });
    }
    var pre = document.createElement("pre");
    pre.id = "ppbench-probe";
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  });
})();
</script>
"""


def probe(page: Path, tmp_path: Path, sort_column: str = "k3") -> dict:
    """Load a copy of ``page`` with the probe in Chromium at 1280×900; the probe's findings."""
    text = page.read_text(encoding="utf-8")
    script = PROBE.replace("KEYS", json.dumps(KEY_COLUMNS)).replace("SORT", json.dumps(sort_column))
    probed = page.with_name(f"probe-{page.name}")
    probed.write_text(text.replace("<head>", "<head>" + script, 1), encoding="utf-8")
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1280,900", "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0",
         "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=60)
    found = re.search(r'<pre id="ppbench-probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the probe did not report on {page.name}: {result.stderr[-2000:]}"
    report = json.loads(html.unescape(found.group(1)))
    # Chromium logs uncaught exceptions of the page on stderr as well.
    report["errors"] += [line for line in result.stderr.splitlines() if "Uncaught" in line]
    return report


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site") / "leaderboards"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns("*.html"))
    build_site(root)
    return root


def _ordered(values: list, descending: bool) -> bool:
    present = [v for v in values if v is not None]
    missing_last = all(v is None for v in values[len(present):])
    return missing_last and present == sorted(present, reverse=descending)


def _check_page(report: dict) -> None:
    assert report["errors"] == [], report["errors"]
    assert report["scrollWidth"] <= report["clientWidth"], (
        f"the page scrolls horizontally: {report['scrollWidth']} px wide in a {report['clientWidth']} px window")
    for key, rect in report["keys"].items():
        assert rect is not None, f"key column {key} is missing"
        assert rect["width"] > 0 and rect["left"] >= 0 and rect["right"] <= report["width"], (key, rect)


def test_the_widest_board_fits_1280_px_and_sorts(site, tmp_path):
    """synthfaces-identity: 36 columns in nine threat-model groups."""
    report = probe(site / "synthfaces-identity" / "synthfaces-identity.html", tmp_path)
    _check_page(report)
    assert not report["boxOverflow"], "the table scrolls in its box although groups can close"
    sort = report["sorted"]
    assert sort["finalDir"] == "descending"  # the second click reversed the first
    assert _ordered(sort["first"], descending=False) and _ordered(sort["second"], descending=True)
    assert sort["first"] != sort["before"] or _ordered(sort["before"], descending=False)


def test_text_columns_sort_and_missing_cells_stay_last(site, tmp_path):
    report = probe(site / "synthfaces-surrogates" / "synthfaces-smiling-n_train=500.html", tmp_path, "k1")
    _check_page(report)
    first = report["sorted"]["first"]
    assert first == sorted(first, key=str.lower)
    # The key holder / membership groups of this board hold n/a cells: sorted on, they go last.
    report = probe(site / "synthfaces-surrogates" / "synthfaces-smiling-n_train=500.html", tmp_path, "k2")
    assert _ordered(report["sorted"]["first"], False) and _ordered(report["sorted"]["second"], True)


def test_the_index_and_a_benchmark_page_fit(site, tmp_path):
    for page in (site / "index.html", site / "synthfaces" / "index.html", site / "gaussians2d" / "index.html"):
        report = probe(page, tmp_path)
        assert report["errors"] == [], (page, report["errors"])
        assert report["scrollWidth"] <= report["clientWidth"], page
    text = (site / "synthfaces" / "index.html").read_text()
    for link in ("benchmark.toml", "leaderboard.csv", "leaderboard.json", "provenance.json", "leaderboard.md"):
        assert f'href="{link}"' in text, link
    assert "ppbench run leaderboards/synthfaces/benchmark.toml" in text
    assert all(f'href="{name}/index.html"' in (site / "index.html").read_text()
               for name in ("synthfaces", "gaussians2d", "synthfaces-identity"))


def test_the_probe_sees_a_broken_page(tmp_path):
    """Without this, a probe that measured nothing would pass every page."""
    page = tmp_path / "broken.html"
    cells = "".join(f'<th data-col="k{i}">column {i}</th>' for i in range(8))
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
        f"<table class='board'><thead><tr>{cells}</tr></thead><tbody><tr><td>x</td></tr></tbody></table>"
        "<div style='width:3000px'>too wide</div>"
        "<script>console.error('deliberate'); undefinedFunction();</script></body></html>")
    report = probe(page, tmp_path)
    assert report["scrollWidth"] > report["clientWidth"]
    assert any("deliberate" in e for e in report["errors"]) and any("undefinedFunction" in e for e in report["errors"])
    with pytest.raises(AssertionError):
        _check_page(report)


def test_messages_wall_times_and_diagnostics_reach_every_output(tmp_path):
    """Error and n/a messages, wall times and diagnostics: in the JSON per cell, in the CSV (a
    message column and rows of kind 'diagnostic'), in Markdown's Diagnostics list and in the
    pages' tooltips. No browser needed."""
    import csv
    from io import StringIO

    from ppbench.api import MetricValue
    from ppbench.boards.build import boards_from_store
    from ppbench.boards.render import render_csv, render_json, render_markdown
    from ppbench.publish import publish
    from ppbench.store import ResultStore
    from test_leaderboard import FAILED, PROVENANCE, STANDARD, _fill, _record

    store = ResultStore(tmp_path / "r.db")
    _fill(store)
    extra = _record("identity", "metric", "fixed-utility", 9)
    store.commit_cell(extra, status="ok", wall_time=1.5, provenance={**PROVENANCE, "run_seed": 9},
                      values=[MetricValue("utility", 0.5, role="utility", primary=True),
                              MetricValue("diag:ceiling", 0.75, role="diagnostic")])
    (board,) = boards_from_store(store, standard_check=STANDARD)
    (sanitizer, attack, _), message = next(iter(FAILED.items()))
    cell = next(r for r in json.loads(render_json([board]))[0]["rows"] if r["sanitizer"] == sanitizer)
    failed = next(v for h, v in cell["values"].items() if h.startswith(attack))
    assert any(message in m["message"] for m in failed["messages"])
    rows = list(csv.DictReader(StringIO(render_csv([board]))))
    assert any(message in r["message"] for r in rows if r["sanitizer"] == sanitizer)
    assert any(r["kind"] == "diagnostic" and r["value"] == "diag:ceiling" for r in rows)
    assert any(r["kind"] == "diagnostic" and r["value"] == "wall_time_s" for r in rows)
    assert "**Diagnostics**" in render_markdown([board]) and "ceiling 0.75" in render_markdown([board])
    spec = '[benchmark]\nname = "probe"\ntasks = ["smiling"]\n'
    publish([board], spec, tmp_path / "leaderboards" / "probe", plots=False)
    page = (tmp_path / "leaderboards" / "probe" / f"{board.slug}.html").read_text()
    assert html.escape(message, quote=True) in page and "wall time: 1.5 s per seed" in page
    assert "diagnostic: ceiling 0.75" in page
