"""One job: fit (or load) one sanitizer configuration, then run each of its pending cells.

Every failure is stored against the cells it costs and the job goes on: a cell that raises,
returns NaN or the wrong shape, or passes its time limit is ``error``; one whose requirements are
not met is ``n/a``. Each cell is committed to the store the moment it finishes.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .api import (HONEST_REFERENCE, RELEASE, Context, MetricValue, MetricView, NotApplicable,
                  PluginContractError, get_profile)
from .cache import (CorruptEntry, FittedSanitizer, SharedModels, discard, file_lock, fitted_path,
                    forget_datasets, load_dataset, load_fitted, released_fit, save_fitted)
from .data import DatasetSplits, ImageSet, copy_image_set
from .honest_reference import reference_config
from .release import check_release, mode_problem, sanitizer_mode
from .integrity import Seal, describe_tampering
from .kinds import ViewInputs, attack_kind, resolve_requirements
from .pixels import as_stored
from .planning import Cell, Job, RunOptions, dataset_identity, dataset_key, derive_seed, fit_key
from .profiling import ProfileRow, clock, phase
from .provenance import cell_provenance
from .guards import (FitOutput, check_records, check_sanitized, error_text, fit_sanitizer, make_plugin,
                     plugin_stage, time_limit)
from .registry import Registry, registry_for
from .sandbox import ContextSpec, PluginCall, Sandbox, sandbox_for
from .scoring import Scored, WithheldTruth
from .sealing import commitment
from .store import ResultStore

# The name under which the leakage floor's out-of-fold predictions are stored per (task, seed).
FLOOR_FACT = "leakage_floor"


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


def commit_result(store: Any, registry: Registry, report: JobReport, cell: Cell, device: str,
                  status: str, scored: Scored | None = None, error: str | None = None,
                  wall: float | None = None, cell_seed: int = 0, notes: tuple[str, ...] = (),
                  extra: dict[str, Any] | None = None) -> None:
    """Commit one finished cell with its provenance and count it in ``report``. ``extra``: more
    provenance (a batched cell's batch)."""
    try:
        provenance = cell_provenance(registry, cell, device, cell_seed)
    except Exception as exc:  # noqa: BLE001 - a plugin gone from the registry must not
        # turn the error handling itself into an exception
        provenance = {"device": device, "seed": cell.seed, "cell_seed": cell_seed,
                      "profile": cell.profile, "data_params": dict(cell.dataset_params),
                      "unavailable": error_text(exc)}
    if notes:
        provenance["notes"] = list(notes)
    provenance.update(extra or {})
    with phase("store"):
        store.commit_cell(cell.record(), status=status, values=scored.values if scored else (),
                          items=scored.items if scored and scored.items else None, error=error,
                          wall_time=wall, device=device, provenance=provenance)
    report.statuses[cell.key] = status
    if error:
        report.errors[cell.key] = error


def withheld_truth(task: Any, splits: DatasetSplits) -> WithheldTruth:
    """What scoring needs and no plugin sees: the test split's labels and the train prior."""
    return WithheldTruth(task, splits.test,
                         {a: splits.train.class_frequencies(a) for a in splits.train.labels})


def raw_inputs(splits: DatasetSplits) -> list[tuple[str, Any]]:
    return [(f"raw {name}", split) for name, split in splits.items()]


def sanitized_inputs(fitted: FittedSanitizer) -> list[tuple[str, Any]]:
    return [("sanitized attack", fitted.attack), ("sanitized test", fitted.test),
            *((f"{split} records", records) for split, records in fitted.records.items())]


@dataclass
class Isolated:
    """Plugin calls of one job in its sandbox (``--isolation process``)."""

    sandbox: Sandbox
    shared: SharedModels
    shared_seed: int

    def call(self, stage: str, kind: str, config: Any, task: Any, ctx: Context, source: str,
             payload: dict[str, Any]) -> Any:
        return self.sandbox.call(PluginCall(stage, kind, config.name, dict(config.kwargs), task,
                                            ContextSpec.of(ctx, self.shared_seed), source, payload),
                                 self.shared)


def ensure_task_facts(store: ResultStore, registry: Registry, job: Job, splits: DatasetSplits) -> None:
    """Store, once per (data, task, seed, profile), what the kept utility attributes alone reveal
    about the sensitive one: out-of-fold predictions from the raw train split's labels, scored
    later exactly like an attack (the board's leakage floor)."""
    import numpy as np

    from .boards.statistics import leakage_floor

    key = dataset_key(registry, job.dataset, job.dataset_params, job.seal)
    for fact in store.facts(dataset=job.dataset, task=job.task.name, profile=job.profile):
        if fact.data_key == key and fact.seed == job.seed and fact.name == FLOOR_FACT:
            return
    train, task = splits.train, job.task
    sensitive_classes = train.num_classes(task.sensitive)
    floor = leakage_floor(
        {a: train.labels[a].numpy() for a in task.utility},
        {a: train.num_classes(a) for a in task.utility},
        train.labels[task.sensitive].numpy(), sensitive_classes,
        seed=derive_seed(job.seed, "floor", task.key) % 2**32)
    if floor is None:  # no kept attributes: they reveal nothing
        truth = train.labels[task.sensitive].numpy()
        arrays = {"truth": truth, "predicted": np.full_like(truth, int(np.bincount(truth).argmax()))}
    else:
        arrays = {"truth": floor.truth, "predicted": floor.predicted}
    arrays["num_classes"] = np.array([sensitive_classes])
    store.put_fact(job.dataset, key, task.name, job.seed, job.profile, FLOOR_FACT, arrays)


class Heartbeat:
    """Renews a job's lease in the store while the job runs, from a background thread."""

    def __init__(self, store: ResultStore, key: str, owner: str, ttl: float) -> None:
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, args=(store, key, owner, ttl),
                                       daemon=True, name="ppbench-lease")
        self.thread.start()

    def _beat(self, store: ResultStore, key: str, owner: str, ttl: float) -> None:
        while not self.stopped.wait(ttl / 3):
            try:
                store.renew(key, owner, ttl)
            except Exception:  # noqa: BLE001 - a missed beat only risks duplicate work
                pass

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


