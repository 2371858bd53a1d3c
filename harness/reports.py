"""What a job and a run report: cells by status, fits computed and reused, and the profile.

A job function returns a :class:`JobReport` (from a worker process or a cluster task as well);
the runner merges them into the run's :class:`RunReport`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .profiling import ProfileRow


@dataclass
class JobReport:
    fits_computed: int = 0
    fits_reused: int = 0
    shared_built: int = 0
    statuses: dict[str, str] = field(default_factory=dict)  # cell key -> status
    errors: dict[str, str] = field(default_factory=dict)  # cell key -> message
    deferred: list[str] = field(default_factory=list)  # cells another run on the store holds
    by_other_runs: int = 0  # cells another run stored between this run's planning and its claim
    profile: list[ProfileRow] = field(default_factory=list)  # the job's own row, then its cells'

    def absorb(self, other: "JobReport") -> None:
        """Add another job's report to this one (a batch job's cells that ran alone)."""
        self.fits_computed += other.fits_computed
        self.fits_reused += other.fits_reused
        self.shared_built += other.shared_built
        self.by_other_runs += other.by_other_runs
        self.statuses.update(other.statuses)
        self.errors.update(other.errors)
        self.deferred.extend(other.deferred)
        self.profile.extend(other.profile)


@dataclass
class RunReport:
    planned: int = 0
    skipped: int = 0  # already in the store
    fits_computed: int = 0
    fits_reused: int = 0
    shared_built: int = 0
    statuses: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    wall_time: float = 0.0
    cell_keys: list[str] = field(default_factory=list)
    by_other_runs: int = 0  # cells another run on the same store computed while this one waited
    profile: list[ProfileRow] = field(default_factory=list)  # see ppbench.profiling

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)

    def merge(self, job: JobReport) -> None:
        self.fits_computed += job.fits_computed
        self.fits_reused += job.fits_reused
        self.shared_built += job.shared_built
        self.by_other_runs += job.by_other_runs
        self.statuses.update(job.statuses)
        self.errors.update(job.errors)
        self.profile.extend(job.profile)

    def summary(self) -> str:
        return (f"{self.planned} cells: {self.skipped} already stored, {len(self.statuses)} run "
                f"({self.count('ok')} ok, {self.count('error')} error, {self.count('n/a')} n/a); "
                f"sanitizer fits: {self.fits_computed} computed, {self.fits_reused} from cache; "
                + (f"{self.by_other_runs} computed meanwhile by another run on the store; "
                   if self.by_other_runs else "")
                + f"{self.wall_time:.1f}s")
