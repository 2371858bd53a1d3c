"""Where a run's time goes: exclusive wall time per phase of each job and cell (``--profile-run``).

The runner opens a :class:`PhaseClock` per job and per cell; the code that does the work marks its
phases with :func:`phase`. Phases nest, and each is charged its *exclusive* time (time spent in a
nested phase goes to the nested one), so a cell's phases add up to its wall time. Outside a clock,
:func:`phase` costs one context-variable read, so library code marks phases unconditionally.

Phases (:data:`PHASES`): the plugins' (``data``: the data set's loader; ``fit``,
``transform``, ``train``, ``predict``, and ``plugin``: a plugin's code outside the shared
training loop and predictor) and the harness's own work (``facts``, ``view``, ``sandbox``,
``seal``, ``scoring``, ``store``, ``cache``, and ``harness`` for the rest). A sandboxed plugin's
phases are timed in its child process and sent back with its result; the remainder of the call
(copies in and out, messages) is ``sandbox``, which is harness overhead too.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: Plugin compute: what a faster plugin (or a faster device) makes faster. ``data`` is the data
#: set plugin's loader (synthfaces renders its images).
PLUGIN_PHASES = ("data", "fit", "transform", "train", "predict", "plugin")
#: Harness overhead: everything the harness does around the plugins (``facts``: the leakage
#: floor per task and seed; ``seal``: the digests that catch a plugin writing into its inputs).
HARNESS_PHASES = ("facts", "view", "sandbox", "seal", "scoring", "store", "cache", "harness")
PHASES = PLUGIN_PHASES + HARNESS_PHASES


class PhaseClock:
    """Exclusive wall time per phase; time outside every phase of an open clock is ``harness``."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._started = time.perf_counter()
        self._stack: list[list[float]] = []  # [start, time spent in nested phases]
        self.wall = 0.0

    def add(self, name: str, seconds: float) -> None:
        self.totals[name] = self.totals.get(name, 0.0) + seconds

    def enter(self) -> None:
        self._stack.append([time.perf_counter(), 0.0])

    def leave(self, name: str) -> float:
        start, nested = self._stack.pop()
        elapsed = time.perf_counter() - start
        self.add(name, elapsed - nested)
        if self._stack:
            self._stack[-1][1] += elapsed
        return elapsed

    def merge(self, phases: Mapping[str, float]) -> None:
        """Charge ``phases`` measured elsewhere (a sandbox child) as nested in the innermost open
        phase, whose exclusive time they are taken from."""
        for name, seconds in phases.items():
            self.add(name, seconds)
        if self._stack:
            self._stack[-1][1] += sum(phases.values())

    def close(self) -> dict[str, float]:
        """The phase totals, with the time outside every phase as ``harness``."""
        self.wall = time.perf_counter() - self._started
        outside = self.wall - sum(self.totals.values())
        if outside > 0:
            self.add("harness", outside)
        return dict(self.totals)


_CLOCK: contextvars.ContextVar[PhaseClock | None] = contextvars.ContextVar("ppbench_clock",
                                                                           default=None)


@contextlib.contextmanager
def clock() -> Iterator[PhaseClock]:
    """Open a clock for the code inside; :func:`phase` marks time on it."""
    opened = PhaseClock()
    token = _CLOCK.set(opened)
    try:
        yield opened
    finally:
        _CLOCK.reset(token)
        opened.close()


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Charge the code inside to ``name`` (exclusive of nested phases) on the open clock, if any."""
    current = _CLOCK.get()
    if current is None:
        yield
        return
    current.enter()
    try:
        yield
    finally:
        current.leave(name)


def charged_to(name: str) -> Callable[[F], F]:
    """Decorate a function so that its calls are the phase ``name``."""
    def decorate(function: F) -> F:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with phase(name):
                return function(*args, **kwargs)

        return timed  # type: ignore[return-value]

    return decorate


def current_clock() -> PhaseClock | None:
    return _CLOCK.get()


def clean_phases(received: Any) -> dict[str, float]:
    """Phases a sandbox child reported, kept only where they are known phase names with finite,
    non-negative seconds: they come from a process that ran a plugin's code."""
    if not isinstance(received, dict):
        return {}
    return {name: float(seconds) for name, seconds in received.items()
            if name in PHASES and isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
            and math.isfinite(seconds) and seconds >= 0}


@dataclass
class ProfileRow:
    """One job's own phases (``cell`` empty: data, fit, transform, cache) or one cell's."""

    job: str
    sanitizer: str
    cell: str  # the attack's or metric's label; "" for the job's own work
    kind: str  # "job", "attack" or "metric"
    wall: float
    phases: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "sanitizer": self.sanitizer, "cell": self.cell, "kind": self.kind,
                "wall_s": round(self.wall, 4),
                **{f"{name}_s": round(self.phases.get(name, 0.0), 4) for name in PHASES}}


def write_profile(rows: Sequence[ProfileRow], path: Path, run_wall: float) -> None:
    """One CSV row per job and per cell, then a ``(run)`` row: the run's wall time, with the time
    no job accounts for (planning, executor, waiting) as ``harness``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    summed = {name: sum(row.phases.get(name, 0.0) for row in rows) for name in PHASES}
    job_time = sum(row.wall for row in rows)
    run_row = ProfileRow("(run)", "", "", "run", run_wall, dict(summed))
    if run_wall > job_time:  # with parallel workers job time exceeds the wall time
        run_row.phases["harness"] = summed["harness"] + run_wall - job_time
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ProfileRow("", "", "", "", 0).as_dict()))
        writer.writeheader()
        for row in [*rows, run_row]:
            writer.writerow(row.as_dict())


def summarize(rows: Sequence[ProfileRow], run_wall: float) -> str:
    """A few lines: time per phase over the run, plugin compute against harness overhead, and the
    attacks, metrics and sanitizers that cost the most."""
    summed = {name: sum(row.phases.get(name, 0.0) for row in rows) for name in PHASES}
    accounted = sum(summed.values())
    unaccounted = max(0.0, run_wall - sum(row.wall for row in rows))
    total = accounted + unaccounted
    plugin = sum(summed[name] for name in PLUGIN_PHASES)
    harness = total - plugin
    share = (lambda seconds: f"{100 * seconds / total:.1f}%") if total > 0 else (lambda _: "n/a")
    lines = [f"profile: {total:.1f}s of job time ({run_wall:.1f}s wall); plugin compute "
             f"{plugin:.1f}s ({share(plugin)}), harness overhead {harness:.1f}s ({share(harness)})",
             "  by phase: " + ", ".join(f"{name} {summed[name]:.1f}s" for name in PHASES
                                        if summed[name] >= 0.05)
             + (f", outside jobs {unaccounted:.1f}s" if unaccounted >= 0.05 else "")]
    by_plugin: dict[str, float] = {}
    for row in rows:
        label = row.cell if row.cell else f"{row.sanitizer} (fit)"
        by_plugin[label] = by_plugin.get(label, 0.0) + row.wall
    heaviest = sorted(by_plugin.items(), key=lambda item: -item[1])[:5]
    lines.append("  heaviest: " + ", ".join(f"{label} {seconds:.1f}s" for label, seconds in heaviest))
    return "\n".join(lines)
