"""Runs a benchmark spec: plans its cells, skips those the store holds, and hands the rest, grouped
into jobs (one sanitizer fit each), to an executor.

The pieces live in their own modules: :mod:`~ppbench.planning` (cells, jobs, keys, seeds),
:mod:`~ppbench.jobs` (one job), :mod:`~ppbench.cache` (what is kept between cells and runs),
:mod:`~ppbench.executors` (where jobs run) and :mod:`~ppbench.store` (the results).
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import Iterable

from .executors import JobLost, get_executor, lost_jobs_error
from .jobs import JobReport, RunReport, run_job
from .planning import DEFAULT_STORE, Job, RunOptions, group_jobs, plan, resolve_device
from .registry import Registry, get_registry, remember
from .sealing import commitment
from .spec import BenchmarkSpec
from .store import ResultStore

__all__ = ["DEFAULT_STORE", "RunOptions", "RunReport", "plan", "resolve_device", "run"]


def run(spec: BenchmarkSpec, options: RunOptions, *, executor: str = "local", workers: int = 1,
        retry_errors: bool = False, rerun: Iterable[str] = (),
        registry: Registry | None = None) -> RunReport:
    """Run every cell of ``spec`` that the store does not hold yet.

    ``rerun`` names attacks or metrics (plugin names) whose cells run again even when stored, e.g.
    while one is being developed: the new results replace the stored ones (see
    :meth:`~ppbench.store.ResultStore.commit_cell`); every other cell is reused."""
    started = time.monotonic()
    registry = registry or get_registry()
    # Jobs carry the registry's recipe, not the process-wide default: a worker process rebuilds
    # the very registry the cells were planned with, and this process reuses it as it is.
    remember(registry)
    options = replace(options, registry_recipe=registry.recipe)
    # A sealed run (options.salt set) draws other data, so its cells have keys of their own.
    cells = plan(spec, registry, seal=commitment(options.salt) if options.salt else "")
    store = ResultStore(options.store)
    done = store.finished_keys(("ok", "n/a") if retry_errors else ("ok", "error", "n/a"))
    forced = frozenset(rerun)
    pending = [c for c in cells if c.key not in done or c.plugin.name in forced]
    report = RunReport(planned=len(cells), skipped=len(cells) - len(pending),
                       cell_keys=[c.key for c in cells])
    job_executor = get_executor(executor, workers=workers, device=options.device)
    # Worker processes share this terminal: bars of their own would tear through the pool's.
    job_options = options if job_executor.in_process else replace(options, show_progress=False)
    while pending:
        lost: list[JobLost] = []
        deferred: list[str] = []

        def on_done(job: Job, outcome: JobReport | JobLost) -> None:
            # Executors report, the runner keeps the report: merged here, in this process.
            if isinstance(outcome, JobLost):
                lost.append(outcome)
            else:
                report.merge(outcome)
                deferred.extend(outcome.deferred)

        # A partial of a top-level function pickles, so worker processes can receive it.
        stored = store.finished_keys()
        job_executor.run(group_jobs(pending, stored), partial(run_job, options=job_options), on_done,
                         show_progress=options.show_progress)
        if lost:  # every other job's outcome is merged by now; their cells are stored
            raise lost_jobs_error(lost)
        if not deferred:
            break
        # Another run on this store holds those jobs: wait for it to store their cells, or for
        # its leases to lapse (it was killed), then take over what is still missing.
        time.sleep(min(5.0, options.lease_ttl / 4))
        done = store.finished_keys(("ok", "n/a") if retry_errors else ("ok", "error", "n/a"))
        waiting = set(deferred)
        report.by_other_runs += len(waiting & done)
        pending = [c for c in cells if c.key in waiting and c.key not in done]
    report.wall_time = time.monotonic() - started
    return report
