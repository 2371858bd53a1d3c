"""Leaderboards and publishing, on a synthetic store whose every per-item result is known.

3 seeds, 1000 balanced binary test items per seed (shared by every row of a seed, as in a real
run). Each attack's predictions are the truth with a known fraction of items flipped, so its
balanced accuracy is known. The rows:

- ``identity``: the standard check reads the secret (accuracy 0.95); ``linear-probe`` is n/a;
- ``blur(sigma=2.0)``: the standard check sits at chance, but ``linear-probe`` reaches 0.75: it
  must be flagged, and it leaks;
- ``blackout`` and ``noise(std=0.2)``: at chance and at 0.51: not significantly different, so one
  tier, ordered by utility (noise keeps more), and neither leaks above the floor;
- ``pixelate(block=4)``: ``linear-probe`` failed on seed 1: incomplete, listed last, never on the
  front, however low its worst case over the attacks that ran.

The leakage floor fact sits at accuracy 0.55 (advantage 0.10).
"""

from __future__ import annotations

import re

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ppbench.api import AttackResult, MetricValue, Task
from ppbench.boards.build import boards_from_store, build_leaderboards
from ppbench.boards.render import render, write_leaderboards
from ppbench.boards.terminal import render_terminal
from ppbench.boards.statistics import SeedItems, attack_interval, worst_case
from ppbench.data import Attribute, ImageSet
from ppbench.publish import publish
from ppbench.scoring import WithheldTruth, score_attribute
from ppbench.store import CellRecord, ResultStore

N_TEST = 1000
SEEDS = (0, 1, 2)
TASK = Task("synthfaces", "smiling", "smiling", ("young",))
SANITIZERS = {  # label -> (name, params JSON)
    "identity": ("identity", "{}"),
    "blur(sigma=2.0)": ("blur", '{"sigma":2.0}'),
    "blackout": ("blackout", "{}"),
    "noise(std=0.2)": ("noise", '{"std":0.2}'),
    "pixelate(block=4)": ("pixelate", '{"block":4}'),
}
ACCURACY = {  # (sanitizer, attack) -> accuracy of the planted predictions
    ("identity", "adversarial-classifier"): 0.95,
    ("blur(sigma=2.0)", "adversarial-classifier"): 0.50,
    ("blur(sigma=2.0)", "linear-probe"): 0.75,
    ("blackout", "adversarial-classifier"): 0.50,
    ("blackout", "linear-probe"): 0.50,
    ("noise(std=0.2)", "adversarial-classifier"): 0.51,
    ("noise(std=0.2)", "linear-probe"): 0.50,
    ("pixelate(block=4)", "adversarial-classifier"): 0.52,
    ("pixelate(block=4)", "linear-probe"): 0.60,
}
UTILITY = {"identity": 0.90, "blur(sigma=2.0)": 0.70, "blackout": 0.0, "noise(std=0.2)": 0.30,
           "pixelate(block=4)": 0.60}
NOT_APPLICABLE = {("identity", "linear-probe")}
FAILED = {("pixelate(block=4)", "linear-probe", 1): "RuntimeError: probe diverged\nTraceback ..."}
FLOOR_ACCURACY = 0.55
STANDARD = "adversarial-classifier"
NAIVE_AUDIT = "fixed-classifier"
THREAT_MODELS = {NAIVE_AUDIT: "raw-trained"}


def truth(seed: int) -> torch.Tensor:
    return torch.arange(N_TEST) % 2 if seed % 2 == 0 else (torch.arange(N_TEST) + 1) % 2


def planted(seed: int, accuracy: float, salt: int) -> torch.Tensor:
    """The truth with each item flipped with probability 1 − accuracy: every seed's outcome is a
    genuine draw around the planted accuracy."""
    rng = np.random.default_rng(1000 * seed + salt)
    labels = truth(seed).clone()
    flip = torch.from_numpy(rng.random(N_TEST) < 1 - accuracy)
    labels[flip] = 1 - labels[flip]
    return labels


def _record(sanitizer: str, kind: str, plugin: str, seed: int) -> CellRecord:
    name, params = SANITIZERS[sanitizer]
    return CellRecord(cell_key=f"{sanitizer}|{plugin}|{seed}", dataset="synthfaces", task="smiling",
                      sensitive="smiling", sanitizer=name, sanitizer_params=params,
                      sanitizer_label=sanitizer, kind=kind, plugin=plugin, plugin_params="{}",
                      plugin_label=plugin, seed=seed, profile="quick",
                      scoring="attribute" if kind == "attack" else "",
                      threat_model=THREAT_MODELS.get(plugin, "sanitized-labelled") if kind == "attack" else "")


