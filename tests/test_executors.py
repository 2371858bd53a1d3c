"""Executors run the job function they are given and report each outcome; they know neither the
runner nor ppbench.jobs, and keep no report of their own. The runner merges what they report."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import ppbench.executors
import ppbench.runner
from ppbench.executors import JobLost, LocalExecutor, ProcessExecutor
from ppbench.jobs import JobReport
from ppbench.runner import RunOptions, run
from ppbench.spec import load_spec

from test_runner import tables, write_spec


@dataclass(frozen=True)
class FakeJob:
    """What an executor reads of a job: its label and its cells (for the progress bar)."""

    label: str
    cells: tuple[str, ...] = ("a", "b")


def echo(job: FakeJob, *, on_cell=None) -> str:
    """A job function: reports every cell, returns which process ran the job."""
    for cell in job.cells:
        if on_cell is not None:
            on_cell(cell, "ok")
    return f"{job.label} in {os.getpid()}"


def crash_on_doomed(job: FakeJob, *, on_cell=None) -> str:
    """A job function whose worker dies (as out of memory would kill it) on the job named doomed."""
    if job.label == "doomed":
        time.sleep(0.5)  # the job before it has reported by then
        os._exit(1)
    return job.label


def imported_modules(module) -> set[str]:
    """Every module an import statement of `module` names, relative ones resolved, at any depth
    (inside functions and `if TYPE_CHECKING:` blocks too)."""
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "ppbench." * (node.level > 0) + (node.module or "")
            names.add(base.rstrip("."))
            names.update(f"{base}.{alias.name}".replace("..", ".") for alias in node.names)
    return names


def test_executors_import_neither_the_runner_nor_the_jobs_module():
    names = imported_modules(ppbench.executors)
    assert not names & {"ppbench.jobs", "ppbench.runner"}, names
    # Not even through another module: importing the executors alone leaves both unloaded.
    code = ("import sys, ppbench.executors; "
            "print(sorted(m for m in ('ppbench.jobs', 'ppbench.runner') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"


def test_the_local_executor_calls_the_job_function_and_reports_every_outcome_in_order():
    jobs = [FakeJob("one"), FakeJob("two", ("c",))]
    outcomes = []
    LocalExecutor().run(jobs, echo, lambda job, outcome: outcomes.append((job.label, outcome)),
                        show_progress=False)
    assert outcomes == [("one", f"one in {os.getpid()}"), ("two", f"two in {os.getpid()}")]


def test_the_process_executor_runs_jobs_in_workers_and_reports_in_this_process():
    jobs = [FakeJob("one"), FakeJob("two")]
    outcomes = {}
    ProcessExecutor(1, "cpu").run(jobs, echo, lambda job, outcome: outcomes.update({job.label: outcome}),
                                  show_progress=False)
    assert sorted(outcomes) == ["one", "two"]
    assert all(not outcome.endswith(f" in {os.getpid()}") for outcome in outcomes.values())


def test_a_crashed_worker_costs_only_the_jobs_it_lost():
    jobs = [FakeJob("first"), FakeJob("doomed"), FakeJob("after")]
    outcomes = {}
    ProcessExecutor(1, "cpu").run(jobs, crash_on_doomed,
                                  lambda job, outcome: outcomes.update({job.label: outcome}),
                                  show_progress=False)
    assert outcomes["first"] == "first"  # finished before the crash: reported as it was
    for lost in ("doomed", "after"):  # a dead worker breaks the pool: what was pending is lost too
        assert isinstance(outcomes[lost], JobLost) and outcomes[lost].job_label == lost
        assert str(outcomes[lost]).startswith(f"{lost}: ")


class FakeExecutor:
    """Stands in for a process pool: records the job function, reports chosen outcomes."""

    in_process = False

    def __init__(self, outcomes):
        self.outcomes = outcomes
        self.job_fn = None

    def run(self, jobs, job_fn, on_done, *, show_progress):
        self.job_fn = job_fn
        for job, outcome in zip(jobs, self.outcomes):
            on_done(job, outcome)


def two_job_spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "s.toml",
                      tables("sanitizers", 'name = "darken"\nstrength = [0.0, 1.0]'),
                      tables("attacks", 'name = "threshold"'))


def test_the_runner_merges_reported_outcomes_and_fails_naming_lost_jobs(testkit, tmp_path, monkeypatch):
    merged = JobReport(fits_computed=1, statuses={"cell-1": "ok"})
    fake = FakeExecutor([merged, JobLost("secret/darken(strength=1.0)", RuntimeError("boom"))])
    monkeypatch.setattr(ppbench.runner, "get_executor", lambda *args, **kwargs: fake)
    options = RunOptions(store=str(tmp_path / "results.db"), cache_dir=str(tmp_path / "cache"),
                         show_progress=True)
    with pytest.raises(RuntimeError) as error:
        run(load_spec(two_job_spec(tmp_path)), options, executor="process")
    assert str(error.value) == (
        "1 job(s) lost to a crashed worker (out of memory?); finished cells are stored, run the "
        "same command again to compute the rest: secret/darken(strength=1.0): boom")
    # The job function pickles for worker processes, and their jobs draw no bars of their own.
    import pickle

    job_fn = pickle.loads(pickle.dumps(fake.job_fn))
    assert job_fn.keywords["options"].show_progress is False


def test_the_runner_report_adds_up_what_the_executor_reported(testkit, tmp_path, monkeypatch):
    fake = FakeExecutor([JobReport(fits_computed=1, statuses={"x": "ok"}),
                         JobReport(fits_reused=1, statuses={"y": "n/a"}, errors={"y": "why"})])
    monkeypatch.setattr(ppbench.runner, "get_executor", lambda *args, **kwargs: fake)
    report = run(load_spec(two_job_spec(tmp_path)),
                 RunOptions(store=str(tmp_path / "results.db"), cache_dir=str(tmp_path / "cache")))
    assert (report.fits_computed, report.fits_reused) == (1, 1)
    assert report.statuses == {"x": "ok", "y": "n/a"} and report.errors == {"y": "why"}


def test_a_pool_starts_its_workers_on_different_seeds_and_runs_every_job_once():
    from types import SimpleNamespace

    from ppbench.executors import spread_over_seeds

    jobs = [SimpleNamespace(dataset="d", dataset_params=(), seed=seed, profile="quick", seal="",
                            label=f"{name}/{seed}")
            for seed in (0, 1, 2) for name in ("identity", "blur", "noise")]
    order = [job.label for job in spread_over_seeds(jobs)]
    assert order[:3] == ["identity/0", "identity/1", "identity/2"]
    # Then draw by draw: a worker freed early takes jobs of a draw whose shared models are
    # built, not the last-started draw's, which would wait on its lock.
    assert order[3:] == ["blur/0", "noise/0", "blur/1", "noise/1", "blur/2", "noise/2"]
    assert sorted(order) == sorted(job.label for job in jobs)
    # Within a seed, the plan's order is kept.
    assert [label for label in order if label.endswith("/1")] == ["identity/1", "blur/1", "noise/1"]
    assert spread_over_seeds([]) == []


def test_auto_picks_a_pool_of_one_worker_per_core_on_a_multicore_cpu_and_this_process_on_a_gpu(
        monkeypatch):
    import ppbench.executors as executors

    monkeypatch.setattr(executors, "available_cores", lambda: 4)
    assert executors.choose_executor("auto", "cpu", None) == ("process", 4)
    assert executors.choose_executor("auto", "cpu", 3) == ("process", 3)
    assert executors.choose_executor("auto", "cuda", None)[0] == "local"
    assert executors.choose_executor("auto", "cuda:1", None)[0] == "local"
    # What the user names is what runs.
    assert executors.choose_executor("local", "cpu", None)[0] == "local"
    assert executors.choose_executor("process", "cuda", 2) == ("process", 2)
    monkeypatch.setattr(executors, "available_cores", lambda: 1)
    assert executors.choose_executor("auto", "cpu", None) == ("local", 1)


def test_ppbench_run_defaults_to_auto_unless_ppbench_executor_names_one(monkeypatch):
    from ppbench.cli import build_parser

    monkeypatch.delenv("PPBENCH_EXECUTOR")
    args = build_parser().parse_args(["run"])
    assert (args.executor, args.workers) == ("auto", None)
    monkeypatch.setenv("PPBENCH_EXECUTOR", "local")
    assert build_parser().parse_args(["run"]).executor == "local"