def run_job(job: Job, options: RunOptions, on_cell: Callable[[Cell, str], None] | None = None,
            *, store: Any = None) -> JobReport:
    """Fit (or load) one sanitizer configuration and run its pending cells, unless another run
    on the same store holds the job's lease: its cells are then reported as deferred. Never
    raises for a plugin's fault: every failure is stored against the cells it costs.

    ``store``: the store the job reads and writes (default: the one at ``options.store``); a
    detached job's :class:`~ppbench.detached.RecordingStore`."""
    registry = registry_for(options.registry_recipe)
    store = ResultStore(options.store) if store is None else store
    key = fit_key(registry, job.dataset, job.dataset_params, job.task, job.sanitizer, job.seed,
                  job.profile, job.seal)
    lease = "job:" + key
    if not store.claim(lease, options.run_id, options.lease_ttl):
        return JobReport(deferred=[cell.key for cell in job.cells])
    heartbeat = Heartbeat(store, lease, options.run_id, options.lease_ttl)
    try:
        # Another run may have finished this job between this run's planning and its claim.
        taken = (store.finished_keys() & {cell.key for cell in job.cells}) - job.stored_at_plan
        remaining = tuple(cell for cell in job.cells if cell.key not in taken)
        if not remaining and not job.batched:
            return JobReport(by_other_runs=len(taken))
        with clock() as timed:
            report = _run_claimed_job(replace(job, cells=remaining), key, options, registry, store,
                                      on_cell)
        in_cells = timed.totals.pop("cells", 0.0)
        report.profile.insert(0, ProfileRow(job.label, job.sanitizer_label, "", "job",
                                            timed.wall - in_cells, timed.totals))
        report.by_other_runs += len(taken)
        return report
    finally:
        heartbeat.stop()
        store.release(lease, options.run_id)


