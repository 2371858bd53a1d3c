"""Where jobs run: in this process (``local``) or in a pool of worker processes (``process``).

Both take the same jobs and report the same way; each job commits its own cells to the store, so
a worker that dies loses only the cell it was computing. With several CUDA devices, each worker
of the process pool owns one.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Protocol

from .jobs import RunReport, run_job
from .planning import Job, RunOptions
from .spec import SpecError

EXECUTORS = ("local", "process")


class Executor(Protocol):
    def run(self, jobs: list[Job], options: RunOptions, report: RunReport, *,
            show_progress: bool) -> None: ...


def _progress_bar(total: int, show: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="cell", disable=not show, dynamic_ncols=True)


class LocalExecutor:
    """Jobs one after the other in this process: the default, and the easiest to debug."""

    def run(self, jobs: list[Job], options: RunOptions, report: RunReport, *,
            show_progress: bool) -> None:
        total = sum(len(job.cells) for job in jobs)
        with _progress_bar(total, show_progress, "cells") as bar:
            for job in jobs:
                bar.set_postfix_str(job.label, refresh=False)
                report.merge(run_job(job, options, on_cell=lambda cell, status: bar.update(1)))


_worker_device: str | None = None


def _init_worker(devices: "multiprocessing.Queue", threads: int) -> None:
    global _worker_device
    import torch

    torch.set_num_threads(threads)
    _worker_device = devices.get()


def _run_in_worker(job: Job, options: RunOptions):
    return run_job(job, replace(options, device=_worker_device or options.device,
                                show_progress=False))


class ProcessExecutor:
    """A pool of ``workers`` processes; each takes whole jobs, so a sanitizer is fitted once."""

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

    def run(self, jobs: list[Job], options: RunOptions, report: RunReport, *,
            show_progress: bool) -> None:
        context = multiprocessing.get_context("spawn")  # fork and torch's thread pools do not mix
        devices = context.Queue()
        for device in self._devices():
            devices.put(device)
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        total = sum(len(job.cells) for job in jobs)
        crashed: list[str] = []
        with _progress_bar(total, show_progress, f"cells ({self.workers} workers)") as bar, \
                ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                    initargs=(devices, threads)) as pool:
            futures = {pool.submit(_run_in_worker, job, options): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    report.merge(future.result())
                except BrokenProcessPool as exc:
                    crashed.append(f"{job.label}: {exc}")
                bar.update(len(job.cells))
        if crashed:
            raise RuntimeError(
                f"{len(crashed)} job(s) lost to a crashed worker (out of memory?); finished cells "
                f"are stored, run the same command again to compute the rest: {crashed[0]}")


def get_executor(name: str, *, workers: int = 1, device: str = "cpu") -> Executor:
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers, device)
    raise SpecError(f"unknown executor {name!r}; choose one of {EXECUTORS}")
