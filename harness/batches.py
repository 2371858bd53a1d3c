"""Batch jobs: one attack configuration against several sanitizer configurations at once.

In one (data, task, seed) a batchable attack (``Attack.batchable``) runs the same method on every
sanitizer configuration's sanitized splits, independently. With ``--batch-attacks`` the runner
takes those cells out of their sanitizers' jobs: the jobs still fit the sanitizers (and store
the cells as errors if a fit fails), and a batch job afterwards loads up to :data:`MAX_BATCH` of
the cached fits and hands the attack all their views in one ``run_batch`` call. The adversarial
classifier then trains all their classifiers as one network (``ppbench.nn.stacked``), which is
what fills a GPU.

Each cell keeps everything it has alone: its seed, its view, its scoring, its stored record
(with ``batch`` in its provenance), its n/a. A cell that cannot join the batch runs alone, as
an ordinary job of its sanitizer would run it, within the batch job. That covers a fit missing
from the cache, an honest reference, an oracle or handles in its view, and every cell of a
batch whose ``run_batch`` raised, so that a failing plugin still costs only its own cells.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .api import Context, NotApplicable, PluginContractError, get_profile
from .cache import (CorruptEntry, SharedModels, discard, fitted_path, forget_datasets,
                    load_dataset, load_fitted)
from .cells import (Isolated, PreparedAttack, commit_result, prepare_attack, raw_inputs,
                    sanitized_inputs, score_attack, withheld_truth)
from .guards import error_text, plugin_stage, time_limit
from .honest_reference import reference_config
from .integrity import Seal, describe_tampering
from .jobs import job_canaries, leased, run_job
from .planning import (Cell, Job, PluginConfig, RunOptions, dataset_identity, dataset_key,
                       derive_seed, fit_key)
from .profiling import PhaseClock, ProfileRow, clock, phase
from .registry import Registry, registry_for
from .reports import JobReport
from .sandbox import ContextSpec, PluginCall, sandbox_for
from .sealing import commitment
from .store import ResultStore

MAX_BATCH = 16  # cells per batch job: enough to fill a GPU, few enough to spread over many


@dataclass(frozen=True)
class BatchJob:
    """Cells of one attack configuration on one (data, task, seed, profile), one per sanitizer
    configuration. Plain data, like a job: it crosses process boundaries."""

    dataset: str
    dataset_params: tuple[tuple[str, Any], ...]
    task: Any
    seed: int
    profile: str
    seal: str
    plugin: PluginConfig
    cells: tuple[Cell, ...]
    stored_at_plan: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return f"{self.task.name}/{self.cells[0].plugin_label} on {len(self.cells)} sanitizers"


def split_batchable(cells: Sequence[Cell], registry: Registry) -> tuple[list[Cell], list[Cell]]:
    """(cells run by their sanitizers' jobs, cells of batchable attacks)."""
    regular, batched = [], []
    for cell in cells:
        is_batchable = cell.kind == "attack" and bool(getattr(registry.attack(cell.plugin.name),
                                                              "batchable", False))
        (batched if is_batchable else regular).append(cell)
    return regular, batched


def group_batches(cells: Sequence[Cell], stored: frozenset[str] | set[str] = frozenset(),
                  max_size: int = MAX_BATCH) -> list[BatchJob]:
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.dataset, cell.dataset_params, cell.task, cell.seed, cell.profile,
                           cell.seal, cell.plugin), []).append(cell)
    batches = []
    for key, members in groups.items():
        for start in range(0, len(members), max_size):
            chunk = tuple(members[start:start + max_size])
            batches.append(BatchJob(*key, cells=chunk,
                                    stored_at_plan=frozenset(c.key for c in chunk if c.key in stored)))
    return batches


def lease_key(registry: Registry, job: Any) -> str:
    """The store lease a job or a batch job runs under: one run at a time computes it."""
    if isinstance(job, BatchJob):
        cells = "".join(sorted(cell.key for cell in job.cells))
        return "batch:" + hashlib.sha256(cells.encode()).hexdigest()[:32]
    return "job:" + fit_key(registry, job.dataset, job.dataset_params, job.task, job.sanitizer,
                            job.seed, job.profile, job.seal, canaries=job.canaries)


def run_any_job(job: Any, options: RunOptions, on_cell: Callable[[Cell, Any], None] | None = None,
                *, store: Any = None) -> JobReport:
    """The job function for a mix of jobs and batch jobs."""
    if isinstance(job, BatchJob):
        return run_batch_job(job, options, on_cell, store=store)
    return run_job(job, options, on_cell, store=store)