def _run_claimed_job(job: Job, key: str, options: RunOptions, registry: Registry,
                     store: Any, on_cell: Callable[[Cell, str], None] | None) -> JobReport:
    report = JobReport()
    profile = get_profile(job.profile)
    limit = options.time_limit if options.time_limit is not None else profile.cell_time_limit
    device = options.device
    dataset_spec = registry.dataset(job.dataset)
    cache_root = Path(options.cache_dir)
    # Raw-data models depend on the data and the seed, not on the task: tasks share them.
    shared = SharedModels(cache_root, {"data": dataset_identity(registry, job.dataset, job.dataset_params,
                                                                job.seal),
                                       "seed": job.seed, "profile": job.profile})

    fitted: FittedSanitizer | None = None

    def finish(cell: Cell, status: str, scored: Scored | None = None, error: str | None = None,
               wall: float | None = None, cell_seed: int = 0) -> None:
        commit_result(store, registry, report, cell, device, status, scored, error, wall,
                      cell_seed, fitted.notes if fitted is not None else ())
        if on_cell is not None:
            on_cell(cell, status)

    def context(seed: int, label: str) -> Context:
        return Context(device=device, profile=profile, seed=seed, time_limit=limit,
                       show_progress=options.show_progress, shared_store=shared,
                       shared_seed=derive_seed(job.seed, "shared"), label=label)

    isolated = (Isolated(sandbox_for(options.registry_recipe), shared, derive_seed(job.seed, "shared"))
                if options.isolation == "process" else None)

    sanitizer_cls = registry.sanitizer(job.sanitizer.name)
    if dataset_spec.kind not in sanitizer_cls.inputs:
        for cell in job.cells:
            finish(cell, "n/a", error=f"sanitizer {job.sanitizer.name!r} does not apply to "
                                      f"{dataset_spec.kind} data ({job.dataset})")
        return report

    salt = None
    if job.seal:
        salt = options.salt
        if salt is None or commitment(salt) != job.seal:
            for cell in job.cells:
                finish(cell, "error", error=f"sealed run {job.seal[:12]}…: this process has no salt "
                                            "matching the commitment, so its data cannot be drawn")
            return report
    try:
        with phase("data"):
            splits = load_dataset(registry, job.dataset, job.dataset_params, job.profile, job.seed,
                                  salt)
        with phase("facts"):
            ensure_task_facts(store, registry, job, splits)
    except Exception as exc:  # noqa: BLE001 - a broken data set plugin costs its cells only
        message = f"data set {job.dataset!r} failed to load: {error_text(exc)}"
        for cell in job.cells:
            finish(cell, "error", error=message)
        return report

    # Plugins borrow these tensors; the seal tells whether one of them wrote into them.
    with phase("seal"):
        raw_seal = Seal(raw_inputs(splits))
    sanitizer_source = f"sanitizer {job.sanitizer_label}"
    fit_error = None
    path = fitted_path(cache_root, job.sanitizer.name, key)
    label = job.label

    def reload() -> None:
        """Clean inputs after a plugin wrote into them: the data set from its loader, the fit
        from its (verified) cache entry."""
        nonlocal splits, fitted, truth
        forget_datasets()
        splits = load_dataset(registry, job.dataset, job.dataset_params, job.profile, job.seed, salt)
        truth = withheld_truth(job.task, splits)
        if fitted is not None:
            fitted = load_fitted(path, splits)

    # A vendor's build of a published model is fitted with the seeds of that model's
    # configuration, so the two differ by what the vendor adds (ppbench.honest_reference).
    honest, honest_problem = reference_config(registry, job.sanitizer)
    honest_key = (fit_key(registry, job.dataset, job.dataset_params, job.task, honest, job.seed,
                          job.profile, job.seal) if honest is not None else None)
    fit_seed = derive_seed(job.seed, "fit", honest_key or key)

    def obtain_fit(config_job: Job, cls: type, fit_path: Path, source: str) -> FittedSanitizer:
        """The verified cached fit at ``fit_path``, else a fresh one (then cached)."""
        with file_lock(fit_path):
            if fit_path.exists():
                try:
                    with phase("cache"):
                        found = load_fitted(fit_path, splits)
                    report.fits_reused += 1
                    return found
                except CorruptEntry as corrupt:
                    discard(corrupt)
            made = _fit(config_job, cls, splits, context(fit_seed, f"{config_job.label} fit"), limit,
                        isolated, source)
            with phase("seal"):
                tampered = raw_seal.changed(raw_inputs(splits))
            if tampered:
                # Never cache a fit made on, or leaving behind, altered data.
                forget_datasets()
                raise PluginContractError(describe_tampering(source, tampered, "fit or transform"))
            try:
                with phase("cache"):
                    save_fitted(fit_path, made)
            except Exception as exc:  # noqa: BLE001
                raise PluginContractError(f"{source}: its fitted state cannot be saved with "
                                          f"torch.save ({exc}); keep it picklable") from None
            report.fits_computed += 1
            for note in made.notes:
                print(f"ppbench: note: {note}", file=sys.stderr)
            return made

    try:
        fitted = obtain_fit(job, sanitizer_cls, path, sanitizer_source)
    except Exception as exc:  # noqa: BLE001
        fitted, fit_error = None, error_text(exc)
        for cell in job.batched:  # no batch job will find this fit
            finish(cell, "error", error=fit_error)

    honest_state: dict[str, Any] = {}

    def honest_fit() -> FittedSanitizer:
        """The honest reference's fit, obtained once per job (and verified again after a cell
        that altered it)."""
        if "error" in honest_state:
            raise PluginContractError(honest_state["error"])
        if "fit" not in honest_state:
            source = f"sanitizer {honest.label} (the honest reference of {job.sanitizer.label})"
            try:
                honest_job = replace(job, sanitizer=honest)
                honest_state["fit"] = obtain_fit(
                    honest_job, registry.sanitizer(honest.name),
                    fitted_path(cache_root, honest.name, honest_key), source)
                honest_state["seal"] = Seal(sanitized_inputs(honest_state["fit"]))
            except Exception as exc:  # noqa: BLE001 - it costs the cells that need it
                honest_state["error"] = f"{source} could not be fitted: {error_text(exc)}"
                raise PluginContractError(honest_state["error"]) from None
        return honest_state["fit"]

    def honest_tampering() -> list[str]:
        if "fit" not in honest_state:
            return []
        changed = honest_state["seal"].changed(sanitized_inputs(honest_state["fit"]))
        if changed:
            del honest_state["fit"]  # reloaded from its verified cache entry when next needed
        return [f"honest reference's {name}" for name in changed]

    with phase("seal"):
        sanitized_seal = Seal(sanitized_inputs(fitted)) if fitted is not None else None
    # One candidate set per (data, seed) for every membership cell (ppbench.membership).
    membership_seed = derive_seed(job.seed, "membership",
                                  dataset_key(registry, job.dataset, job.dataset_params, job.seal),
                                  salt or "")
    truth = withheld_truth(job.task, splits)
    def score_cell(cell: Cell) -> None:
        nonlocal fit_error
        if fit_error is not None:
            finish(cell, "error", error=fit_error)
            return
        cell_seed = derive_seed(cell.seed, "cell", cell.key)
        started = time.monotonic()
        source = f"{cell.kind} {cell.plugin_label}"
        try:
            ctx = context(cell_seed, f"{label} {cell.plugin_label}")
            ctx.seed_everything()
            with time_limit(limit, source):
                if cell.kind == "attack":
                    # Not the context's seed, and in a sealed run dependent on the salt.
                    secret_seed = derive_seed(cell.seed, "withheld", cell.key, salt or "")
                    outcome = _run_attack(registry, cell, fitted, splits, truth, ctx, isolated,
                                          secret_seed, honest_fit if honest is not None else None,
                                          honest_problem, membership_seed)
                else:
                    outcome = _run_metric(registry, cell, fitted, splits, ctx, isolated)
            with phase("seal"):
                tampered = (raw_seal.changed(raw_inputs(splits))
                            + sanitized_seal.changed(sanitized_inputs(fitted)) + honest_tampering())
            if tampered:
                try:
                    reload()
                except Exception as exc:  # noqa: BLE001 - the remaining cells cannot run
                    fit_error = (f"clean inputs could not be reloaded after {source} altered "
                                 f"them: {error_text(exc)}")
                raise PluginContractError(describe_tampering(source, tampered, "its run"))
            wall = time.monotonic() - started
            if isinstance(outcome, str):
                finish(cell, "n/a", error=outcome, wall=wall, cell_seed=cell_seed)
            else:
                finish(cell, "ok", scored=outcome, wall=wall, cell_seed=cell_seed)
        except Exception as exc:  # noqa: BLE001 - the plugin's failure costs this cell only
            finish(cell, "error", error=error_text(exc), wall=time.monotonic() - started,
                   cell_seed=cell_seed)

    for cell in job.cells:
        with phase("cells"), clock() as timed:
            score_cell(cell)
        report.profile.append(ProfileRow(label, cell.sanitizer_label, cell.plugin_label, cell.kind,
                                         timed.wall, timed.totals))
    report.shared_built = shared.built
    return report


