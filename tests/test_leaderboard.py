"""Leaderboards and publishing, on a synthetic store whose every number is known.

The matrix: 3 sanitizers × (2 attacks + 1 utility metric + 1 distortion metric) × 2 seeds, with
chance 0.5 so that advantage = 2·accuracy − 1. The numbers are chosen so that:

- ``blur(sigma=2.0)`` looks private to the standard check (adversarial-classifier advantage ≈ 0.06)
  but leaks to ``linear-probe`` (≈ 0.5): it must be flagged; it is the only Pareto row;
- ``identity`` leaks most (≈ 0.9), its ``linear-probe`` cells are n/a; it has less utility than
  blur, so blur dominates it;
- ``pixelate(block=4)``'s ``linear-probe`` failed on seed 1 (seed 0 found a large advantage): its
  worst case over the attacks that ran is the smallest of all (≈ 0.2), yet it must rank last, be
  marked incomplete and stay off the Pareto front.
"""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from scipy import stats

from ppbench.api import MetricValue
from ppbench.leaderboard import (LEAKS_MIN_ADVANTAGE, LOOKS_PRIVATE_MAX_ADVANTAGE, WORST_CASE,
                                 build_leaderboards, render, write_leaderboards)
from ppbench.publish import publish
from ppbench.scoring import normalized_advantage, wilson_interval
from ppbench.store import CellRecord, ResultStore

CHANCE = 0.5
N_TEST = 1000
SEEDS = (0, 1)
# Per seed: how each seed deviates from a configuration's base figure.
SEED_OFFSETS = {0: -0.01, 1: 0.02}
SANITIZERS = {  # label -> (name, params JSON)
    "identity": ("identity", "{}"),
    "blur(sigma=2.0)": ("blur", '{"sigma":2.0}'),
    "pixelate(block=4)": ("pixelate", '{"block":4}'),
}
ATTACK_ACCURACY = {  # (sanitizer, attack) -> base accuracy
    ("identity", "adversarial-classifier"): 0.95,
    ("blur(sigma=2.0)", "adversarial-classifier"): 0.53,
    ("blur(sigma=2.0)", "linear-probe"): 0.75,
    ("pixelate(block=4)", "adversarial-classifier"): 0.60,
    ("pixelate(block=4)", "linear-probe"): 0.85,
}
UTILITY = {"identity": 0.75, "blur(sigma=2.0)": 0.80, "pixelate(block=4)": 0.60}
MSE = {"identity": 0.0, "blur(sigma=2.0)": 0.0123, "pixelate(block=4)": 0.0231}
NOT_APPLICABLE = {("identity", "linear-probe")}
FAILED = {("pixelate(block=4)", "linear-probe", 1): "RuntimeError: probe diverged\nTraceback ..."}
PLUGIN_VERSIONS = {
    "adversarial-classifier": {"distribution": "ppbench", "version": "0.1.0", "plugin_version": "1"},
    "linear-probe": {"distribution": "ppbench-probes", "version": "2.3.0", "plugin_version": "4"},
    "fixed-utility": {"distribution": "ppbench", "version": "0.1.0", "plugin_version": "1"},
    "distortion": {"distribution": "ppbench", "version": "0.1.0", "plugin_version": "1"},
}


def _record(sanitizer: str, kind: str, plugin: str, seed: int, dataset: str = "synthfaces",
            task: str = "smiling") -> CellRecord:
    name, params = SANITIZERS.get(sanitizer, (sanitizer, "{}"))
    return CellRecord(cell_key=f"{dataset}|{task}|{sanitizer}|{plugin}|{seed}", dataset=dataset,
                      task=task, sensitive=task, sanitizer=name, sanitizer_params=params,
                      sanitizer_label=sanitizer, kind=kind, plugin=plugin, plugin_params="{}",
                      plugin_label=plugin, seed=seed, profile="quick")


def _provenance(record: CellRecord) -> dict:
    return {"ppbench": "0.1.0", "git_commit": "abc1234", "torch": "2.13.0", "python": "3.11.9",
            "device": "cpu", "run_seed": record.seed, "profile": record.profile,
            "dataset": {"distribution": "ppbench", "version": "0.1.0"},
            "sanitizer": {"distribution": "ppbench", "version": "0.1.0", "plugin_version": "1"},
            record.kind: PLUGIN_VERSIONS[record.plugin]}