PROVENANCE = {"ppbench": "0.1.0", "git_commit": "abc1234", "torch": "2.13.0", "python": "3.11.9",
              "device": "cpu", "profile": "quick", "data_key": "d1",
              "dataset": {"distribution": "ppbench", "version": "0.1.0"}}


def _test_truth(seed: int) -> WithheldTruth:
    attributes = {"smiling": Attribute("smiling", ("no", "yes"))}
    test = ImageSet(torch.zeros(N_TEST, 1), {"smiling": truth(seed)}, attributes)
    return WithheldTruth(TASK, test, {"smiling": torch.tensor([0.6, 0.4], dtype=torch.float64)})


def _fill(store: ResultStore, seeds=SEEDS, floor: bool = True, standard: str = STANDARD) -> None:
    """``standard``: the name the standard check's planted predictions are stored under (the
    naive audit's, to plant a raw-trained audit with the same figures)."""
    for seed in seeds:
        for salt, sanitizer in enumerate(SANITIZERS):
            for attack in (STANDARD, "linear-probe"):
                record = _record(sanitizer, "attack", standard if attack == STANDARD else attack, seed)
                provenance = {**PROVENANCE, "run_seed": seed, "attack": {"distribution": "ppbench"}}
                if (sanitizer, attack) in NOT_APPLICABLE:
                    store.commit_cell(record, status="n/a", error="requires ['aux']",
                                      provenance=provenance)
                elif (sanitizer, attack, seed) in FAILED:
                    store.commit_cell(record, status="error", error=FAILED[(sanitizer, attack, seed)],
                                      provenance=provenance)
                else:
                    result = AttackResult(planted(seed, ACCURACY[(sanitizer, attack)], 10 * salt + len(attack)))
                    scored = score_attribute(result, _test_truth(seed), attack)
                    store.commit_cell(record, status="ok", values=scored.values, items=scored.items,
                                      provenance=provenance)
            store.commit_cell(_record(sanitizer, "metric", "fixed-utility", seed), status="ok",
                              values=[MetricValue("utility", UTILITY[sanitizer] + 0.01 * seed,
                                                  role="utility", primary=True)],
                              provenance={**PROVENANCE, "run_seed": seed})
        if floor:
            store.put_fact("synthfaces", "d1", "smiling", seed, "quick", "leakage_floor", {
                "truth": truth(seed).numpy(), "predicted": planted(seed, FLOOR_ACCURACY, 99).numpy(),
                "num_classes": np.array([2])})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ResultStore:
    store = ResultStore(tmp_path_factory.mktemp("store") / "results.db")
    _fill(store)
    return store


@pytest.fixture(scope="module")
def board(store):
    (board,) = boards_from_store(store, standard_check=STANDARD)
    return board


def _cell(board, sanitizer: str, header: str) -> pd.Series:
    return board.table.set_index(["sanitizer", "column"]).loc[(sanitizer, header)]


def _row(board, sanitizer: str) -> pd.Series:
    return board.ranking.set_index("sanitizer").loc[sanitizer]


def _items(store, sanitizer: str, attack: str) -> list[SeedItems]:
    keys = [f"{sanitizer}|{attack}|{seed}" for seed in SEEDS]
    found = store.items(keys)
    return [SeedItems(found[k]["truth"], found[k]["predicted"], 2) for k in keys]


def test_attack_figures_are_recomputed_from_the_stored_items(store, board):
    cell = _cell(board, "blur(sigma=2.0)", "linear-probe adv")
    expected = attack_interval(_items(store, "blur(sigma=2.0)", "linear-probe"))
    assert cell["mean"] == pytest.approx(expected.mean, abs=1e-12)
    assert (cell["ci_low"], cell["ci_high"]) == pytest.approx((expected.low, expected.high))
    assert cell["mean"] == pytest.approx(0.5, abs=0.05)  # accuracy 0.75 -> advantage 0.5 (±3 SE)
    assert "Student-t" in cell["interval"] and cell["n_seeds"] == 3