def _fit(job: Job, sanitizer_cls: type, splits: DatasetSplits, ctx: Context,
         limit: float | None, isolated: Isolated | None = None, source: str | None = None) -> FittedSanitizer:
    source = source or f"sanitizer {job.sanitizer_label}"
    if isolated is not None:
        # The child gets a copy of the train split and the attack and test images, no labels.
        with phase("sandbox"):
            out = isolated.call("fit", "sanitizers", job.sanitizer, job.task, ctx, source, {
                "train": copy_image_set(splits.train),
                "images": {"attack": splits.attack.images.clone(),
                           "test": splits.test.images.clone()}})
        if not isinstance(out, FitOutput):
            raise PluginContractError(f"{source}: its sandbox returned {type(out).__name__}")
        # Notes are the child's words: printable characters only, and few of them.
        out.notes = ["".join(ch for ch in str(note) if ch.isprintable())[:300]
                     for note in out.notes or ()][:4]
        # The child's checks ran beside the plugin's code, which could have replaced them.
        if sanitizer_mode(sanitizer_cls) == RELEASE:
            released = check_release(out.release, job.task, splits.train.attributes,
                                     splits.train.shape, source)
            return released_fit(out.sanitizer, _stored_release(released), splits, tuple(out.notes))
        for name, split in (("attack", splits.attack), ("test", splits.test)):
            out.images[name] = check_sanitized(out.images.get(name), split.images,
                                               split.images.dim() == 4, source, out.notes)
            out.records[name] = check_records(out.records.get(name, {}), len(split), source)
    else:
        with time_limit(limit, f"{source} fit"):
            out = fit_sanitizer(sanitizer_cls, job.sanitizer.kwargs, splits.train,
                                {"attack": splits.attack.images, "test": splits.test.images},
                                job.task, ctx, source)
    # Cells see what the cache will give back, so a fresh fit and a cached one score alike.
    if out.release is not None:
        return released_fit(out.sanitizer, _stored_release(out.release), splits, tuple(out.notes))
    return FittedSanitizer(out.sanitizer, splits.attack.with_images(as_stored(out.images["attack"])),
                           splits.test.with_images(as_stored(out.images["test"])), tuple(out.notes),
                           {name: out.records.get(name, {}) for name in ("attack", "test")})