def attack_values(accuracy: float) -> list[MetricValue]:
    correct = round(accuracy * N_TEST)
    low, high = wilson_interval(correct, N_TEST)
    accuracy = correct / N_TEST
    return [
        MetricValue("accuracy", accuracy, better="lower", role="leakage", primary=True,
                    ci_low=low, ci_high=high, chance=CHANCE),
        MetricValue("advantage", normalized_advantage(accuracy, CHANCE), better="lower",
                    role="leakage", ci_low=normalized_advantage(low, CHANCE),
                    ci_high=normalized_advantage(high, CHANCE), chance=0.0),
        MetricValue("train_accuracy", min(1.0, accuracy + 0.05), role="diagnostic"),
    ]


def commit(store: ResultStore, record: CellRecord, **kwargs) -> None:
    store.commit_cell(record, device="cpu", provenance=_provenance(record), **kwargs)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ResultStore:
    # Built once: the tests only read it, and committing cells one transaction at a time is the
    # slow part.
    store = ResultStore(tmp_path_factory.mktemp("store") / "results.db")
    for seed in SEEDS:
        offset = SEED_OFFSETS[seed]
        for sanitizer in SANITIZERS:
            for attack in ("adversarial-classifier", "linear-probe"):
                record = _record(sanitizer, "attack", attack, seed)
                if (sanitizer, attack) in NOT_APPLICABLE:
                    commit(store, record, status="n/a",
                           error=f"attack {attack!r} requires ['aux'], which is not available")
                elif (sanitizer, attack, seed) in FAILED:
                    commit(store, record, status="error", error=FAILED[(sanitizer, attack, seed)])
                else:
                    commit(store, record, status="ok",
                           values=attack_values(ATTACK_ACCURACY[(sanitizer, attack)] + offset))
            commit(store, _record(sanitizer, "metric", "fixed-utility", seed), status="ok", values=[
                MetricValue("utility", UTILITY[sanitizer] + offset, role="utility", primary=True),
                MetricValue("acc:expression", 0.5 + offset, role="utility")])
            mse = MSE[sanitizer] * (1 + offset)
            commit(store, _record(sanitizer, "metric", "distortion", seed), status="ok", values=[
                MetricValue("mse", mse, better="lower", role="distortion", primary=True),
                MetricValue("psnr", -10 * math.log10(mse) if mse else 99.0, role="distortion"),
                MetricValue("ssim", 1.0 - 5 * mse, role="distortion")])
    return store


@pytest.fixture(scope="module")
def board(store: ResultStore):
    boards = build_leaderboards(store.frame())
    assert len(boards) == 1
    return boards[0]


def _column_for(kind: str, plugin: str, metric: str) -> str:
    """The leaderboard's documented column names."""
    if kind == "attack":
        return f"{plugin} {'acc' if metric == 'accuracy' else 'adv'}"
    return plugin if metric == "utility" else f"{plugin} ({metric})"


def _cell(board, sanitizer: str, column: str) -> pd.Series:
    table = board.table
    found = table[(table["sanitizer"] == sanitizer) & (table["column"] == column)]
    assert len(found) == 1, (sanitizer, column)
    return found.iloc[0]


def test_means_equal_the_stores_values_averaged_over_seeds(store, board):
    frame = store.frame()
    ok = frame[(frame["status"] == "ok") & (frame["role"] != "diagnostic")
               & ~((frame["kind"] == "metric") & (frame["metric"] == "acc:expression"))]
    # Cells with an errored seed show "error", so their mean is not compared.
    errored = frame[frame["status"] == "error"][["sanitizer_label", "plugin_label"]]
    errored_pairs = set(map(tuple, errored.values))
    expected = ok.groupby(["sanitizer_label", "kind", "plugin_label", "metric"])["value"].mean()
    compared = 0
    for (sanitizer, kind, plugin, metric), mean in expected.items():
        cell = _cell(board, sanitizer, _column_for(kind, plugin, metric))
        if (sanitizer, plugin) in errored_pairs:
            assert cell["status"] == "error" and math.isnan(cell["mean"])
            continue
        assert cell["status"] == "ok"
        assert cell["n_seeds"] == len(SEEDS)
        assert cell["mean"] == pytest.approx(mean, rel=1e-12, abs=1e-15)
        compared += 1
    # utility and mse/psnr/ssim of 3 sanitizers + acc/adv of the 4 attack cells that ran on both seeds
    assert compared == 3 * 1 + 3 * 3 + 4 * 2


