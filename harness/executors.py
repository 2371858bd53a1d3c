"""Where jobs run: in this process (``local``), in a pool of worker processes (``process``), or
on a Ray cluster (``ray``, :mod:`~ppbench.ray_executor`).

An executor knows what a job is made of (its cells, its label) and nothing of what running one
means: it calls the job function it is given on every job and hands each outcome back, in the
calling process, to ``on_done``. It imports neither the runner nor :mod:`~ppbench.jobs` and keeps
no report; the runner merges the outcomes into its own. Each job commits its own cells to the
store, so a worker that dies loses only the cells it had not finished. With several CUDA devices,
each worker of the process pool owns one.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from .spec import SpecError

if TYPE_CHECKING:
    from .planning import Cell, Job

EXECUTORS = ("local", "process", "ray")


class JobFunction(Protocol):
    """Runs one job and returns its outcome (for the runner, a ``JobReport``).

    ``on_cell(cell, status)``, when given, is called as each cell finishes (the local executor's
    progress bar). A process pool sends the function to its workers, so it must pickle: a
    top-level function or a ``functools.partial`` of one, never a lambda or a closure.
    """

    def __call__(self, job: Job, *, on_cell: Callable[[Cell, str], None] | None = None) -> Any: ...


# Called in the calling process once per job, in the order the jobs finish, with what the job
# function returned or, for a job lost with its worker, a JobLost.
OnDone = Callable[["Job", Any], None]
# Called in the calling process as a job's cell finishes, with what the job function handed its
# ``on_cell`` (a detached job's store writes), by executors that stream them (Ray).
OnCell = Callable[["Job", "Cell", Any], None]


class JobLost(RuntimeError):
    """A job whose worker process died (out of memory, killed) before the job returned. The cells
    it finished are stored (each is committed as it finishes); running again computes the rest."""

    def __init__(self, job_label: str, cause: BaseException) -> None:
        super().__init__(f"{job_label}: {cause}")
        self.job_label = job_label
        self.cause = cause


def lost_jobs_error(lost: Sequence[JobLost]) -> RuntimeError:
    """The error a run ends with when workers crashed: how many jobs were lost, what to do, and
    the first loss (they usually share one cause)."""
    return RuntimeError(
        f"{len(lost)} job(s) lost to a crashed worker (out of memory?); finished cells are stored, "
        f"run the same command again to compute the rest: {lost[0]}")


class Executor(Protocol):
    # Whether the job function runs in the calling process. Worker processes share its terminal,
    # so a caller turns off the jobs' own progress bars when this is False: they would tear
    # through the executor's bar.
    in_process: bool
    # Whether jobs can reach the store at the run's path. When False (a cluster), the runner
    # gives them a snapshot and writes what they send back (ppbench.detached).
    shares_store: bool
    # Whether the runner should run a lost job's unfinished cells again (a cluster's worker is
    # replaceable; a local worker killed for its memory would die again).
    retries_lost: bool

    def run(self, jobs: Sequence[Job], job_fn: JobFunction, on_done: OnDone, *,
            show_progress: bool, on_cell: OnCell | None = None) -> None:
        """Run every job with ``job_fn`` and report each outcome to ``on_done``. A job lost with
        its worker is reported as a :class:`JobLost` and the others go on; an exception that
        ``job_fn`` itself raises is a fault of the caller's, not of a plugin, and propagates."""
        ...


def progress_bar(total: int, show: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="cell", disable=not show, dynamic_ncols=True)


class LocalExecutor:
    """Jobs one after the other in this process: the default, and the easiest to debug."""

    in_process = True
    shares_store = True
    retries_lost = False

    def run(self, jobs: Sequence[Job], job_fn: JobFunction, on_done: OnDone, *,
            show_progress: bool, on_cell: OnCell | None = None) -> None:
        total = sum(len(job.cells) for job in jobs)
        with progress_bar(total, show_progress, "cells") as bar:
            for job in jobs:
                bar.set_postfix_str(job.label, refresh=False)

                def cell_done(cell: Cell, payload: Any, job: Job = job) -> None:
                    bar.update(1)
                    if on_cell is not None:
                        on_cell(job, cell, payload)

                on_done(job, job_fn(job, on_cell=cell_done))