def _stored_release(release: ImageSet) -> ImageSet:
    return ImageSet(as_stored(release.images), dict(release.labels), dict(release.attributes))


@dataclass
class PreparedAttack:
    """An attack cell ready to run: the configured attack, its scoring kind, the view it is
    granted and what the harness withholds for scoring."""

    attack: Any
    kind: Any
    view: Any
    withheld: Any
    source: str


def prepare_attack(registry: Registry, cell: Cell, fitted: FittedSanitizer, splits: DatasetSplits,
                   ctx: Context, secret_seed: int = 0,
                   honest_fit: Callable[[], FittedSanitizer] | None = None,
                   honest_problem: str | None = None,
                   membership_seed: int = 0) -> PreparedAttack | str:
    """The attack's view for this cell, or why the cell is ``n/a``."""
    attack_cls = registry.attack(cell.plugin.name)
    kind = attack_kind(attack_cls)
    sanitizer = fitted.sanitizer
    source = f"attack {cell.plugin_label}"
    # The configured instance first: its requirements may depend on its parameters (an attack
    # that sets self.requires in __init__). Constructors only store configuration, so building
    # one here, even when the run happens in a sandbox, costs nothing.
    attack = make_plugin(attack_cls, cell.plugin.kwargs, source)
    mode = sanitizer_mode(sanitizer)
    # Membership attacks ask who was in the fit set, a question for either mode.
    wrong_mode = None if kind.name == "membership" else mode_problem(
        attack, source, cell.sanitizer.name, mode)
    if wrong_mode is not None:
        return wrong_mode
    resolution = resolve_requirements(attack.requires, has_aux=splits.aux is not None,
                                      capabilities=type(sanitizer).capabilities,
                                      attack=cell.plugin_label, sanitizer=cell.sanitizer.name,
                                      dataset=cell.dataset, has_reference=honest_fit is not None,
                                      reference_problem=honest_problem, mode=mode)
    if resolution.unmet is not None:
        return resolution.unmet
    reference = honest_fit() if HONEST_REFERENCE in resolution.granted and honest_fit else None
    with phase("view"):
        view, withheld = kind.build_view(ViewInputs(
            attack, sanitizer, splits, fitted.attack, fitted.test, ctx, resolution.granted,
            secret_seed, cell.task, reference, fitted.release, membership_seed))
    return PreparedAttack(attack, kind, view, withheld, source)


