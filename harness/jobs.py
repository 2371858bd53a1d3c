"""One job: fit (or load) one sanitizer configuration, then run each of its pending cells.

Every failure is stored against the cells it costs and the job goes on: a cell that raises,
returns NaN or the wrong shape, or passes its time limit is ``error``; one whose requirements are
not met is ``n/a``. Each cell is committed to the store the moment it finishes.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    import torch

from .api import RELEASE, Context, PluginContractError, get_profile
from .cache import (CorruptEntry, FittedSanitizer, SharedModels, discard, file_lock, fitted_path,
                    forget_datasets, load_dataset, load_fitted, released_fit, save_fitted)
from .cells import (Isolated, commit_result, raw_inputs, run_attack, run_metric,
                    sanitized_inputs, withheld_truth)
from .data import DatasetSplits, ImageSet, copy_image_set
from .guards import (FitOutput, check_records, check_sanitized, error_text, fit_sanitizer,
                     time_limit)
from .honest_reference import reference_config
from .integrity import Seal, describe_tampering
from .membership import Canaries, fit_splits, make_canaries
from .pixels import as_stored
from .verification import HOLDINGS, SANITIZED
from .planning import Cell, Job, RunOptions, configured_attack, dataset_key, dataset_identity, derive_seed, fit_key
from .profiling import ProfileRow, clock, phase
from .registry import Registry, registry_for
from .release import check_release, sanitizer_mode
from .reports import JobReport, RunReport
from .sandbox import sandbox_for
from .scoring import Scored
from .sealing import commitment
from .store import ResultStore

__all__ = ["FLOOR_FACT", "JobReport", "RunReport", "ensure_task_facts", "leased", "run_job"]

# The name under which the leakage floor's out-of-fold predictions are stored per (task, seed).
FLOOR_FACT = "leakage_floor"


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


def job_canaries(registry: Registry, job: Any, train: ImageSet, salt: str | None) -> Canaries | None:
    """The membership canaries of ``job``'s (data, seed) (``job.canaries`` of each kind;
    ppbench.membership), drawn from a seed no plugin gets; None without canaries."""
    count = job.canaries if isinstance(job, Job) else job.cells[0].canaries  # a batch job's
    if not count:
        return None
    seed = derive_seed(job.seed, "canaries",
                       dataset_key(registry, job.dataset, job.dataset_params, job.seal), salt or "")
    return make_canaries(train, count, seed)


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


@contextlib.contextmanager
def leased(store: Any, key: str, options: RunOptions) -> Iterator[bool]:
    """Hold the store lease ``key`` for the block, renewed by a heartbeat; the block gets False
    (and nothing is held) when another run on the store holds it."""
    if not store.claim(key, options.run_id, options.lease_ttl):
        yield False
        return
    heartbeat = Heartbeat(store, key, options.run_id, options.lease_ttl)
    try:
        yield True
    finally:
        heartbeat.stop()
        store.release(key, options.run_id)


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
                  job.profile, job.seal, canaries=job.canaries)
    with leased(store, "job:" + key, options) as held:
        if not held:
            return JobReport(deferred=[cell.key for cell in job.cells])
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


def _run_claimed_job(job: Job, key: str, options: RunOptions, registry: Registry,
                     store: Any, on_cell: Callable[[Cell, str], None] | None) -> JobReport:
    report = JobReport()
    profile = get_profile(job.profile)
    limit = options.time_limit if options.time_limit is not None else profile.cell_time_limit
    device = options.device
    dataset_spec = registry.dataset(job.dataset)
    cache_root = Path(options.cache_dir)
    # Local files' revision keys what is cached from them (fits, shared models), never a seed.
    revision = options.revision_of(dataset_key(registry, job.dataset, job.dataset_params, job.seal))
    # Raw-data models depend on the data and the seed, not on the task: tasks share them.
    shared = SharedModels(cache_root, {"data": dataset_identity(registry, job.dataset, job.dataset_params,
                                                                job.seal, revision),
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
            canaries = job_canaries(registry, job, splits.train, salt)
    except Exception as exc:  # noqa: BLE001 - a broken data set plugin costs its cells only
        message = f"data set {job.dataset!r} failed to load: {error_text(exc)}"
        for cell in job.cells:
            finish(cell, "error", error=message)
        return report

    # Plugins borrow these tensors; the seal tells whether one of them wrote into them.
    with phase("seal"):
        raw_seal = Seal(raw_inputs(splits))
    # The other identities are sanitized (and cached) only when an attack retrains on them: they
    # are many images, and no other attack reads them sanitized.
    sanitize_others = splits.other_identities is not None and _retrains_on_others(registry, job)
    fit_data = splits if sanitize_others else replace(splits, other_identities=None)
    sanitizer_source = f"sanitizer {job.sanitizer_label}"
    fit_error = None
    path = fitted_path(cache_root, job.sanitizer.name, fit_key(
        registry, job.dataset, job.dataset_params, job.task, job.sanitizer, job.seed, job.profile,
        job.seal, revision, canaries=job.canaries) if revision else key)
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
                          job.profile, job.seal, canaries=job.canaries) if honest is not None else None)
    fit_seed = derive_seed(job.seed, "fit", honest_key or key)

    def obtain_fit(config_job: Job, cls: type, fit_path: Path, source: str) -> FittedSanitizer:
        """The verified cached fit at ``fit_path``, else a fresh one (then cached)."""
        with file_lock(fit_path):
            if fit_path.exists():
                try:
                    with phase("cache"):
                        found = load_fitted(fit_path, splits)
                    if not (sanitize_others and found.other_identities is None):
                        report.fits_reused += 1
                        return found
                    # Cached by a run that did not sanitize the other identities: fit again.
                except CorruptEntry as corrupt:
                    discard(corrupt)
            # The fit sees the train split with the canary members shuffled in, if any.
            made = _fit(config_job, cls, fit_splits(fit_data, canaries),
                        context(fit_seed, f"{config_job.label} fit"), limit, isolated, source)
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
                    fitted_path(cache_root, honest.name, fit_key(
                        registry, job.dataset, job.dataset_params, job.task, honest, job.seed,
                        job.profile, job.seal, revision, canaries=job.canaries)), source)
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
                    outcome = run_attack(registry, cell, fitted, splits, truth, ctx, isolated,
                                          secret_seed, honest_fit if honest is not None else None,
                                          honest_problem, membership_seed, canaries)
                else:
                    outcome = run_metric(registry, cell, fitted, splits, ctx, isolated)
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
                "images": {name: images.clone() for name, images in _to_sanitize(splits).items()}})
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
        for name, images in _to_sanitize(splits).items():
            out.images[name] = check_sanitized(out.images.get(name), images,
                                               images.dim() == 4, source, out.notes)
            out.records[name] = check_records(out.records.get(name, {}), len(images), source)
    else:
        with time_limit(limit, f"{source} fit"):
            out = fit_sanitizer(sanitizer_cls, job.sanitizer.kwargs, splits.train,
                                _to_sanitize(splits), job.task, ctx, source)
    # Cells see what the cache will give back, so a fresh fit and a cached one score alike.
    if out.release is not None:
        return released_fit(out.sanitizer, _stored_release(out.release), splits, tuple(out.notes))
    others = splits.other_identities
    return FittedSanitizer(out.sanitizer, splits.attack.with_images(as_stored(out.images["attack"])),
                           splits.test.with_images(as_stored(out.images["test"])), tuple(out.notes),
                           {name: out.records.get(name, {}) for name in ("attack", "test")},
                           other_identities=None if others is None else others.with_images(
                               as_stored(out.images[OTHER_IDENTITIES])))


OTHER_IDENTITIES = "other_identities"


def _retrains_on_others(registry: Any, job: Job) -> bool:
    """Whether a cell of the job holds the other identities sanitized (a semi-informed
    recognizer)."""
    for cell in (*job.cells, *job.batched):
        if cell.kind != "attack":
            continue
        threat_model = getattr(configured_attack(registry, cell.plugin), "threat_model", "")
        if HOLDINGS.get(threat_model, ("", ""))[0] == SANITIZED:
            return True
    return False


def _to_sanitize(splits: DatasetSplits) -> dict[str, "torch.Tensor"]:
    """The images a fitted sanitizer transforms: the attack and test splits, and the other
    identities of open-set re-identification when the data set has them."""
    images = {"attack": splits.attack.images, "test": splits.test.images}
    if splits.other_identities is not None:
        images[OTHER_IDENTITIES] = splits.other_identities.images
    return images


def _stored_release(release: ImageSet) -> ImageSet:
    return ImageSet(as_stored(release.images), dict(release.labels), dict(release.attributes))