def run_batch_job(batch: BatchJob, options: RunOptions,
                  on_cell: Callable[[Cell, Any], None] | None = None, *, store: Any = None) -> JobReport:
    """Run a batch job's pending cells (under its lease, like a job). Never raises for a
    plugin's fault."""
    registry = registry_for(options.registry_recipe)
    store = ResultStore(options.store) if store is None else store
    with leased(store, lease_key(registry, batch), options) as held:
        if not held:
            return JobReport(deferred=[cell.key for cell in batch.cells])
        taken = (store.finished_keys() & {c.key for c in batch.cells}) - batch.stored_at_plan
        remaining = tuple(cell for cell in batch.cells if cell.key not in taken)
        report = JobReport(by_other_runs=len(taken))
        if remaining:
            _run_claimed_batch(replace(batch, cells=remaining), options, registry, store, on_cell,
                               report)
        return report


@dataclass
class _Member:
    """A cell of the batch, ready: its context, its prepared view and its fit's seal."""

    cell: Cell
    ctx: Context
    cell_seed: int
    prepared: PreparedAttack
    seal: Seal
    fitted: Any


def _run_claimed_batch(batch: BatchJob, options: RunOptions, registry: Registry, store: Any,
                       on_cell: Callable[[Cell, Any], None] | None, report: JobReport) -> None:
    profile = get_profile(batch.profile)
    limit = options.time_limit if options.time_limit is not None else profile.cell_time_limit
    alone: list[Cell] = []

    def done(cell: Cell, status: str) -> None:
        if on_cell is not None:
            on_cell(cell, status)

    salt = options.salt if batch.seal else None
    splits, raw_seal, members, isolated = None, None, [], None
    with clock() as timed:
        try:
            if batch.seal and (salt is None or commitment(salt) != batch.seal):
                raise PluginContractError("no matching salt")  # the cells' own jobs say so
            with phase("data"):
                splits = load_dataset(registry, batch.dataset, batch.dataset_params, batch.profile,
                                      batch.seed, salt)
            with phase("seal"):
                raw_seal = Seal(raw_inputs(splits))
        except Exception:  # noqa: BLE001 - each cell alone records what went wrong
            alone = list(batch.cells)
        if splits is not None:
            members, isolated, alone = _prepare(batch, options, registry, splits, limit, salt,
                                                store, report, done)
    if splits is not None and raw_seal is not None and members:
        alone += _run_members(batch, members, isolated, options, registry, splits, raw_seal,
                              limit, store, report, done, timed)
    # Cells that cannot join run as their sanitizers' jobs would run them.
    by_fit: dict[PluginConfig, list[Cell]] = {}
    for cell in alone:
        by_fit.setdefault(cell.sanitizer, []).append(cell)
    for sanitizer, cells in by_fit.items():
        job = Job(batch.dataset, batch.dataset_params, batch.task, sanitizer, batch.seed,
                  batch.profile, tuple(cells), batch.seal,
                  frozenset(c.key for c in cells if c.key in batch.stored_at_plan),
                  canaries=cells[0].canaries)
        report.absorb(run_job(job, options, on_cell, store=store))


def _prepare(batch: BatchJob, options: RunOptions, registry: Registry, splits: Any, limit: float,
             salt: str | None, store: Any, report: JobReport, done: Callable[[Cell, str], None]
             ) -> tuple[list[_Member], Isolated | None, list[Cell]]:
    """Each cell's fit (from the cache) and view, and the cells that must run alone."""
    cache_root = Path(options.cache_dir)
    members: list[_Member] = []
    alone: list[Cell] = []
    revision = options.revision_of(dataset_key(registry, batch.dataset, batch.dataset_params, batch.seal))
    shared = SharedModels(cache_root, {"data": dataset_identity(registry, batch.dataset,
                                                                batch.dataset_params, batch.seal, revision),
                                       "seed": batch.seed, "profile": batch.profile})
    shared_seed = derive_seed(batch.seed, "shared")
    isolated = (Isolated(sandbox_for(options.registry_recipe), shared, shared_seed)
                if options.isolation == "process" else None)
    membership_seed = derive_seed(batch.seed, "membership",
                                  dataset_key(registry, batch.dataset, batch.dataset_params,
                                              batch.seal), salt or "")
    budget = limit * len(batch.cells)  # the batch's cells share one call
    canaries = job_canaries(registry, batch, splits.train, salt)
    for cell in batch.cells:
        honest, _ = reference_config(registry, cell.sanitizer)
        path = fitted_path(cache_root, cell.sanitizer.name,
                           fit_key(registry, cell.dataset, cell.dataset_params, cell.task,
                                   cell.sanitizer, cell.seed, cell.profile, cell.seal, revision,
                                   canaries=cell.canaries))
        if honest is not None or not path.exists():
            alone.append(cell)
            continue
        try:
            with phase("cache"):
                fitted = load_fitted(path, splits)
        except CorruptEntry as corrupt:
            discard(corrupt)
            alone.append(cell)
            continue
        cell_seed = derive_seed(cell.seed, "cell", cell.key)
        ctx = Context(device=options.device, profile=get_profile(batch.profile), seed=cell_seed,
                      time_limit=budget, show_progress=options.show_progress, shared_store=shared,
                      shared_seed=shared_seed,
                      label=f"{cell.task.name}/{cell.sanitizer_label} {cell.plugin_label}")
        secret_seed = derive_seed(cell.seed, "withheld", cell.key, salt or "")
        try:
            prepared = prepare_attack(registry, cell, fitted, splits, ctx, secret_seed, None, None,
                                      membership_seed, canaries)
        except Exception:  # noqa: BLE001 - alone, the cell records its own error
            alone.append(cell)
            continue
        if isinstance(prepared, str):
            commit_result(store, registry, report, cell, options.device, "n/a", error=prepared,
                          cell_seed=cell_seed, notes=fitted.notes)
            done(cell, "n/a")
            continue
        if getattr(prepared.view, "oracle", None) is not None or getattr(prepared.view, "handles", None):
            alone.append(cell)  # a sandbox rebuilds an oracle and handles per cell
            continue
        with phase("seal"):
            seal = Seal(sanitized_inputs(fitted))
        members.append(_Member(cell, ctx, cell_seed, prepared, seal, fitted))
    return members, isolated, alone