def test_worst_case_carries_a_simultaneous_interval(store, board):
    row = _row(board, "blur(sigma=2.0)")
    expected = worst_case({a: _items(store, "blur(sigma=2.0)", a) for a in (STANDARD, "linear-probe")})
    assert row["worst_attack"] == "linear-probe" == expected.attack
    assert (row["worst_case"], row["worst_case_ci_low"], row["worst_case_ci_high"]) == pytest.approx(
        (expected.mean, expected.low, expected.high))
    marginal = _cell(board, "blur(sigma=2.0)", "linear-probe adv")
    # Selecting the worst of two attacks widens the interval beyond that attack's own.
    assert row["worst_case_ci_high"] - row["worst_case_ci_low"] > marginal["ci_high"] - marginal["ci_low"]


def test_tiers_group_rows_that_are_not_significantly_different(board):
    ranking = board.ranking
    tiers = dict(zip(ranking["sanitizer"], ranking["tier"]))
    assert tiers["blackout"] == tiers["noise(std=0.2)"] == 1
    assert tiers["blur(sigma=2.0)"] > 1 and tiers["identity"] > tiers["blur(sigma=2.0)"]
    listed = [t for t in ranking["tier"] if pd.notna(t)]
    assert listed == sorted(listed)
    # Within tier 1 utility decides: noise keeps more than a black image.
    assert list(ranking["sanitizer"][:2]) == ["noise(std=0.2)", "blackout"]


def test_an_incomplete_row_comes_last_without_tier_or_front(board):
    last = board.ranking.iloc[-1]
    assert last["sanitizer"] == "pixelate(block=4)" and last["incomplete"]
    assert pd.isna(last["tier"]) and last["pareto"] == ""
    assert board.display().iloc[-1]["worst-case adv"].endswith("*")


def test_the_flag_fires_when_the_standard_check_sits_at_the_floor_and_another_attack_leaks(store, board):
    row = _row(board, "blur(sigma=2.0)")
    standard, probe = (_cell(board, "blur(sigma=2.0)", f"{a} adv")["mean"] for a in (STANDARD, "linear-probe"))
    assert row["flag"] == (f"passes the standard check (adversarial-classifier, {standard:.2f}); "
                           f"leaks to linear-probe ({probe:.2f})")
    assert not any(_row(board, s)["flag"] for s in ("identity", "blackout", "noise(std=0.2)"))
    (unflagged,) = boards_from_store(store, standard_check=None)
    assert not unflagged.ranking["flag"].astype(bool).any()


def test_the_flag_fires_when_a_naive_audit_passes_and_another_attack_leaks(tmp_path):
    """The README's headline case: a raw-trained audit reads chance, a linear probe reads the
    secret. No standard check is named: the naive audit's threat model makes it an audit."""
    store = ResultStore(tmp_path / "results.db")
    _fill(store, standard=NAIVE_AUDIT)
    (board,) = boards_from_store(store, standard_check=None)
    audit = _cell(board, "blur(sigma=2.0)", f"{NAIVE_AUDIT} adv")["mean"]
    assert _row(board, "blur(sigma=2.0)")["flag"].startswith(
        f"passes the naive audit (fixed-classifier, {audit:.2f}); leaks to linear-probe")
    assert not any(_row(board, s)["flag"] for s in ("identity", "blackout", "noise(std=0.2)"))
    assert any(line.startswith("⚠ flag: an audit, a naive audit (fixed-classifier)") for line in board.footnotes)