def test_interval_over_two_seeds_is_student_t(store, board):
    frame = store.frame()
    values = frame[(frame["sanitizer_label"] == "blur(sigma=2.0)")
                   & (frame["plugin_label"] == "linear-probe") & (frame["metric"] == "advantage")]
    values = values.sort_values("seed")["value"].to_numpy()
    assert len(values) == 2
    mean = values.mean()
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    cell = _cell(board, "blur(sigma=2.0)", "linear-probe adv")
    assert cell["ci_low"] == pytest.approx(mean - half, rel=1e-9)
    assert cell["ci_high"] == pytest.approx(mean + half, rel=1e-9)
    assert cell["half_width"] == pytest.approx(half, rel=1e-9)
    assert cell["interval"] == "student-t over seeds"
    assert any("Student-t" in note for note in board.footnotes)


def test_single_seed_uses_the_cells_own_interval(store):
    frame = store.frame()
    board = build_leaderboards(frame[frame["seed"] == 0])[0]
    stored = frame[(frame["seed"] == 0) & (frame["sanitizer_label"] == "identity")
                   & (frame["plugin_label"] == "adversarial-classifier")
                   & (frame["metric"] == "accuracy")].iloc[0]
    cell = _cell(board, "identity", "adversarial-classifier acc")
    assert (cell["mean"], cell["ci_low"], cell["ci_high"], cell["n_seeds"]) == (
        stored["value"], stored["ci_low"], stored["ci_high"], 1)
    assert cell["half_width"] == max(stored["value"] - stored["ci_low"],
                                     stored["ci_high"] - stored["value"])
    assert any("cell's own 95% interval" in note for note in board.footnotes)


def test_ranking_puts_complete_rows_first_by_worst_case(board):
    assert list(board.ranking["sanitizer"]) == ["blur(sigma=2.0)", "identity", "pixelate(block=4)"]
    assert list(board.ranking["rank"]) == [1, 2, 3]
    assert list(board.display()["#"]) == ["1", "2", "3"]


def test_equal_worst_case_is_broken_by_utility(tmp_path):
    store = ResultStore(tmp_path / "tie.db")
    for sanitizer, utility in (("a", 0.6), ("b", 0.9), ("c", 0.7)):
        commit(store, _record(sanitizer, "attack", "adversarial-classifier", 0), status="ok",
               values=attack_values(0.7))
        commit(store, _record(sanitizer, "metric", "fixed-utility", 0), status="ok",
               values=[MetricValue("utility", utility, role="utility", primary=True)])
    board = build_leaderboards(store.frame())[0]
    assert list(board.ranking["sanitizer"]) == ["b", "c", "a"]
    # Same privacy, best utility: only b is on the front.
    assert list(board.ranking["pareto"]) == [True, False, False]


def test_pareto_front_skips_dominated_and_incomplete_rows(board):
    pareto = dict(zip(board.ranking["sanitizer"], board.ranking["pareto"]))
    # identity has more leakage and less utility than blur; pixelate is incomplete.
    assert pareto == {"blur(sigma=2.0)": True, "identity": False, "pixelate(block=4)": False}
    shown = board.display().set_index("sanitizer")["pareto"]
    assert shown["blur(sigma=2.0)"] == "✓" and shown["identity"] == ""


