"""--executor ray on a local cluster of two worker processes: the same leaderboard as the local
executor, the driver as the only writer of the store, a worker killed mid-job, the cache carried
through the object store, and resources from what plugins declare."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from ppbench.boards.build import boards_from_store
from ppbench.resources import declared_resources, default_resources, job_resources
from ppbench.runner import run
from ppbench.spec import SpecError, load_spec
from ppbench.store import ResultStore

from conftest import PLUGIN_DISTS
from test_runner import options, tables, write_spec

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install 'ppbench[ray]')")


@pytest.fixture(scope="module")
def cluster():
    """One local cluster of 2 CPUs (2 worker processes at a time) for the module; the test
    plugins reach its workers through PYTHONPATH."""
    path = os.pathsep.join([str(PLUGIN_DISTS / "testkit"), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


def board_figures(store: Path, keys) -> list[tuple]:
    """Every figure of the boards, rounded to what a board shows."""
    boards = boards_from_store(ResultStore(store), keys)
    figures = []
    for board in boards:
        for row in board.table.to_dict("records"):
            figures.append(tuple(sorted((str(k), str(v)) for k, v in row.items())))
    return sorted(figures)


MATRIX = (tables("sanitizers", 'name = "darken"\nstrength = [0.0, 0.5, 1.0]'),
          tables("attacks", 'name = "threshold"', 'name = "linear-probe"'),
          tables("metrics", 'name = "mean-abs-change"'))


def test_a_ray_run_gives_the_local_executors_leaderboard(testkit, cluster, tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.toml", *MATRIX, seeds=2))
    local = run(spec, options(tmp_path / "local"))
    remote = run(spec, options(tmp_path / "ray"), executor="ray", workers=2)
    assert remote.count("ok") == local.count("ok") == len(local.cell_keys) == 18
    # Same plugins, seeds and data; the ray workers run torch with one thread each, and the linear
    # probe's L-BFGS in float64 converges to the same optimum whatever the thread count: the
    # figures agree to the digits a board shows.
    assert board_figures(tmp_path / "ray" / "results.db", remote.cell_keys) == \
        board_figures(tmp_path / "local" / "results.db", local.cell_keys)
    frame_local = ResultStore(tmp_path / "local" / "results.db").frame()
    frame_ray = ResultStore(tmp_path / "ray" / "results.db").frame()
    merged = frame_local.merge(frame_ray, on=["cell_key", "metric"], suffixes=("_local", "_ray"))
    assert len(merged) == len(frame_local)
    assert (merged.value_local - merged.value_ray).abs().max() < 1e-6
    assert set(frame_ray.device) == {"cpu"}


def test_workers_never_open_the_store(testkit, cluster, tmp_path, monkeypatch):
    """The store's folder is unreachable for workers: only the driver may write it."""
    spec = load_spec(write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = [0.5]'),
                                tables("attacks", 'name = "threshold"')))
    opened = tmp_path / "opened-by"

    # A worker that opened the store would record its pid here; the driver's pid is allowed.
    def spy(*args, **kwargs):
        with open(opened, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        return real_connect(*args, **kwargs)

    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", spy)
    report = run(spec, options(tmp_path), executor="ray", workers=2)
    assert report.count("ok") == 1
    assert set(opened.read_text().split()) == {str(os.getpid())}


def test_a_worker_killed_mid_job_loses_no_finished_cell_and_its_job_is_retried(
        testkit, cluster, tmp_path, capsys):
    pid_file = tmp_path / "pids"
    spec = load_spec(write_spec(
        tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = [0.5]'),
        tables("attacks", 'name = "threshold"', f'name = "sleepy"\nseconds = 3.0\npid_file = "{pid_file}"')))

    def kill_first_runner() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if pid_file.exists() and pid_file.read_text().strip():
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_runner)
    killer.start()
    # In-process plugins, so that the sleeping attack runs in the Ray worker itself.
    report = run(spec, options(tmp_path, isolation="none"), executor="ray", workers=2)
    killer.join()
    assert len(pid_file.read_text().split()) == 2, "the killed job was not run again"
    assert report.count("ok") == 2
    assert "lost with their worker" in capsys.readouterr().err
    frame = ResultStore(tmp_path / "results.db").frame()
    assert set(frame.status) == {"ok"} and frame.cell_key.nunique() == 2
    assert report.statuses.keys() == set(frame.cell_key)
    # The threshold cell finished before the kill and was stored then: the retry ran the job's
    # sleepy cell alone (the lost attempt's profile rows went with its worker).
    assert [(row.kind, row.cell[:6]) for row in report.profile] == [("job", ""), ("attack", "sleepy")]


