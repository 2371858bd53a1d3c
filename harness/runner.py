"""Runs a benchmark spec: plans its cells, skips those the store holds, and hands the rest, grouped
into jobs (one sanitizer fit each), to an executor.

The pieces live in their own modules: :mod:`~ppbench.planning` (cells, jobs, keys, seeds),
:mod:`~ppbench.jobs` (one job), :mod:`~ppbench.cache` (what is kept between cells and runs),
:mod:`~ppbench.executors` (where jobs run) and :mod:`~ppbench.store` (the results).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from .batches import group_batches, lease_key, run_any_job, split_batchable
from .cache import check_dataset_inputs
from .data_revision import check_store_revisions, data_revisions
from .detached import (DetachedJob, DetachedOutcome, LeaseKeeper, apply_writes, detach,
                       receive_cache_files, run_detached_job)
from .executors import Executor, JobLost, get_executor, lost_jobs_error
from .planning import DEFAULT_STORE, Cell, Job, RunOptions, dataset_key, group_jobs, plan, resolve_device
from .progress import JobLines
from .registry import Registry, get_registry, remember
from .reports import JobReport, RunReport
from .resources import job_resources
from .sealing import commitment
from .spec import BenchmarkSpec
from .store import ResultStore

# How many times a cluster executor's lost jobs run again (their unfinished cells only).
LOST_JOB_RETRIES = 2

__all__ = ["DEFAULT_STORE", "RunOptions", "RunReport", "plan", "resolve_device", "run"]


def run(spec: BenchmarkSpec, options: RunOptions, *, executor: str = "local", workers: int = 1,
        retry_errors: bool = False, rerun: Iterable[str] = (),
        registry: Registry | None = None, cache_transfer: bool = False) -> RunReport:
    """Run every cell of ``spec`` that the store does not hold yet.

    ``cache_transfer``: for a cluster executor whose workers do not see ``options.cache_dir``,
    fits and shared models travel with the jobs instead (ppbench.detached).

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
    # What the store held when the plan was made, kept for the whole run: a job tells the cells
    # it runs again on purpose (--rerun, --retry-errors) from cells another run on this store
    # finished since, and only this snapshot tells them apart (a later read would take the
    # others' cells for planned reruns and compute them twice).
    stored_at_plan = frozenset(store.finished_keys())
    statuses_done = ("ok", "n/a") if retry_errors else ("ok", "error", "n/a")
    done = store.finished_keys(statuses_done) if retry_errors else stored_at_plan
    forced = frozenset(rerun)
    pending = [c for c in cells if c.key not in done or c.plugin.name in forced]
    # Data read from local files: a missing or malformed folder stops the run here, in one line.
    for note in check_dataset_inputs(registry, spec.dataset, [c.dataset_params for c in pending],
                                     [c.task for c in pending], spec.profile, spec.source):
        print(f"ppbench: {note}", file=sys.stderr)
    # What those files hold now: the store refuses cells from other contents of the same folder,
    # and cached fits and shared models are keyed by it (ppbench.data_revision).
    # Stored cells' folders too, where they are at hand: edited files must not pass for the
    # stored results' own.
    revisions = data_revisions(registry, spec.dataset, [c.dataset_params for c in cells], spec.source,
                               needed={c.dataset_params for c in pending})
    if revisions:
        seal = commitment(options.salt) if options.salt else ""
        by_key = {dataset_key(registry, spec.dataset, params, seal): revision
                  for params, revision in revisions.items()}
        check_store_revisions(store, spec.dataset, by_key, spec.source)
        options = replace(options, data_revisions=tuple(sorted(by_key.items())))
    report = RunReport(planned=len(cells), skipped=len(cells) - len(pending),
                       cell_keys=[c.key for c in cells])
    job_executor = get_executor(executor, workers=workers, device=options.device)
    # Worker processes share this terminal: bars of their own would tear through the pool's.
    job_options = options if job_executor.in_process else replace(options, show_progress=False)
    retries_left = LOST_JOB_RETRIES if getattr(job_executor, "retries_lost", False) else 0
    lines = JobLines(len(pending)) if options.progress_lines else None

    def job_line(job: Job, outcome: JobReport | JobLost | None) -> None:
        if lines is None:
            return
        keys = [cell.key for cell in job.cells]
        if isinstance(outcome, JobLost):
            lines.job_done(job.label, job.seed, [report.statuses[k] for k in keys if k in report.statuses],
                           lost=str(outcome))
        else:
            lines.job_done(job.label, job.seed, [report.statuses[k] for k in keys if k in report.statuses])

    def run_phase(pending: list[Cell],
                  group: Callable[[list[Cell], frozenset[str]], list]) -> None:
        """Run ``pending`` as the jobs ``group`` makes of them, until every cell is stored:
        lost jobs' cells run again (cluster executors), deferred ones after their lease."""
        nonlocal retries_left
        while pending:
            lost: list[JobLost] = []
            deferred: list[str] = []
            jobs = group(pending, stored_at_plan)
            if getattr(job_executor, "shares_store", True):
                def on_done(job: Job, outcome: JobReport | JobLost) -> None:
                    # Executors report, the runner keeps the report: merged here, in this process.
                    if isinstance(outcome, JobLost):
                        lost.append(outcome)
                    else:
                        report.merge(outcome)
                        deferred.extend(outcome.deferred)
                    job_line(job, outcome)

                # A partial of a top-level function pickles, so worker processes can receive it.
                job_executor.run(jobs, partial(run_any_job, options=job_options), on_done,
                                 show_progress=options.show_progress)
            else:
                _run_detached(jobs, job_executor, store, registry, options, job_options, report,
                              lost, deferred, cache_transfer, job_line)
            if lost:  # every other job's outcome is merged by now; their cells are stored
                if retries_left <= 0:
                    raise lost_jobs_error(lost)
                retries_left -= 1
                print(f"ppbench: {len(lost)} job(s) lost with their worker ({lost[0]}); running "
                      "their unfinished cells again", file=sys.stderr)
                done = store.finished_keys(statuses_done)
                lost_labels = {loss.job_label for loss in lost}
                again = {cell.key for job in jobs if job.label in lost_labels for cell in job.cells}
                pending = [c for c in pending if (c.key in again and c.key not in done)
                           or c.key in set(deferred)]
                continue
            if not deferred:
                break
            # Another run on this store holds those jobs: wait for it to store their cells, or for
            # its leases to lapse (it was killed), then take over what is still missing.
            time.sleep(min(5.0, options.lease_ttl / 4))
            done = store.finished_keys(statuses_done)
            waiting = set(deferred)
            report.by_other_runs += len(waiting & done)
            pending = [c for c in pending if c.key in waiting and c.key not in done]

    if options.batch_attacks:
        # Sanitizers' jobs first (they fit for the batched cells too), then the batch jobs.
        _, batched = split_batchable(pending, registry)
        later = {cell.key for cell in batched}
        run_phase(pending, lambda cells, stored: group_jobs(
            [c for c in cells if c.key not in later], stored,
            [c for c in cells if c.key in later]))
        done = store.finished_keys(statuses_done)
        run_phase([c for c in batched if c.key not in done or c.plugin.name in forced],
                  lambda cells, stored: group_batches(cells, stored))
    else:
        run_phase(pending, lambda cells, stored: group_jobs(cells, stored))
    report.wall_time = time.monotonic() - started
    return report