def test_worst_case_ignores_the_errored_attack_and_is_marked_incomplete(board):
    worst = _cell(board, "pixelate(block=4)", WORST_CASE)
    standard = _cell(board, "pixelate(block=4)", "adversarial-classifier adv")
    assert worst["status"] == "ok" and worst["plugin"] == "adversarial-classifier"
    assert worst["mean"] == standard["mean"]
    row = board.ranking.set_index("sanitizer").loc["pixelate(block=4)"]
    assert bool(row["incomplete"]) and row["worst_attack"] == "adversarial-classifier"
    shown = board.display().set_index("sanitizer")
    assert shown.loc["pixelate(block=4)", WORST_CASE].endswith("*")
    assert not shown.loc["blur(sigma=2.0)", WORST_CASE].endswith("*")
    assert any("never looks more private because an attack crashed" in n for n in board.footnotes)
    # n/a is not a failure: identity's worst case is complete.
    assert not board.ranking.set_index("sanitizer").loc["identity", "incomplete"]


def test_worst_case_is_the_largest_advantage(board):
    for sanitizer in ("identity", "blur(sigma=2.0)"):
        advantages = board.table[(board.table["sanitizer"] == sanitizer)
                                 & (board.table["column"].str.endswith(" adv"))
                                 & (board.table["status"] == "ok")]
        worst = _cell(board, sanitizer, WORST_CASE)
        assert worst["mean"] == advantages["mean"].max()
        assert worst["plugin"] == advantages.loc[advantages["mean"].idxmax(), "plugin"]


def test_flag_fires_when_the_standard_check_misses_a_leak(board):
    flags = dict(zip(board.ranking["sanitizer"], board.ranking["flag"]))
    standard = _cell(board, "blur(sigma=2.0)", "adversarial-classifier adv")["mean"]
    worst = _cell(board, "blur(sigma=2.0)", WORST_CASE)["mean"]
    assert standard <= LOOKS_PRIVATE_MAX_ADVANTAGE and worst >= LEAKS_MIN_ADVANTAGE
    assert flags == {"blur(sigma=2.0)": "leaks to linear-probe", "identity": "",
                     "pixelate(block=4)": ""}
    assert "⚠ leaks to linear-probe" in render([board], "md")


def test_error_and_na_render_as_such(board):
    shown = board.display().set_index("sanitizer")
    assert shown.loc["pixelate(block=4)", "linear-probe acc"] == "error"
    assert shown.loc["pixelate(block=4)", "linear-probe adv"] == "error"
    assert shown.loc["identity", "linear-probe adv"] == "n/a"
    errors = [n for n in board.notes if n.startswith("error:")]
    assert errors == ["error: pixelate(block=4) × linear-probe (seed 1): RuntimeError: probe diverged"]
    markdown = render([board], "md")
    assert re.search(r"\|\s+error\s+\|", markdown) and re.search(r"\|\s+n/a\s+\|", markdown)
    assert "probe diverged" in markdown and "Traceback" not in markdown


def test_cells_read_mean_plus_minus_half_width(board):
    shown = board.display().set_index("sanitizer")
    cell = _cell(board, "blur(sigma=2.0)", "adversarial-classifier acc")
    assert shown.loc["blur(sigma=2.0)", "adversarial-classifier acc"] == (
        f"{cell['mean']:.3f} ± {cell['half_width']:.3f}")
    assert list(shown.columns[:4]) == ["#", "fixed-utility", "distortion (mse)", "distortion (psnr)"]


def test_provenance_is_collected_from_the_rows(store, board):
    provenance = board.provenance
    frame = store.frame()
    assert provenance["ppbench"] == ["0.1.0"] and provenance["git_commit"] == ["abc1234"]
    assert provenance["device"] == ["cpu"] and provenance["profile"] == ["quick"]
    assert provenance["seeds"] == list(SEEDS)
    assert provenance["created"] == {"first": frame["created_at"].min(),
                                     "last": frame["created_at"].max()}
    assert provenance["plugins"]["attack"]["linear-probe"] == [PLUGIN_VERSIONS["linear-probe"]]
    assert provenance["cells"] == {"total": frame["cell_key"].nunique(), "ok": 21, "error": 1,
                                   "n/a": 2}
    assert "ppbench-probes 2.3.0 (plugin v4)" in render([board], "md")