def test_each_attacker_knowledge_level_has_its_worst_case_beside_the_overall_one(board, tmp_path):
    """The naive audit (ignorant) and the linear probe (semi-informed): blur passes the first
    level and falls to the second, which the level-by-level view shows."""
    assert board.levels == [] and board.level_table().empty  # one level: the row's own worst case
    store = ResultStore(tmp_path / "results.db")
    _fill(store, standard=NAIVE_AUDIT)
    (levelled,) = boards_from_store(store, standard_check=None)
    assert levelled.levels == ["ignorant", "semi-informed"]
    for sanitizer in ("blur(sigma=2.0)", "blackout"):
        row = _row(levelled, sanitizer)
        ignorant = levelled.level_worst(sanitizer, "ignorant")
        informed = levelled.level_worst(sanitizer, "semi-informed")
        assert ignorant[3] == NAIVE_AUDIT and informed[3] == "linear-probe"
        # One attack per level: its worst case is that attack's own figure.
        assert ignorant[0] == pytest.approx(_cell(levelled, sanitizer, f"{NAIVE_AUDIT} adv")["mean"])
        assert informed[0] == pytest.approx(_cell(levelled, sanitizer, "linear-probe adv")["mean"])
        assert row["worst_case"] == pytest.approx(max(ignorant[0], informed[0]))
    blur_ignorant = levelled.level_worst("blur(sigma=2.0)", "ignorant")
    assert blur_ignorant[1] <= levelled.floor.mean < levelled.level_worst("blur(sigma=2.0)", "semi-informed")[1]
    table = levelled.level_table()
    assert list(table.columns) == ["sanitizer", "ignorant", "semi-informed", "all levels"]
    (parsed,) = json.loads(render([levelled], "json"))
    blur = next(r for r in parsed["rows"] if r["sanitizer"] == "blur(sigma=2.0)")
    assert blur["worst_by_level"]["semi-informed"]["attack"] == "linear-probe"
    assert "**Worst case by attacker knowledge**" in render([levelled], "md")
    assert "worst case by attacker knowledge:" in render_terminal([levelled], wide=True)


def test_the_spec_names_the_utility_a_board_ranks_and_plots(tmp_path):
    store = ResultStore(tmp_path / "results.db")
    _fill(store)
    for seed in SEEDS:  # a second utility metric, alphabetically first, that reverses the order
        for sanitizer in SANITIZERS:
            store.commit_cell(_record(sanitizer, "metric", "downstream-utility", seed), status="ok",
                              values=[MetricValue("utility", 1.0 - UTILITY[sanitizer], role="utility",
                                                  primary=True)],
                              provenance={**PROVENANCE, "run_seed": seed})
    (default,) = boards_from_store(store, standard_check=STANDARD)
    (named,) = boards_from_store(store, standard_check=STANDARD, ranking_utility="fixed-utility")
    assert default.utility_column.plugin_name == "downstream-utility"
    assert named.utility_column.plugin_name == "fixed-utility"
    # Within tier 1 the named utility decides: noise keeps more than a black image by fixed-utility.
    assert list(named.ranking["sanitizer"][:2]) == ["noise(std=0.2)", "blackout"]
    assert list(default.ranking["sanitizer"][:2]) == ["blackout", "noise(std=0.2)"]
    assert any("ordered by fixed-utility" in line for line in named.footnotes)


def test_leaks_is_judged_against_the_floor(board):
    assert board.floor.mean == pytest.approx(0.1, abs=0.05)  # accuracy 0.55 planted (±3 SE)
    assert _row(board, "blur(sigma=2.0)")["leaks"] and _row(board, "identity")["leaks"]
    assert not _row(board, "blackout")["leaks"] and not _row(board, "noise(std=0.2)")["leaks"]
    assert any(f"leakage floor: {board.floor.mean:.3f}" in line for line in board.footnotes)


def test_pareto_marks_use_intervals(board):
    marks = dict(zip(board.ranking["sanitizer"], board.ranking["pareto"]))
    # identity keeps the most, noise is among the most private and keeps more than blackout, blur
    # sits between them: no other row can dominate any of the three.
    assert marks["identity"] == marks["noise(std=0.2)"] == marks["blur(sigma=2.0)"] == "front"
    # noise keeps more for sure, but is not more private for sure: blackout is possibly dominated.
    assert marks["blackout"] == "possible"
    assert marks["pixelate(block=4)"] == ""


def test_accuracy_chance_comes_from_the_train_prior_and_bacc_from_one_over_k(store):
    frame = store.frame()
    values = frame[(frame["metric"] == "accuracy")]
    assert set(values["chance"]) == {0.6}  # the train prior's largest class, not the test's 0.5
    assert set(frame.loc[frame["metric"] == "balanced_accuracy", "chance"]) == {0.5}


def test_a_board_without_per_item_results_falls_back_and_says_so(store):
    frame = store.frame()
    (board,) = build_leaderboards(frame, items={}, facts=[], standard_check=STANDARD)
    # Three seeds: the rows are paired over seeds instead (the worst case Bonferroni Student-t).
    assert board.ranking["tier"].notna().sum() >= 2
    assert _row(board, "blur(sigma=2.0)")["worst_case_interval"].startswith("Bonferroni Student-t")
    assert any("paired over seeds" in line for line in board.footnotes)
    # With fewer seeds than a t-test needs, nothing is tiered and the footnotes say why.
    two = frame[frame["seed"].isin(sorted(frame["seed"].unique())[:2])]
    (board,) = build_leaderboards(two, items={}, facts=[], standard_check=STANDARD)
    assert board.ranking["tier"].isna().all()
    assert "not simultaneous" in _row(board, "blur(sigma=2.0)")["worst_case_interval"]
    assert any("lack per-item results" in line for line in board.footnotes)
    assert any("leakage floor: unknown" in line for line in board.footnotes)