def _init_worker(devices: "multiprocessing.Queue[str]", threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    device = devices.get()
    # The job function runs with the run's device ("cuda"); making this worker's GPU the current
    # one sends everything it puts on "cuda" there, so each worker owns one GPU.
    if device.startswith("cuda:"):
        torch.cuda.set_device(device)


def spread_over_seeds(jobs: Sequence[Job]) -> list[Job]:
    """The jobs in an order that starts workers on different (data, seed) draws first.

    Models shared by a draw's jobs (raw-data references, recognizers) are built once, under a
    lock, by the draw's first job: workers that start on jobs of one draw wait for it, so a pool
    given the plan's draw-by-draw order runs little faster than one process. First every draw's
    first job; then the other jobs, draw by draw, in the order the draws started, so that a
    worker freed early takes jobs whose shared models are built (or nearly) rather than queueing
    on the lock of the draw started last. Each draw's jobs keep their plan order."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        # An executor reads only a job's label and cells; a job without these fields (a test's,
        # a cluster's) is a draw of its own, so its order is kept.
        draw = tuple(getattr(job, name, id(job))
                     for name in ("dataset", "dataset_params", "seed", "profile", "seal"))
        groups.setdefault(draw, []).append(job)
    queues = list(groups.values())
    return [queue[0] for queue in queues] + [job for queue in queues for job in queue[1:]]


class ProcessExecutor:
    """A pool of ``workers`` processes; each takes whole jobs, so a sanitizer is fitted once."""

    in_process = False
    shares_store = True
    retries_lost = False

    def __init__(self, workers: int, device: str) -> None:
        if workers < 1:
            raise SpecError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self.device = device

    def _devices(self) -> list[str]:
        import torch

        if self.device == "cuda" and torch.cuda.device_count() > 1:
            return [f"cuda:{i % torch.cuda.device_count()}" for i in range(self.workers)]
        return [self.device] * self.workers

    def run(self, jobs: Sequence[Job], job_fn: JobFunction, on_done: OnDone, *,
            show_progress: bool, on_cell: OnCell | None = None) -> None:
        context = multiprocessing.get_context("spawn")  # fork and torch's thread pools do not mix
        devices = context.Queue()
        for device in self._devices():
            devices.put(device)
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        total = sum(len(job.cells) for job in jobs)
        with progress_bar(total, show_progress, f"cells ({self.workers} workers)") as bar, \
                ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                    initargs=(devices, threads)) as pool:
            futures = {pool.submit(job_fn, job): job for job in spread_over_seeds(jobs)}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool as exc:
                    # A dead worker breaks the whole pool: every job not finished by then comes
                    # here, and the ones that did finish were reported already.
                    outcome = JobLost(job.label, exc)
                on_done(job, outcome)
                bar.update(len(job.cells))


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def choose_executor(name: str, device: str, workers: int | None) -> tuple[str, int]:
    """The executor and worker count ``ppbench run`` uses for ``--executor NAME --workers N``.

    ``auto``: on a CPU with several cores, a process pool with one single-threaded worker per
    core, each job's small networks trained on one thread (the default benchmark: 265 s on 2
    cores; the one-process executor was not timed on it). On a GPU, this process: its jobs share the one
    device, and batched attacks need the whole run in one place. ``workers`` unset: one per
    core."""
    cores = available_cores()
    if name == "auto":
        name = "process" if not device.startswith("cuda") and cores >= 2 else "local"
    return name, workers if workers is not None else max(1, cores)


def get_executor(name: str, *, workers: int = 1, device: str = "cpu") -> Executor:
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers, device)
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(workers, device)
    raise SpecError(f"unknown executor {name!r}; choose one of {EXECUTORS}")