@pytest.mark.parametrize("fmt", ["md", "csv", "json", "html"])
def test_every_format_renders(board, fmt):
    text = render([board], fmt)
    assert "blur(sigma=2.0)" in text
    if fmt == "json":
        parsed = json.loads(text)
        assert "NaN" not in text
        row = next(r for r in parsed[0]["rows"] if r["sanitizer"] == "identity")
        assert row["values"]["linear-probe adv"]["mean"] is None
        assert row["values"]["adversarial-classifier acc"]["mean"] == pytest.approx(
            _cell(board, "identity", "adversarial-classifier acc")["mean"], rel=1e-12)
        assert parsed[0]["provenance"]["seeds"] == list(SEEDS)
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "<table>" in text
    if fmt == "md":
        assert text.count("\n| ") >= 3 and "**Provenance**" in text


def test_csv_round_trips_the_numbers(board):
    from io import StringIO

    parsed = pd.read_csv(StringIO(render([board], "csv")))
    assert len(parsed) == len(board.table)
    merged = parsed.merge(board.table, on=["sanitizer", "column"], suffixes=("_csv", ""))
    both = merged["mean"].notna()
    assert (merged.loc[both, "mean_csv"] == merged.loc[both, "mean"]).all()


def test_write_leaderboards_names_files_by_dataset_and_task(board, tmp_path):
    paths = write_leaderboards([board], tmp_path / "out", ["md", "json"])
    assert sorted(p.name for p in paths) == ["leaderboard.json", "leaderboard.md",
                                             "synthfaces-smiling.json", "synthfaces-smiling.md"]


def test_publish_writes_the_folder(store, tmp_path):
    spec = '[benchmark]\nname = "synthfaces-smiling"\ntasks = ["smiling"]\n'
    out = tmp_path / "leaderboards" / "synthfaces-smiling"
    paths = publish(store.frame(), spec, out)
    names = sorted(p.name for p in paths)
    assert names == ["benchmark.toml", "index.html", "leaderboard.csv", "leaderboard.json",
                     "leaderboard.md", "provenance.json", "tradeoff-synthfaces-smiling.png"]
    assert (out / "benchmark.toml").read_text() == spec
    assert (out / "tradeoff-synthfaces-smiling.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert '<img src="tradeoff-synthfaces-smiling.png"' in (out / "index.html").read_text()
    assert json.loads((out / "provenance.json").read_text())["benchmark"] == "synthfaces-smiling"
    first = {p.name: p.read_bytes() for p in paths if p.suffix != ".png"}
    publish(store.frame(), spec, out)
    assert first == {name: (out / name).read_bytes() for name in first}


def test_a_rerun_cell_counts_once_and_a_missing_attack_marks_the_row_incomplete(tmp_path):
    store = ResultStore(tmp_path / "rerun.db")
    for sanitizer in ("a", "b"):
        commit(store, _record(sanitizer, "metric", "fixed-utility", 0), status="ok",
               values=[MetricValue("utility", 0.8, role="utility", primary=True)])
        commit(store, _record(sanitizer, "attack", "adversarial-classifier", 0), status="ok",
               values=attack_values(0.6))
    commit(store, _record("a", "attack", "linear-probe", 0), status="ok", values=attack_values(0.7))
    # The same (configuration, plugin, seed) again under a new cell key, as after a version bump.
    newer = CellRecord(**{**_record("a", "attack", "linear-probe", 0).__dict__,
                          "cell_key": "a|linear-probe|0|v2"})
    store.commit_cell(newer, status="ok", values=attack_values(0.9), provenance=_provenance(newer))
    frame = store.frame()
    frame.loc[frame["cell_key"] == newer.cell_key, "created_at"] = "9999-01-01T00:00:00Z"
    board = build_leaderboards(frame)[0]
    assert _cell(board, "a", "linear-probe acc")["mean"] == 0.9
    assert _cell(board, "a", "linear-probe acc")["n_seeds"] == 1
    assert any("1 older attempt" in note for note in board.notes)
    # b never ran linear-probe: its worst case is a lower bound.
    assert _cell(board, "b", "linear-probe adv")["status"] == "missing"
    assert board.ranking.set_index("sanitizer").loc["b", "incomplete"]
    assert board.display().set_index("sanitizer").loc["b", "linear-probe adv"] == "—"