@pytest.mark.parametrize("fmt", ["md", "csv", "json", "html"])
def test_every_format_renders(board, fmt):
    text = render([board], fmt)
    assert "blur(sigma=2.0)" in text
    if fmt == "json":
        parsed = json.loads(text)
        assert "NaN" not in text
        row = next(r for r in parsed[0]["rows"] if r["sanitizer"] == "identity")
        assert row["values"]["linear-probe adv"]["mean"] is None
        assert parsed[0]["leakage_floor"]["mean"] == pytest.approx(board.floor.mean)
        assert parsed[0]["standard_check"] == STANDARD
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "<table>" in text
    if fmt == "md":
        assert "| tier |" in text.replace("  ", " ") or "tier" in text.splitlines()[4]
        assert "⚠ passes the standard check (adversarial-classifier, " in text and "**Provenance**" in text


FLOAT_COLUMNS = ("mean", "ci_low", "ci_high", "half_width", "tier")


def _read_csv_exactly(text: str) -> pd.DataFrame:
    """The CSV with its float columns parsed by Python's float(), which is correctly rounded:
    pandas' own float parser is not exact on every pandas version, so it would test pandas."""
    from io import StringIO

    parsed = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    for column in FLOAT_COLUMNS:
        parsed[column] = [float(v) if v else float("nan") for v in parsed[column]]
    return parsed


def test_csv_round_trips_the_numbers(board):
    parsed = _read_csv_exactly(render([board], "csv"))
    assert len(parsed) == len(board.table)
    merged = parsed.merge(board.table, on=["sanitizer", "column"], suffixes=("_csv", ""))
    assert len(merged) == len(board.table)
    for column in FLOAT_COLUMNS:
        both = merged[column].notna()
        assert (merged[f"{column}_csv"].isna() == ~both).all(), column
        assert (merged.loc[both, f"{column}_csv"] == merged.loc[both, column]).all(), column


def test_csv_writes_every_float_exactly_whatever_its_width(board):
    """Awkward values, and float32 ones (whose shortest float32 text, what pandas writes, reads
    back as a different float64), come back from the CSV as the very same numbers."""
    from dataclasses import replace

    awkward = [0.1 + 0.2, 1 / 3, 2 / 3 * 1e-7, 5e-324, 1.7976931348623157e308, -0.0, 123456789.12345678]
    table = board.table.copy()
    n = len(table)
    table["mean"] = [awkward[i % len(awkward)] for i in range(n)]
    table["ci_low"] = np.linspace(0.0, 1.0, n, dtype=np.float32) / np.float32(3)
    table["ci_high"] = table["ci_high"].astype(object)
    table.loc[0, "ci_high"] = np.float32(0.1)
    parsed = _read_csv_exactly(render([replace(board, table=table)], "csv"))
    assert parsed["mean"].tolist() == table["mean"].tolist()
    assert parsed["ci_low"].tolist() == [float(v) for v in table["ci_low"]]
    assert parsed.loc[0, "ci_high"] == float(np.float32(0.1)) != 0.1


def test_write_leaderboards_names_files_by_dataset_and_task(board, tmp_path):
    paths = write_leaderboards([board], tmp_path / "out", ["md", "json"])
    assert sorted(p.name for p in paths) == ["leaderboard.json", "leaderboard.md",
                                             "synthfaces-smiling.json", "synthfaces-smiling.md"]