def score_attack(prepared: PreparedAttack, result: Any, truth: WithheldTruth) -> Scored:
    """Check an attack's result against its kind's contract and score it."""
    if not isinstance(result, prepared.kind.result_type):
        raise PluginContractError(f"{prepared.source}: run() must return a "
                                  f"{prepared.kind.result_type.__name__}, got {type(result).__name__}")
    with phase("scoring"):
        return prepared.kind.score(result, truth, prepared.source, prepared.withheld)


def _run_attack(registry: Registry, cell: Cell, fitted: FittedSanitizer, splits: DatasetSplits,
                truth: WithheldTruth, ctx: Context, isolated: Isolated | None = None,
                secret_seed: int = 0, honest_fit: Callable[[], FittedSanitizer] | None = None,
                honest_problem: str | None = None, membership_seed: int = 0) -> Scored | str:
    prepared = prepare_attack(registry, cell, fitted, splits, ctx, secret_seed, honest_fit,
                              honest_problem, membership_seed)
    if isinstance(prepared, str):
        return prepared
    view, source = prepared.view, prepared.source
    if isolated is None:
        with plugin_stage(source, "run"), phase("plugin"):
            try:
                result = prepared.attack.run(view, cell.task, ctx)
            except NotApplicable as reason:
                return f"{source}: {reason}"
    else:
        # The sandbox gets copies of what the view grants; it rebuilds the oracle and the handles
        # from the fitted sanitizer, which travels only when one of them is granted.
        oracle, handles = getattr(view, "oracle", None), getattr(view, "handles", None) or {}
        payload: dict[str, Any] = {"view": prepared.kind.lend(view), "oracle": oracle is not None,
                                   "handles": sorted(handles)}
        if payload["oracle"] or payload["handles"]:
            payload["sanitizer"] = fitted.sanitizer
        try:
            with phase("sandbox"):
                result = isolated.call("attack", "attacks", cell.plugin, cell.task, ctx, source,
                                       payload)
        except NotApplicable as reason:
            return f"{source}: {reason}"
    return score_attack(prepared, result, truth)


