"""--batch-attacks: a batchable attack runs on several sanitizer configurations in one call, with
each cell's own seed, view, scoring and record; what cannot join a batch runs alone."""

from __future__ import annotations

import json

import pytest

from ppbench.runner import run
from ppbench.spec import load_spec
from ppbench.store import ResultStore

from test_runner import options, tables, write_spec

DARKEN = tables("sanitizers", 'name = "darken"\nstrength = [0.0, 0.5, 1.0]')


def figures(store) -> dict[tuple, tuple]:
    """Every stored figure; a missing interval (NaN) as None, so that figures compare equal."""
    frame = ResultStore(store).frame()
    number = (lambda x: None if x != x else x)  # noqa: E731 - NaN is the only value unequal to itself
    return {(r.sanitizer_label, r.plugin_label, r.seed, r.metric):
            (r.status, number(r.value), number(r.ci_low), number(r.ci_high))
            for r in frame.itertuples()}


def provenance(store) -> dict[str, dict]:
    frame = ResultStore(store).frame().drop_duplicates("cell_key")
    return {r.sanitizer_label: json.loads(r.provenance) for r in frame.itertuples()}


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_a_batchable_attack_gets_one_call_per_task_and_seed_and_the_same_results(
        testkit, tmp_path, isolation):
    log = tmp_path / "calls"
    attack = tables("attacks", f'name = "batch-threshold"\nlog_file = "{log}"')
    spec = load_spec(write_spec(tmp_path / "s.toml", DARKEN, attack, seeds=2))
    batched = run(spec, options(tmp_path / "batched", isolation=isolation, batch_attacks=True))
    calls = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(call[0]) for call in calls) == [3, 3], "one call of three views per seed"
    # Every cell kept its own seed: six distinct contexts.
    assert len({seed for call in calls for seed in call[1:]}) == 6
    log.unlink()
    alone = run(spec, options(tmp_path / "alone", isolation=isolation))
    assert not log.exists(), "without --batch-attacks every cell calls run()"
    assert batched.count("ok") == alone.count("ok") == 6
    assert figures(tmp_path / "batched" / "results.db") == figures(tmp_path / "alone" / "results.db")
    assert all(p["batch"]["cells"] == 3 for p in provenance(tmp_path / "batched" / "results.db").values())
    assert batched.fits_computed == 6
    rows = [row for row in batched.profile if row.kind == "attack"]
    assert len(rows) == 6 and all(sum(row.phases.values()) == pytest.approx(row.wall) for row in rows)


def test_a_failed_batch_runs_its_cells_alone_and_each_keeps_its_own_outcome(testkit, tmp_path):
    attack = tables("attacks", 'name = "batch-threshold"\nfail_batch = true\nfail_dark = true')
    spec = load_spec(write_spec(tmp_path / "s.toml", DARKEN, attack))
    report = run(spec, options(tmp_path, batch_attacks=True))
    statuses = {label: p for label, p in provenance(tmp_path / "results.db").items()}
    frame = ResultStore(tmp_path / "results.db").frame().drop_duplicates("cell_key")
    outcome = {r.sanitizer_label: (r.status, r.error) for r in frame.itertuples()}
    assert outcome["darken(strength=1.0)"][0] == "error"
    assert "nothing to see" in outcome["darken(strength=1.0)"][1]
    assert outcome["darken(strength=0.0)"][0] == outcome["darken(strength=0.5)"][0] == "ok"
    assert report.count("ok") == 2 and report.count("error") == 1
    assert all("batch" not in p for p in statuses.values()), "they ran alone"


def test_a_failed_fit_costs_its_batched_cells_with_the_fits_message(testkit, tmp_path):
    sanitizers = tables("sanitizers", 'name = "darken"\nstrength = [0.5]', 'name = "crashing-sanitizer"')
    spec = load_spec(write_spec(tmp_path / "s.toml", sanitizers, tables("attacks", 'name = "batch-threshold"')))
    report = run(spec, options(tmp_path, batch_attacks=True))
    frame = ResultStore(tmp_path / "results.db").frame().drop_duplicates("cell_key")
    outcome = {r.sanitizer_label: (r.status, r.error or "") for r in frame.itertuples()}
    assert outcome["darken(strength=0.5)"][0] == "ok"
    assert outcome["crashing-sanitizer"][0] == "error" and "fit" in outcome["crashing-sanitizer"][1]
    assert report.count("error") == 1


def test_an_attack_that_is_not_batchable_runs_in_its_sanitizers_job(testkit, tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.toml", DARKEN, tables("attacks", 'name = "threshold"')))
    report = run(spec, options(tmp_path, batch_attacks=True))
    assert report.count("ok") == 3
    assert all("batch" not in p for p in provenance(tmp_path / "results.db").values())


def test_the_adversarial_classifier_batched_gives_the_figures_it_gives_alone(testkit, tmp_path):
    """Its classifiers train as one grouped network: the same figures up to float rounding."""
    attack = tables("attacks", 'name = "adversarial-classifier"\nmax_epochs = 4\nwidth = 4')
    spec = load_spec(write_spec(tmp_path / "s.toml", DARKEN, attack))
    run(spec, options(tmp_path / "batched", isolation="none", batch_attacks=True))
    run(spec, options(tmp_path / "alone", isolation="none"))
    batched = figures(tmp_path / "batched" / "results.db")
    alone = figures(tmp_path / "alone" / "results.db")
    assert batched.keys() == alone.keys() and len(batched) > 3
    for key, (status, value, low, high) in alone.items():
        assert batched[key][0] == status == "ok"
        assert batched[key][1] == pytest.approx(value, abs=0.02), key
    assert all(p["batch"]["cells"] == 3 for p in provenance(tmp_path / "batched" / "results.db").values())


def test_the_cli_batches_on_a_gpu_only_unless_told(testkit, tmp_path, monkeypatch):
    import ppbench.cli
    import ppbench.runner

    seen = []
    real_run = ppbench.runner.run

    def spy(spec, options, **kwargs):
        seen.append(options.batch_attacks)
        return real_run(spec, options, **kwargs)

    monkeypatch.setattr(ppbench.runner, "run", spy)
    spec = write_spec(tmp_path / "s.toml", DARKEN, tables("attacks", 'name = "batch-threshold"'))
    for flag in ([], ["--batch-attacks", "on"], ["--batch-attacks", "off"]):
        assert ppbench.cli.main(["run", str(spec), "--store", str(tmp_path / "r.db"), "--cache",
                                 str(tmp_path / "c"), "--no-progress", "--device", "cpu", *flag]) == 0
    assert seen == [False, True, False]