def test_fits_travel_through_the_object_store_when_no_cache_is_shared(testkit, cluster, tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.toml",
                                tables("sanitizers", 'name = "darken"\nstrength = [0.0, 1.0]'),
                                tables("attacks", 'name = "threshold"')))
    first = run(spec, options(tmp_path), executor="ray", workers=2, cache_transfer=True)
    assert first.fits_computed == 2
    fits = sorted((tmp_path / "cache" / "sanitizers").rglob("*.pt"))
    assert len(fits) == 2 and all(Path(f"{fit}.sha256").exists() for fit in fits)
    second_spec = load_spec(write_spec(tmp_path / "t.toml",
                                       tables("sanitizers", 'name = "darken"\nstrength = [0.0, 1.0]'),
                                       tables("attacks", 'name = "threshold"', 'name = "seed-echo"')))
    second = run(second_spec, options(tmp_path), executor="ray", workers=2, cache_transfer=True)
    assert (second.fits_computed, second.fits_reused) == (0, 2)


def test_the_missing_extra_is_one_line_naming_it(testkit, tmp_path, monkeypatch, capsys):
    from ppbench.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    spec = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = [0.5]'),
                      tables("attacks", 'name = "threshold"'))
    code = main(["run", str(spec), "--store", str(tmp_path / "r.db"), "--executor", "ray",
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "pip install 'ppbench[ray]'" in err and err.startswith("ppbench: error:")
    assert not (tmp_path / "r.db").exists() or ResultStore(tmp_path / "r.db").frame().empty


def test_a_job_asks_for_the_most_its_plugins_declare(testkit, tmp_path, monkeypatch):
    import ppbench_testkit
    from ppbench.planning import group_jobs, plan
    from ppbench.registry import get_registry

    spec = load_spec(write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = [0.5]'),
                                tables("attacks", 'name = "threshold"', 'name = "seed-echo"')))
    registry = get_registry()
    [job] = group_jobs(plan(spec, registry))
    assert job_resources(registry, job, "cuda") == default_resources("cuda") == {
        "num_cpus": 1.0, "num_gpus": 1.0}
    assert job_resources(registry, job, "cpu") == {"num_cpus": 1.0, "num_gpus": 0.0}
    monkeypatch.setattr(ppbench_testkit.Darken, "resources", {"num_gpus": 0.25, "memory": 2e9},
                        raising=False)
    monkeypatch.setattr(ppbench_testkit.ThresholdAttack, "resources", {"num_cpus": 3, "num_gpus": 0.25},
                        raising=False)
    # seed-echo declares nothing: it may need a whole GPU, so the job asks for one.
    assert job_resources(registry, job, "cuda") == {"num_cpus": 3.0, "num_gpus": 1.0, "memory": 2e9}
    monkeypatch.setattr(ppbench_testkit.SeedEcho, "resources", {"num_gpus": 0.25}, raising=False)
    assert job_resources(registry, job, "cuda") == {"num_cpus": 3.0, "num_gpus": 0.25, "memory": 2e9}
    assert job_resources(registry, job, "cpu")["num_gpus"] == 0.0


@pytest.mark.parametrize("resources, message", [
    ({"gpus": 1}, "unknown resource 'gpus'"),
    ({"num_gpus": -1}, "must be a number >= 0"),
    ({"num_gpus": 1.5}, "whole number"),
    ({"num_cpus": True}, "must be a number >= 0"),
    ([1], "must be a dict"),
])
def test_bad_resources_are_one_line_naming_the_plugin(resources, message):
    class Plugin:
        pass

    Plugin.resources = resources
    with pytest.raises(SpecError) as error:
        declared_resources(Plugin, "attack 'odd'")
    assert str(error.value).startswith("attack 'odd': ") and message in str(error.value)


def test_a_request_no_node_can_meet_is_refused_before_any_work(testkit, cluster, tmp_path, monkeypatch):
    import ppbench_testkit

    monkeypatch.setattr(ppbench_testkit.ThresholdAttack, "resources", {"num_cpus": 64}, raising=False)
    spec = load_spec(write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = [0.5]'),
                                tables("attacks", 'name = "threshold"')))
    with pytest.raises(SpecError, match="more than any node of the Ray cluster has"):
        run(spec, options(tmp_path), executor="ray", workers=2)
    assert ResultStore(tmp_path / "results.db").frame().empty


def test_batch_jobs_run_on_the_cluster_with_the_local_boards_figures(testkit, cluster, tmp_path):
    import json

    spec = load_spec(write_spec(tmp_path / "s.toml", MATRIX[0],
                                tables("attacks", 'name = "batch-threshold"', 'name = "threshold"'),
                                seeds=2))
    local = run(spec, options(tmp_path / "local"))
    remote = run(spec, options(tmp_path / "ray", batch_attacks=True), executor="ray", workers=2)
    assert remote.count("ok") == local.count("ok") == 12
    assert board_figures(tmp_path / "ray" / "results.db", remote.cell_keys) == \
        board_figures(tmp_path / "local" / "results.db", local.cell_keys)
    frame = ResultStore(tmp_path / "ray" / "results.db").frame().drop_duplicates("cell_key")
    batched = {r.plugin_label: "batch" in json.loads(r.provenance) for r in frame.itertuples()}
    assert batched == {"batch-threshold": True, "threshold": False}
