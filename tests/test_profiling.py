"""--profile-run: exclusive time per phase, per job and per cell, in process and through the sandbox."""

from __future__ import annotations

import csv

import pytest

from ppbench import profiling
from ppbench.profiling import PHASES, clean_phases, clock, phase
from ppbench.runner import run
from ppbench.spec import load_spec

from test_runner import options, tables, write_spec


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nested_phases_are_charged_their_exclusive_time(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(profiling.time, "perf_counter", fake)
    with clock() as timed:
        fake.now += 1.0  # outside every phase: harness
        with phase("plugin"):
            fake.now += 2.0
            with phase("train"):
                fake.now += 5.0
            fake.now += 1.0
        with phase("plugin"):
            fake.now += 0.5
    assert timed.totals == {"plugin": 3.5, "train": 5.0, "harness": 1.0}
    assert timed.wall == 9.5 and sum(timed.totals.values()) == timed.wall


def test_phases_outside_a_clock_cost_nothing_and_record_nothing():
    with phase("train"):
        pass
    assert profiling.current_clock() is None


def test_phases_reported_by_a_sandbox_child_are_nested_in_the_open_phase(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(profiling.time, "perf_counter", fake)
    with clock() as timed:
        with phase("sandbox"):
            fake.now += 10.0
            timed.merge(clean_phases({"train": 7.0, "plugin": 1.0}))
    assert timed.totals == {"sandbox": 2.0, "train": 7.0, "plugin": 1.0}


@pytest.mark.parametrize("received", [None, [1], {"train": -1.0}, {"train": float("nan")},
                                      {"rm -rf": 1.0}, {"train": True}, {"train": "1"}])
def test_a_childs_report_of_its_phases_is_not_trusted(received):
    assert clean_phases(received) == {}


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_a_run_reports_every_job_and_cell_with_phases_adding_up_to_their_wall_time(
        testkit, tmp_path, isolation):
    spec = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = [0.0, 1.0]'),
                      tables("attacks", 'name = "threshold"', 'name = "sleepy"\nseconds = 0.3'))
    report = run(load_spec(spec), options(tmp_path, isolation=isolation))
    rows = report.profile
    assert [(row.kind, row.cell) for row in rows] == [
        ("job", ""), ("attack", "threshold"), ("attack", "sleepy(seconds=0.3)")] * 2
    for row in rows:
        assert set(row.phases) <= set(PHASES)
        assert sum(row.phases.values()) == pytest.approx(row.wall, abs=1e-6)
    sleepy = [row for row in rows if row.cell.startswith("sleepy")]
    # The sleep is the plugin's own code, measured in the child process when sandboxed.
    assert all(0.3 <= row.phases["plugin"] < 0.3 + 0.5 for row in sleepy)
    assert all(row.phases.get("store", 0) > 0 and row.phases.get("scoring", 0) > 0 for row in sleepy)
    jobs = [row for row in rows if row.kind == "job"]
    assert all(row.phases.get("data", 0) > 0 for row in jobs)
    assert all(row.phases.get("transform", 0) > 0 for row in jobs)
    if isolation == "process":
        assert all(row.phases.get("sandbox", 0) > 0 for row in rows if row.kind != "job")


def test_the_trained_attacks_time_is_split_into_train_and_predict():
    from ppbench.api import Context
    from ppbench.nn import SmallCNN, predict_logits, train_classifier

    import torch

    images = torch.rand(64, 3, 8, 8)
    labels = torch.randint(0, 2, (64,))
    ctx = Context(profile="quick", seed=0)
    with clock() as timed:
        with phase("plugin"):
            model = train_classifier(SmallCNN(3, 2, width=4), images, labels, ctx, max_epochs=1)
            predict_logits(model, images, ctx)
    assert timed.totals["train"] > 0 and timed.totals["predict"] > 0


def test_the_cli_writes_the_breakdown_and_prints_a_summary(testkit, tmp_path, capsys):
    from ppbench.cli import main

    spec = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = [0.5]'),
                      tables("attacks", 'name = "threshold"'))
    out = tmp_path / "profile.csv"
    assert main(["run", str(spec), "--store", str(tmp_path / "r.db"), "--cache", str(tmp_path / "c"),
                 "--no-progress", "--profile-run", str(out)]) == 0
    err = capsys.readouterr().err
    assert "plugin compute" in err and "harness overhead" in err and str(out) in err
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["kind"] for row in rows] == ["job", "attack", "run"]
    assert {f"{name}_s" for name in PHASES} <= set(rows[0])
    run_row = rows[-1]
    assert float(run_row["wall_s"]) >= float(rows[0]["wall_s"]) + float(rows[1]["wall_s"]) - 1e-3