def _run_detached(jobs: list[Job], job_executor: Executor, store: ResultStore, registry: Registry,
                  options: RunOptions, job_options: RunOptions, report: RunReport,
                  lost: list[JobLost], deferred: list[str], cache_transfer: bool,
                  job_line: Callable[[Job, JobReport | JobLost | None], None]) -> None:
    """Jobs on workers that cannot reach the store: this process holds their leases, hands each a
    snapshot, and writes what they send back as they send it (ppbench.detached)."""
    leases = LeaseKeeper(store, options.run_id, options.lease_ttl)
    lease_of: dict[str, str] = {}
    work = []
    try:
        for job in jobs:
            lease = lease_key(registry, job)
            if not leases.claim(lease):
                deferred.extend(cell.key for cell in job.cells)
                continue
            lease_of[job.label] = lease
            work.append(detach(job, store, registry, options,
                               job_resources(registry, job, options.device), cache_transfer))

        def on_cell(job: DetachedJob, cell: Cell, writes: list) -> None:
            apply_writes(store, writes)
            # Counted now: a job lost later never reports the cells it finished.
            for method, args, fields in writes:
                if method == "commit_cell":
                    report.statuses[args[0].cell_key] = fields["status"]
                    if fields.get("error"):
                        report.errors[args[0].cell_key] = fields["error"]

        def on_done(job: DetachedJob, outcome: DetachedOutcome | JobLost) -> None:
            try:
                if isinstance(outcome, JobLost):
                    lost.append(outcome)
                    return
                apply_writes(store, outcome.writes)
                receive_cache_files(Path(options.cache_dir), outcome.cache_files)
                report.merge(outcome.report)
                deferred.extend(outcome.report.deferred)
            finally:
                leases.release(lease_of[job.label])
                job_line(job.job, outcome)

        job_executor.run(work, partial(run_detached_job, options=job_options,
                                       cache_transfer=cache_transfer),
                         on_done, show_progress=options.show_progress, on_cell=on_cell)
    finally:
        leases.close()