def test_publish_writes_the_folder_and_is_stable(store, board, tmp_path):
    spec = '[benchmark]\nname = "synthfaces-smiling"\ntasks = ["smiling"]\n'
    out = tmp_path / "leaderboards" / "synthfaces-smiling"
    paths = publish([board], spec, out)
    names = sorted(p.name for p in paths)
    assert names == ["benchmark.toml", "index.html", "leaderboard.csv", "leaderboard.json",
                     "leaderboard.md", "provenance.json", "synthfaces-smiling.html",
                     "tradeoff-synthfaces-smiling.png"]
    assert (out / "tradeoff-synthfaces-smiling.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert json.loads((out / "provenance.json").read_text())["benchmark"] == "synthfaces-smiling"
    first = {p.name: p.read_bytes() for p in paths if p.suffix != ".png"}
    (again,) = boards_from_store(store, standard_check=STANDARD)
    publish([again], spec, out)
    assert first == {name: (out / name).read_bytes() for name in first}


def test_a_rerun_cell_counts_once(tmp_path):
    store = ResultStore(tmp_path / "rerun.db")
    _fill(store, seeds=(0,), floor=False)
    record = _record("blur(sigma=2.0)", "attack", "linear-probe", 0)
    newer = CellRecord(**{**record.__dict__, "cell_key": record.cell_key + "|v2"})
    scored = score_attribute(AttackResult(truth(0)), _test_truth(0), "linear-probe")
    store.commit_cell(newer, status="ok", values=scored.values, items=scored.items,
                      provenance=PROVENANCE)
    frame = store.frame()
    frame.loc[frame["cell_key"] == newer.cell_key, "created_at"] = "9999-01-01T00:00:00Z"
    keys = frame.loc[frame["kind"] == "attack", "cell_key"].unique().tolist()
    (board,) = build_leaderboards(frame, store.items(keys), store.facts(), STANDARD)
    assert _cell(board, "blur(sigma=2.0)", "linear-probe adv")["mean"] == pytest.approx(1.0)
    assert any("1 older attempt" in note for note in board.notes)
    # One seed: the interval is a bootstrap over the test items.
    assert "bootstrap" in _cell(board, "blackout", "linear-probe adv")["interval"]


# --- a threat model judged apart: the key holder -------------------------------------------------

KEY_ACCURACY = {  # (sanitizer label, attack) -> planted accuracy
    ("ppgan", STANDARD): 0.50, ("ppgan", "linear-probe"): 0.51,
    ("ppgan-subverted", STANDARD): 0.50, ("ppgan-subverted", "linear-probe"): 0.51,
    ("ppgan-subverted", "secret-extraction"): 0.99,
    # The audit reads a small leak (the honest model's), the key holder everything.
    ("leaky-vendor", STANDARD): 0.62, ("leaky-vendor", "linear-probe"): 0.60,
    ("leaky-vendor", "secret-extraction"): 0.99,
    # A naive payload: the keyless attacks read it as well as the key holder does.
    ("naive-vendor", STANDARD): 0.985, ("naive-vendor", "linear-probe"): 0.98,
    ("naive-vendor", "secret-extraction"): 0.99,
}


@pytest.fixture(scope="module")
def key_holder_board(tmp_path_factory):
    store = ResultStore(tmp_path_factory.mktemp("key") / "results.db")
    for seed in SEEDS:
        for salt, ((sanitizer, attack), accuracy) in enumerate(KEY_ACCURACY.items()):
            model = "key-holder" if attack == "secret-extraction" else "sanitized-labelled"
            record = CellRecord(cell_key=f"{sanitizer}|{attack}|{seed}", dataset="synthfaces", task="smiling",
                                sensitive="smiling", sanitizer=sanitizer, sanitizer_params="{}",
                                sanitizer_label=sanitizer, kind="attack", plugin=attack, plugin_params="{}",
                                plugin_label=attack, seed=seed, profile="quick", scoring="attribute",
                                threat_model=model)
            scored = score_attribute(AttackResult(planted(seed, accuracy, 7 * salt)), _test_truth(seed), attack)
            store.commit_cell(record, status="ok", values=scored.values, items=scored.items,
                              provenance={**PROVENANCE, "run_seed": seed})
        store.put_fact("synthfaces", "d1", "smiling", seed, "quick", "leakage_floor", {
            "truth": truth(seed).numpy(), "predicted": planted(seed, 0.5, 99).numpy(),
            "num_classes": np.array([2])})
    (board,) = boards_from_store(store, standard_check=STANDARD)
    return board


def test_the_key_holder_has_its_own_worst_case_and_the_flag_says_what_it_recovers(key_holder_board):
    board = key_holder_board
    headers = [c.header for c in board.columns]
    assert headers[-2:] == ["worst-case adv", "key-holder worst-case adv"]
    subverted = _row(board, "ppgan-subverted")
    # The keyless worst case ignores the key holder: both rows are keyless-private and share a tier.
    assert subverted["worst_attack"] != "secret-extraction" and subverted["worst_case"] < 0.1
    assert subverted["tier"] == _row(board, "ppgan")["tier"] and not subverted["leaks"]
    assert subverted["key-holder_worst_attack"] == "secret-extraction"
    assert subverted["key-holder_worst_case"] == pytest.approx(0.98, abs=0.03)
    assert _cell(board, "ppgan-subverted", "key-holder worst-case adv")["plugin"] == "secret-extraction"
    assert re.match(r"passes the standard check \(adversarial-classifier, 0\.0\d\); the key "
                    r"holder recovers the secret \(secret-extraction, 0\.9", subverted["flag"])
    assert not _row(board, "ppgan")["flag"]
    assert pd.isna(_cell(board, "ppgan", "key-holder worst-case adv")["mean"])
    assert "key holder" in " ".join(board.footnotes)
    assert "key-holder worst-case adv" in render([board], "md")


def test_the_flag_fires_when_the_key_holder_reads_far_more_than_the_keyless_audit(key_holder_board):
    leaky = _row(key_holder_board, "leaky-vendor")
    assert leaky["leaks"]  # the audit does see a leak, just not the size of it
    assert leaky["flag"].startswith("keyless attacks read at most 0.2") and "key holder recovers" in leaky["flag"]
    assert not _row(key_holder_board, "naive-vendor")["flag"]  # caught by the keyless attacks


def test_with_two_seeds_a_secondary_figure_combines_the_cells_intervals(tmp_path):
    """A Student-t interval over two seeds (t = 12.7) spans more than an accuracy's whole range;
    below three seeds every figure is judged on its test items, like the attack's first figure."""
    store = ResultStore(tmp_path / "results.db")
    _fill(store, seeds=(0, 1))
    (board,) = boards_from_store(store, standard_check=STANDARD)
    cell = _cell(board, "blur(sigma=2.0)", "linear-probe acc")
    assert cell["interval"] == "the cells' own, combined over seeds"
    stored = store.frame()
    own = stored[(stored["sanitizer_label"] == "blur(sigma=2.0)") & (stored["plugin"] == "linear-probe")
                 & (stored["metric"] == "accuracy")]
    halves = ((own["ci_high"] - own["ci_low"]) / 2).to_numpy()
    # The mean of two independent estimates: its half-width is sqrt(h0² + h1²) / 2.
    assert (cell["ci_high"] - cell["ci_low"]) / 2 == pytest.approx(np.sqrt((halves ** 2).sum()) / 2, rel=0.05)
    assert cell["ci_low"] < cell["mean"] < cell["ci_high"]
    assert 0.0 < cell["ci_low"] and cell["ci_high"] < 1.0


def test_a_third_party_attack_that_tops_a_row_is_named_with_its_package(tmp_path, monkeypatch):
    """RobustBench names an outside evaluation that lowers a model's robustness; a board names
    the package and version of an attack from outside ppbench that reaches a row's worst case."""
    store = ResultStore(tmp_path / "results.db")
    original = ResultStore.commit_cell

    def from_outside(self, record, **fields):
        if record.plugin == "linear-probe":
            fields["provenance"] = {**fields["provenance"], "attack": {"distribution": "ppbench-probes",
                                                                       "version": "0.3.1"}}
        return original(self, record, **fields)

    monkeypatch.setattr(ResultStore, "commit_cell", from_outside)
    _fill(store)
    monkeypatch.undo()
    (board,) = boards_from_store(store, standard_check=STANDARD)
    assert board.attack_sources == {"linear-probe": "ppbench-probes 0.3.1"}
    shown = board.display().set_index("sanitizer")
    assert shown.loc["blur(sigma=2.0)", "worst attack"] == "linear-probe (ppbench-probes 0.3.1)"
    assert shown.loc["noise(std=0.2)", "worst attack"] in ("adversarial-classifier", "linear-probe (ppbench-probes 0.3.1)")
    (parsed,) = json.loads(render([board], "json"))
    blur = next(r for r in parsed["rows"] if r["sanitizer"] == "blur(sigma=2.0)")
    assert blur["worst_attack_source"] == "ppbench-probes 0.3.1"
    assert "linear-probe (ppbench-probes 0.3.1)" in render_terminal([board])