def _run_members(batch: BatchJob, members: list[_Member], isolated: Isolated | None,
                 options: RunOptions, registry: Registry, splits: Any, raw_seal: Seal,
                 limit: float, store: Any, report: JobReport, done: Callable[[Cell, str], None],
                 setup: PhaseClock) -> list[Cell]:
    """One ``run_batch`` call for the members; returns the cells to run alone instead (all of
    them when the call failed, so that each gets its own outcome)."""
    source = f"attack {batch.cells[0].plugin_label}"
    attack = members[0].prepared.attack
    contexts = [member.ctx for member in members]
    started = time.monotonic()
    outcome: list[Any] | str | None = None
    with clock() as timed:
        contexts[0].seed_everything()
        try:
            with time_limit(limit * len(members), source):
                if isolated is None:
                    with plugin_stage(source, "run"), phase("plugin"):
                        outcome = attack.run_batch([m.prepared.view for m in members], batch.task,
                                                   contexts)
                else:
                    specs = [ContextSpec.of(ctx, isolated.shared_seed) for ctx in contexts]
                    payload = {"views": [m.prepared.kind.lend(m.prepared.view) for m in members],
                               "contexts": specs}
                    with phase("sandbox"):
                        outcome = isolated.sandbox.call(PluginCall(
                            "attack-batch", "attacks", batch.plugin.name, dict(batch.plugin.kwargs),
                            batch.task, specs[0], source, payload), isolated.shared)
        except NotApplicable as reason:
            outcome = f"{source}: {reason}"
        except Exception:  # noqa: BLE001 - run alone, each cell gets its own outcome
            outcome = None
        with phase("seal"):
            tampered = raw_seal.changed(raw_inputs(splits))
            for member in members:
                tampered += member.seal.changed(sanitized_inputs(member.fitted))
    wall = (time.monotonic() - started) / len(members)
    if tampered:
        forget_datasets()
        message = describe_tampering(source, sorted(set(tampered)), "its run")
        for member in members:
            commit_result(store, registry, report, member.cell, options.device, "error",
                          error=message, wall=wall, cell_seed=member.cell_seed, notes=member.fitted.notes)
            done(member.cell, "error")
        return []
    if outcome is None or (not isinstance(outcome, str) and (
            not isinstance(outcome, list) or len(outcome) != len(members))):
        return [member.cell for member in members]
    truth = withheld_truth(batch.task, splits)
    batch_note = {"batch": {"cells": len(members), "wall_s": round(wall * len(members), 3)}}
    for index, member in enumerate(members):
        status, scored, error = "ok", None, None
        if isinstance(outcome, str):
            status, error = "n/a", outcome
        else:
            try:
                scored = score_attack(member.prepared, outcome[index], truth)
            except Exception as exc:  # noqa: BLE001 - this cell's result is at fault
                status, error = "error", error_text(exc)
        commit_result(store, registry, report, member.cell, options.device, status, scored, error,
                      wall, member.cell_seed, member.fitted.notes, batch_note)
        done(member.cell, status)
    # Each member's row: an equal share of the batch's setup (data, fits) and of its call.
    share: dict[str, float] = {}
    for totals in (setup.totals, timed.totals):
        for name, seconds in totals.items():
            share[name] = share.get(name, 0.0) + seconds / len(members)
    for member in members:
        report.profile.append(ProfileRow(batch.label, member.cell.sanitizer_label,
                                         member.cell.plugin_label, "attack",
                                         (setup.wall + timed.wall) / len(members), dict(share)))
    return []
