"""Several runs on one store share the work: each job is leased to one run, renewed by a heartbeat,
and taken over when its run dies."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import replace

from ppbench.runner import RunOptions, run
from ppbench.spec import load_spec
from ppbench.store import ResultStore

from test_runner import tables, write_spec


def sleepy_spec(tmp_path):
    return write_spec(tmp_path / "s.toml",
                      tables("sanitizers", 'name = "darken"\nstrength = [0.0, 0.25, 0.5, 0.75]'),
                      tables("attacks", 'name = "sleepy"\nseconds = 0.4', 'name = "threshold"'))


def test_two_runs_on_one_store_compute_each_cell_once(testkit, tmp_path):
    spec = sleepy_spec(tmp_path)
    command = [sys.executable, "-m", "ppbench.cli", "run", str(spec), "--store",
               str(tmp_path / "results.db"), "--cache", str(tmp_path / "cache"), "--no-progress",
               "--device", "cpu", "--isolation", "none"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=120)[1] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    ran = [int(re.search(r"(\d+) run \(", err).group(1)) for err in outputs]
    assert sum(ran) == 8, outputs  # every cell computed once, by one run or the other
    assert all(n > 0 for n in ran), f"the runs did not share the work: {ran}"
    assert "computed meanwhile by another run" in outputs[1] + outputs[0]
    frame = ResultStore(tmp_path / "results.db").frame()
    assert frame.cell_key.nunique() == 8 and (frame.status == "ok").all()


def test_a_lapsed_lease_is_taken_over(testkit, tmp_path):
    spec = load_spec(sleepy_spec(tmp_path))
    store = ResultStore(tmp_path / "results.db")
    options = RunOptions(store=str(tmp_path / "results.db"), cache_dir=str(tmp_path / "cache"),
                         lease_ttl=2.0)
    # Another machine's run claimed every job, then stopped renewing (it was killed).
    from ppbench.planning import fit_key, group_jobs, plan
    from ppbench.registry import get_registry

    registry = get_registry()
    for job in group_jobs(plan(spec, registry)):
        key = fit_key(registry, job.dataset, job.dataset_params, job.task, job.sanitizer,
                      job.seed, job.profile, job.seal)
        assert store.claim("job:" + key, "elsewhere:1:dead", ttl=1.5)
    started = time.monotonic()
    report = run(spec, options)
    assert report.count("ok") == 8 and time.monotonic() - started >= 1.0


def test_a_dead_local_claimant_is_taken_over_at_once_and_a_live_one_is_not(tmp_path):
    import os
    import socket

    store = ResultStore(tmp_path / "results.db")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    assert store.claim("job:x", f"{host}:{dead.pid}:gone", ttl=600)
    assert store.claim("job:x", "other:1:run", ttl=600), "a dead local owner's lease was kept"
    assert store.claim("job:y", f"{host}:{os.getpid()}:alive", ttl=600)
    assert not store.claim("job:y", "other:1:run", ttl=600), "a live owner's lease was taken"
    store.release("job:y", f"{host}:{os.getpid()}:alive")
    assert store.claim("job:y", "other:1:run", ttl=600)


def test_a_job_finished_by_another_run_after_planning_is_not_run_again(testkit, tmp_path):
    """The race of two runs: one plans, the other finishes a job and releases its lease, then the
    first claims the free lease. It must see the stored cells, not its stale plan."""
    from ppbench.jobs import run_job
    from ppbench.planning import group_jobs, plan
    from ppbench.registry import get_registry

    spec = load_spec(sleepy_spec(tmp_path))
    store = ResultStore(tmp_path / "results.db")
    options = RunOptions(store=str(tmp_path / "results.db"), cache_dir=str(tmp_path / "cache"))
    stale = group_jobs(plan(spec, get_registry()), store.finished_keys())
    other = run(spec, RunOptions(store=options.store, cache_dir=options.cache_dir))
    assert other.count("ok") == 8
    ran = []
    for job in stale:
        report = run_job(job, options, on_cell=lambda cell, status: ran.append(cell.key))
        assert report.by_other_runs == len(job.cells)
    assert ran == [], "cells stored by another run were computed again"

    # Cells stored before planning and run again on purpose (--rerun, --retry-errors) still run.
    forced = group_jobs(plan(spec, get_registry()), store.finished_keys())
    report = run_job(forced[0], options, on_cell=lambda cell, status: ran.append(cell.key))
    assert len(ran) == len(forced[0].cells) and report.by_other_runs == 0


def test_cells_another_run_stores_while_this_run_prepares_are_not_run_again(testkit, tmp_path,
                                                                           monkeypatch):
    """The race of two runs at start: this run plans, then reads its data's inputs while the other
    run finishes cells. Grouping its jobs afterwards must not take those cells for reruns."""
    import ppbench.runner as runner_module

    spec = load_spec(sleepy_spec(tmp_path))
    options = RunOptions(store=str(tmp_path / "results.db"), cache_dir=str(tmp_path / "cache"))
    real_revisions = runner_module.data_revisions
    other_runs = []

    def another_run_finishes_everything_meanwhile(*args, **kwargs):
        if not other_runs:
            other_runs.append(None)
            other_runs[0] = run(spec, replace(options, run_id="other-host:1:run"))
        return real_revisions(*args, **kwargs)

    monkeypatch.setattr(runner_module, "data_revisions", another_run_finishes_everything_meanwhile)
    report = run(spec, options)
    assert other_runs[0].count("ok") == 8
    assert report.count("ok") == 0 and report.by_other_runs == 8, "cells computed twice"
