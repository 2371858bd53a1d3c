"""``--executor ray``: jobs as tasks on a Ray cluster (``pip install 'ppbench[ray]'``).

It joins the cluster that ``RAY_ADDRESS`` names, or starts a local one with ``workers`` CPUs
(and the machine's GPUs). Each job is one Ray task that asks for the CPUs, GPUs and memory its
plugins declare (:mod:`~ppbench.resources`); Ray places it and, on a GPU node, makes the GPU it
was given the task's only visible one. A task streams what it does back to this process: after
each cell, that cell's store writes (``on_cell``), then the job's outcome; the runner, in this
process, is the only writer of the store. A task whose worker dies (killed, out of memory, its
node gone) is reported as :class:`~ppbench.executors.JobLost`; the runner runs what it had not
finished again (``retries_lost``). Ray's own retries are off, so that a retried job starts from
the cells the store holds by then rather than from the beginning.

Inside a task the job runs in a thread beside the generator that streams its cells, and a timer
signal reaches only a main thread. Under ``--isolation process`` (the default) the sandbox still
stops a plugin that passes its time limit; under ``--isolation none`` only the cooperative
deadline (``ctx.check_deadline``) holds.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from .executors import JobFunction, JobLost, OnCell, OnDone, progress_bar
from .spec import SpecError

if TYPE_CHECKING:
    from .planning import Job

MISSING_EXTRA = ("--executor ray needs Ray, which is not installed: pip install 'ppbench[ray]' "
                 "(the 'ray' extra)")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SpecError(MISSING_EXTRA) from None
    return ray


def _streamed_job(job_fn: JobFunction, job: Any, threads: int) -> Iterator[tuple]:
    """The body of a Ray task: runs the job and yields ``("cell", cell, payload)`` as each cell
    finishes, then ``("done", outcome)``."""
    import torch

    torch.set_num_threads(max(1, threads))
    events: queue.Queue[tuple] = queue.Queue()

    def work() -> None:
        try:
            events.put(("done", job_fn(job, on_cell=lambda cell, payload: events.put(
                ("cell", cell, payload)))))
        except BaseException as exc:  # noqa: BLE001 - raised again in the task, below
            events.put(("raised", exc))

    # The job runs beside the generator, which hands its events over as they come.
    threading.Thread(target=work, daemon=True, name="ppbench-job").start()
    while True:
        event = events.get()
        if event[0] == "raised":
            raise event[1]
        yield event
        if event[0] == "done":
            return


def _fits_somewhere(wanted: Mapping[str, float], nodes: Sequence[Mapping[str, float]]) -> bool:
    names = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
    return any(all(wanted.get(key, 0.0) <= node.get(names[key], 0.0) + 1e-9
                   for key in names if wanted.get(key, 0.0) > 0) for node in nodes)


class RayExecutor:
    """Jobs as Ray tasks, placed by the resources they ask for; the store stays in this process."""

    in_process = False
    shares_store = False  # jobs get a snapshot and send their writes back (ppbench.detached)
    retries_lost = True

    def __init__(self, workers: int, device: str, address: str | None = None) -> None:
        if workers < 1:
            raise SpecError(f"--workers must be at least 1, got {workers}")
        self.ray = import_ray()
        self.workers = workers
        self.device = device
        self.address = address if address is not None else os.environ.get("RAY_ADDRESS") or None

    def _connect(self) -> bool:
        """Join the cluster (or start a local one); True when this call started the connection."""
        ray = self.ray
        if ray.is_initialized():
            return False
        common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                                  "configure_logging": False}
        # Plugins found through PYTHONPATH must be importable in the workers too.
        env = {name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ}
        if env:
            common["runtime_env"] = {"env_vars": env}
        if self.address:
            ray.init(address=self.address, **common)
        else:
            ray.init(num_cpus=self.workers, **common)
        return True

    def run(self, jobs: Sequence[Job], job_fn: JobFunction, on_done: OnDone, *,
            show_progress: bool, on_cell: OnCell | None = None) -> None:
        ray = self.ray
        started = self._connect()
        try:
            nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
            requests = []
            for job in jobs:
                wanted = dict(getattr(job, "resources", {}) or {"num_cpus": 1.0})
                if not _fits_somewhere(wanted, nodes):
                    raise SpecError(f"job {job.label} asks for {wanted}, more than any node of the "
                                    f"Ray cluster has ({nodes})")
                requests.append(wanted)
            task = ray.remote(_streamed_job)
            running: dict[Any, tuple[Job, int]] = {}
            for job, wanted in zip(jobs, requests):
                options = {key: value for key, value in wanted.items() if value > 0}
                stream = task.options(max_retries=0, num_cpus=wanted.get("num_cpus", 1.0),
                                      **{k: v for k, v in options.items() if k != "num_cpus"}
                                      ).remote(job_fn, job, int(wanted.get("num_cpus", 1.0)))
                running[stream] = (job, 0)
            total = sum(len(job.cells) for job in jobs)
            with progress_bar(total, show_progress, "cells (ray)") as bar:
                while running:
                    ready, _ = ray.wait(list(running), num_returns=1)
                    stream = ready[0]
                    job, reported = running[stream]
                    try:
                        event = ray.get(next(stream))
                    except StopIteration:
                        running.pop(stream)
                        continue
                    except ray.exceptions.RayTaskError as exc:
                        # The job function itself raised: the caller's fault, not a plugin's.
                        raise exc.as_instanceof_cause() from None
                    except ray.exceptions.RayError as exc:
                        running.pop(stream)
                        on_done(job, JobLost(job.label, exc))
                        bar.update(len(job.cells) - reported)
                        continue
                    if event[0] == "cell":
                        if on_cell is not None:
                            on_cell(job, event[1], event[2])
                        running[stream] = (job, reported + 1)
                        bar.update(1)
                    else:
                        running.pop(stream)
                        on_done(job, event[1])
                        bar.update(len(job.cells) - reported)
        finally:
            if started:
                ray.shutdown()