def metric_view(splits: DatasetSplits, fitted: FittedSanitizer, task: Any, copy: bool) -> MetricView:
    """A metric's view. Its test splits carry the kept attributes' labels, never the sensitive
    one: a utility metric has no use for it, and a metric must not be a way around the attacks'
    threat model (it could leave it in a shared model)."""
    def test_split(split: Any) -> Any:
        return ImageSet(split.images.clone() if copy else split.images,
                        {name: (values.clone() if copy else values)
                         for name, values in split.labels.items() if name != task.sensitive},
                        dict(split.attributes))

    lend = copy_image_set if copy else (lambda split: split)
    records = {split: {name: (values.clone() if copy else values) for name, values in named.items()}
               for split, named in fitted.records.items()}
    return MetricView(raw_train=lend(splits.train), raw_attack=lend(splits.attack),
                      raw_test=test_split(splits.test), sanitized_attack=lend(fitted.attack),
                      sanitized_test=test_split(fitted.test), records=records,
                      release=lend(fitted.release) if fitted.release is not None else None)


def _run_metric(registry: Registry, cell: Cell, fitted: FittedSanitizer, splits: DatasetSplits,
                ctx: Context, isolated: Isolated | None = None) -> Scored | str:
    source = f"metric {cell.plugin_label}"
    wrong_mode = mode_problem(registry.metric(cell.plugin.name), source, cell.sanitizer.name,
                              sanitizer_mode(fitted.sanitizer))
    if wrong_mode is not None:
        return wrong_mode
    needed = set(getattr(registry.metric(cell.plugin.name), "requires_records", ()))
    missing = sorted(needed - set(fitted.records.get("test", {})))
    if missing:
        return (f"sanitizer {cell.sanitizer_label} records no {', '.join(missing)} per item "
                f"(see Sanitized), which {source} reads")
    if isolated is not None:
        try:
            with phase("view"):
                view = metric_view(splits, fitted, cell.task, copy=True)
            with phase("sandbox"):
                values = isolated.call("metric", "metrics", cell.plugin, cell.task, ctx, source,
                                       {"view": view})
        except NotApplicable as reason:
            return f"{source}: {reason}"
    else:
        metric = make_plugin(registry.metric(cell.plugin.name), cell.plugin.kwargs, source)
        with plugin_stage(source, "run"), phase("plugin"):
            try:
                values = metric.run(metric_view(splits, fitted, cell.task, copy=False), cell.task, ctx)
            except NotApplicable as reason:
                return f"{source}: {reason}"
    if not isinstance(values, list) or not values or not all(isinstance(v, MetricValue) for v in values):
        raise PluginContractError(f"{source}: run() must return a non-empty list of MetricValue")
    for v in values:
        if not math.isfinite(float(v.value)):
            raise PluginContractError(f"{source}: value {v.name!r} is not finite ({v.value})")
    primaries = [v for v in values if v.primary]
    if len(primaries) > 1:
        raise PluginContractError(f"{source}: {len(primaries)} values are marked primary; mark one")
    if not primaries and len(values) == 1:
        values = [MetricValue(**{**values[0].__dict__, "primary": True})]
    return Scored(values)
