"""The runner's promises: fit once, resume after a kill, isolate failures, keep test labels away
from attacks, derive seeds deterministically."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from ppbench.runner import RunOptions, plan, run
from ppbench.spec import SpecError, load_spec
from ppbench.store import ResultStore


def write_spec(path: Path, sanitizers: str, attacks: str, metrics: str = "", seeds: int = 1,
               seed: int = 0, dataset: str = "") -> Path:
    path.write_text(textwrap.dedent(f"""
        [benchmark]
        name = "tiny"
        tasks = ["secret"]
        seeds = {seeds}
        seed = {seed}

        [dataset]
        name = "tiny"
        """) + dataset + "\n" + sanitizers + attacks + metrics)
    return path


def tables(kind: str, *entries: str) -> str:
    return "".join(f"\n[[{kind}]]\n{entry}\n" for entry in entries)


def options(tmp_path: Path, **kw) -> RunOptions:
    return RunOptions(store=str(tmp_path / "results.db"), cache_dir=str(tmp_path / "cache"), **kw)


def statuses(store: Path) -> dict[tuple[str, str], str]:
    frame = ResultStore(store).frame()
    return {(r.sanitizer_label, r.plugin_label): r.status for r in frame.itertuples()}


def test_adding_an_attack_to_a_finished_run_fits_no_sanitizer_again(testkit, tmp_path):
    sanitizers = tables("sanitizers", 'name = "darken"\nstrength = [0.0, 1.0]')
    first = write_spec(tmp_path / "a.toml", sanitizers, tables("attacks", 'name = "threshold"'))
    report = run(load_spec(first), options(tmp_path))
    assert report.fits_computed == 2 and report.count("ok") == 2

    second = write_spec(tmp_path / "b.toml", sanitizers,
                        tables("attacks", 'name = "threshold"', 'name = "seed-echo"'))
    report = run(load_spec(second), options(tmp_path))
    assert report.fits_computed == 0, "a cached sanitizer was fitted again"
    assert report.fits_reused == 2
    assert report.skipped == 2 and len(report.statuses) == 2  # only the new attack's cells ran


def test_faulty_plugins_cost_only_their_own_cells(testkit, tmp_path):
    spec = write_spec(
        tmp_path / "s.toml",
        tables("sanitizers", 'name = "darken"', 'name = "crashing-sanitizer"',
               'name = "shape-changer"', 'name = "nan-sanitizer"'),
        tables("attacks", 'name = "threshold"', 'name = "crashing-attack"', 'name = "nan-attack"',
               'name = "wrong-length-attack"'))
    report = run(load_spec(spec), options(tmp_path))
    assert report.planned == 16 and len(report.statuses) == 16
    got = statuses(tmp_path / "results.db")
    assert got[("darken", "threshold")] == "ok"
    for bad_attack in ("crashing-attack", "nan-attack", "wrong-length-attack"):
        assert got[("darken", bad_attack)] == "error"
    for bad_sanitizer in ("crashing-sanitizer", "shape-changer", "nan-sanitizer"):
        for attack in ("threshold", "crashing-attack", "nan-attack", "wrong-length-attack"):
            assert got[(bad_sanitizer, attack)] == "error"
    frame = ResultStore(tmp_path / "results.db").frame()
    errors = dict(zip(frame.sanitizer_label + "|" + frame.plugin_label, frame.error))
    assert "deliberate failure in fit" in errors["crashing-sanitizer|threshold"]
    assert "changed the shape" in errors["shape-changer|threshold"]
    assert "NaN" in errors["nan-sanitizer|threshold"]
    assert "deliberate failure in run" in errors["darken|crashing-attack"]
    assert "NaN" in errors["darken|nan-attack"]
    assert "expected 120 predicted labels" in errors["darken|wrong-length-attack"]


def test_a_cell_past_its_time_limit_is_an_error_and_the_run_goes_on(testkit, tmp_path):
    spec = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"'),
                      tables("attacks", 'name = "sleepy"\nseconds = 30.0', 'name = "threshold"'))
    started = time.monotonic()
    report = run(load_spec(spec), options(tmp_path, time_limit=1.0))
    assert time.monotonic() - started < 20
    frame = ResultStore(tmp_path / "results.db").frame()
    sleepy = frame[frame.plugin == "sleepy"].iloc[0]
    assert sleepy.status == "error" and "time limit" in sleepy.error
    assert report.count("ok") == 1


def test_missing_capability_is_recorded_as_na(testkit, tmp_path):
    spec = write_spec(tmp_path / "s.toml",
                      tables("sanitizers", 'name = "darken"', 'name = "with-discriminator"'),
                      tables("attacks", 'name = "discriminator-attack"'))
    run(load_spec(spec), options(tmp_path))
    got = statuses(tmp_path / "results.db")
    assert got[("darken", "discriminator-attack")] == "n/a"
    assert got[("with-discriminator", "discriminator-attack")] == "ok"


def test_attacks_see_no_test_labels_and_scores_follow_the_sanitizer(testkit, tmp_path):
    spec = write_spec(tmp_path / "s.toml",
                      tables("sanitizers", 'name = "darken"\nstrength = [0.0, 1.0]'),
                      tables("attacks", 'name = "threshold"'), tables("metrics", 'name = "mean-abs-change"'))
    run(load_spec(spec), options(tmp_path))
    frame = ResultStore(tmp_path / "results.db").frame()
    # An attack's diagnostics are stored under their own prefix: they cannot pose as a harness figure.
    visible = frame[frame.metric == "diag:test_labels_visible"]
    assert len(visible) == 2 and (visible.value == 0).all()
    advantage = frame[frame.metric == "advantage"].set_index("sanitizer_label").value
    assert advantage["darken(strength=0.0)"] > 0.9  # the secret is plain to see
    assert advantage["darken(strength=1.0)"] < 0.4  # channel 0 is gone: near chance
    assert set(frame.loc[frame.metric == "balanced_accuracy", "chance"]) == {0.5}
    # Plain accuracy's chance is the train split's prior, the same for every cell of the run.
    assert frame.loc[frame.metric == "accuracy", "chance"].nunique() == 1
    change = frame[frame.metric == "mean_abs_change"].set_index("sanitizer_label").value
    assert change["darken(strength=0.0)"] == 0.0 and change["darken(strength=1.0)"] > 0.1


def test_the_adversary_trains_on_the_attack_split_never_on_the_fit_split(testkit, tmp_path):
    from ppbench.cache import load_dataset
    from ppbench.registry import get_registry

    spec = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = 0.0'),
                      tables("attacks", 'name = "threshold"'), dataset="n_train = 200\nn_attack = 160")
    run(load_spec(spec), options(tmp_path))
    frame = ResultStore(tmp_path / "results.db").frame().set_index("metric")
    assert frame.loc["diag:attack_items", "value"] == 160
    splits = load_dataset(get_registry(), "tiny", (("n_attack", 160), ("n_train", 200)), "quick", 0)
    # darken(strength=0) keeps channel 1: what the adversary got first is the attack split's first item.
    handed = torch.tensor([frame.loc[f"diag:first_pixel_{i}", "value"] for i in range(4)])
    assert torch.allclose(handed, splits.attack.images[0, 1].flatten()[:4].double(), atol=1e-6)
    assert not torch.allclose(handed, splits.train.images[0, 1].flatten()[:4].double(), atol=1e-3)


def test_attack_view_withholds_everything_not_granted(testkit, tmp_path):
    from ppbench.api import AttackView

    seen: list[AttackView] = []
    from ppbench_testkit import ThresholdAttack

    original = ThresholdAttack.run

    def spy(self, view, task, ctx):
        seen.append(view)
        return original(self, view, task, ctx)

    ThresholdAttack.run = spy
    try:
        spec = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"'),
                          tables("attacks", 'name = "threshold"'))
        run(load_spec(spec), options(tmp_path))
    finally:
        ThresholdAttack.run = original
    assert len(seen) == 1
    view = seen[0]
    assert view.test.labels == {} and view.raw_train is None and view.aux is None
    assert view.oracle is None and view.handles == {}
    assert set(view.attack.labels) == {"secret", "keep"}


def test_same_seed_same_numbers_and_other_seed_other_numbers(testkit, tmp_path):
    def numbers(folder: Path, seed: int) -> list[float]:
        folder.mkdir()
        spec = write_spec(folder / "s.toml", tables("sanitizers", 'name = "darken"'),
                          tables("attacks", 'name = "seed-echo"', 'name = "threshold"'), seed=seed)
        run(load_spec(spec), options(folder))
        frame = ResultStore(folder / "results.db").frame().sort_values(["plugin", "metric"])
        return frame.value.tolist()

    first, again, other = numbers(tmp_path / "a", 0), numbers(tmp_path / "b", 0), numbers(tmp_path / "c", 1)
    assert first == again
    assert first != other


def test_process_executor_gives_the_local_numbers(testkit, tmp_path):
    def numbers(folder: Path, executor: str) -> list[float]:
        folder.mkdir()
        spec = write_spec(folder / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = [0.0, 0.5]'),
                          tables("attacks", 'name = "seed-echo"', 'name = "threshold"'))
        report = run(load_spec(spec), options(folder), executor=executor, workers=2)
        assert report.count("ok") == 4
        frame = ResultStore(folder / "results.db").frame().sort_values(["sanitizer_label", "plugin", "metric"])
        return frame.value.tolist()

    assert numbers(tmp_path / "local", "local") == numbers(tmp_path / "process", "process")


def test_a_run_killed_midway_resumes_without_losing_or_repeating_a_cell(testkit, tmp_path):
    spec = write_spec(tmp_path / "s.toml",
                      tables("sanitizers", 'name = "darken"\nstrength = [0.0, 0.25, 0.5, 0.75, 1.0]'),
                      tables("attacks", 'name = "sleepy"\nseconds = 0.3', 'name = "threshold"'))
    store = tmp_path / "results.db"
    command = [sys.executable, "-m", "ppbench.cli", "run", str(spec), "--store", str(store),
               "--cache", str(tmp_path / "cache"), "--no-progress", "--device", "cpu"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    finished_before: set[str] = set()
    while time.monotonic() < deadline:
        if store.exists():
            try:
                finished_before = ResultStore(store).finished_keys()
            except sqlite3.OperationalError:
                pass
        if len(finished_before) >= 3 or process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 3 <= len(finished_before) < 10, "the run should have been killed part-way"

    before = ResultStore(store).frame()
    kept = before[before.cell_key.isin(finished_before)][["cell_key", "metric", "value", "created_at"]]
    report = run(load_spec(spec), options(tmp_path))
    after = ResultStore(store).frame()
    assert after.cell_key.nunique() == 10 and (after.status == "ok").all()
    # Nothing finished before the kill was lost or computed again.
    merged = kept.merge(after, on=["cell_key", "metric"], suffixes=("_before", "_after"))
    assert len(merged) == len(kept)
    assert (merged.created_at_before == merged.created_at_after).all()
    assert set(report.statuses).isdisjoint(set(kept.cell_key))
    assert len(report.statuses) == 10 - report.skipped


def test_errors_are_retried_only_on_request(testkit, tmp_path):
    spec = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"'),
                      tables("attacks", 'name = "crashing-attack"'))
    run(load_spec(spec), options(tmp_path))
    assert len(run(load_spec(spec), options(tmp_path)).statuses) == 0
    assert len(run(load_spec(spec), options(tmp_path), retry_errors=True).statuses) == 1


def test_spec_errors_name_the_file_and_the_plugin(testkit, tmp_path):
    unknown = write_spec(tmp_path / "u.toml", tables("sanitizers", 'name = "no-such-sanitizer"'),
                         tables("attacks", 'name = "threshold"'))
    with pytest.raises(SpecError, match=r"u\.toml.*no-such-sanitizer"):
        plan(load_spec(unknown))
    bad_param = write_spec(tmp_path / "p.toml", tables("sanitizers", 'name = "darken"\nstrenght = 1.0'),
                           tables("attacks", 'name = "threshold"'))
    with pytest.raises(SpecError, match=r"p\.toml.*darken.*strenght"):
        plan(load_spec(bad_param))
    (tmp_path / "broken.toml").write_text("[benchmark\nname=")
    with pytest.raises(SpecError, match=r"broken\.toml.*invalid TOML"):
        load_spec(tmp_path / "broken.toml")


def test_sweeps_expand_to_one_configuration_per_point(testkit, tmp_path):
    spec = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = [0.0, 0.5, 1.0]'),
                      tables("attacks", 'name = "threshold"', 'name = "seed-echo"'), seeds=2)
    cells = plan(load_spec(spec))
    assert len(cells) == 3 * 2 * 2
    assert len({c.key for c in cells}) == len(cells)
    assert {c.sanitizer.label for c in cells} == {"darken(strength=0.0)", "darken(strength=0.5)",
                                                  "darken(strength=1.0)"}
    # Labels leave out parameters the spec did not set; keys keep every parameter.
    (default,) = plan(load_spec(write_spec(tmp_path / "d.toml", tables("sanitizers", 'name = "darken"'),
                                           tables("attacks", 'name = "threshold"'))))
    assert default.sanitizer_label == "darken" and default.sanitizer.kwargs == {"strength": 0.5}
    assert default.key in {c.key for c in cells}


def test_a_swept_dataset_parameter_runs_each_data_configuration_with_its_own_board(testkit, tmp_path):
    from ppbench.boards.build import boards_from_store

    spec_path = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "identity"', 'name = "blackout"'),
                           tables("attacks", 'name = "threshold"'), seeds=2, dataset="n_train = [120, 240]")
    spec = load_spec(spec_path)
    assert spec.dataset_configs == [(("n_train", 120),), (("n_train", 240),)]
    cells = plan(spec)
    assert len(cells) == 2 * 2 * 2 and len({c.key for c in cells}) == len(cells)
    assert {c.dataset_params for c in cells} == {(("n_train", 120),), (("n_train", 240),)}
    run(spec, options(tmp_path))
    boards = boards_from_store(ResultStore(tmp_path / "results.db"))
    # One board per data configuration, in the sweep's order; no row is shared between them.
    assert [b.data for b in boards] == ["n_train=120", "n_train=240"]
    assert [b.slug for b in boards] == ["tiny-secret-n_train=120", "tiny-secret-n_train=240"]
    for board in boards:
        assert sorted(board.ranking["sanitizer"]) == ["blackout", "identity"]
        assert (board.ranking["worst_case_n_seeds"] == 2).all()
        assert set(board.table["data"]) == {board.data}
        assert board.data in board.title
    # Published, the boards are read side by side: each attack's figure against n_train.
    from ppbench.data_curves import data_sweeps
    from ppbench.publish import publish

    [(parameter, points)] = data_sweeps(boards)
    assert parameter == "n_train" and [value for value, _ in points] == [120.0, 240.0]
    written = {p.name for p in publish(boards, spec_path.read_text(), tmp_path / "site")}
    assert "data-tiny-secret-n_train=120.png" in written
    assert "n_train=240" in (tmp_path / "site" / "leaderboard.md").read_text()
    # The sweep's values are checked where the file is named.
    bad = write_spec(tmp_path / "bad.toml", tables("sanitizers", 'name = "identity"'),
                     tables("attacks", 'name = "threshold"'), dataset="n_train = []")
    with pytest.raises(SpecError, match=r"bad.toml: \[dataset\].*n_train.*empty"):
        load_spec(bad)
