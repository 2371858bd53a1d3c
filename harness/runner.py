"""Plans the matrix of cells, runs them, and owns caching and resumption.

The unit of work is a *job*: one (data set, task, sanitizer configuration, seed) with the cells of
that sanitizer that are not in the store yet. A job fits its sanitizer once (or loads the fitted
sanitizer and its sanitized splits from the on-disk cache), then runs each pending attack and
metric on them and commits each cell to the store the moment it finishes. A cell that raises,
returns NaN or the wrong shape, or passes its time limit is stored as ``error``; one whose
requirements are not met is stored as ``n/a``; the run goes on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import math
import os
import platform
import signal
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .api import (AUX, ORACLE, RAW_TRAIN, SANITIZER_CAPABILITIES, AttackResult, AttackView,
                  CellTimeout, Context, MetricValue, MetricView, PluginContractError, Task,
                  get_profile)
from .data import DatasetSplits, ImageSet, apply_batched, validate_splits
from .registry import Registry, get_registry
from .scoring import score_attribute_attack
from .spec import BenchmarkSpec, PluginConfig, SpecError, canonical_json
from .store import CellRecord, ResultStore

DEFAULT_STORE = "results.db"
DEFAULT_CACHE = ".ppbench-cache"


def derive_seed(*parts: Any) -> int:
    """A 60-bit seed from a hash of its parts (benchopt style): stable across runs and machines."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()
    return int(digest[:15], 16)


def resolve_device(device: str) -> str:
    """``auto`` picks CUDA when present, else the CPU; anything else is checked and passed on."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError(f"--device {device}: CUDA is not available on this machine")
    torch.device(device)  # raises on a malformed name
    return device


# --- planning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    dataset: str
    dataset_params: tuple[tuple[str, Any], ...]
    task: Task
    sanitizer: PluginConfig
    kind: str  # 'attack' or 'metric'
    plugin: PluginConfig
    seed: int
    profile: str
    key: str
    sanitizer_label: str  # the name with the parameters that differ from the defaults
    plugin_label: str

    def record(self) -> CellRecord:
        return CellRecord(
            cell_key=self.key, dataset=self.dataset, task=self.task.name,
            sensitive=self.task.sensitive, sanitizer=self.sanitizer.name,
            sanitizer_params=self.sanitizer.params_json(), sanitizer_label=self.sanitizer_label,
            kind=self.kind, plugin=self.plugin.name, plugin_params=self.plugin.params_json(),
            plugin_label=self.plugin_label, seed=self.seed, profile=self.profile)


@dataclass(frozen=True)
class Job:
    """One sanitizer fit and the cells that reuse it. Plain data: it crosses process boundaries."""

    dataset: str
    dataset_params: tuple[tuple[str, Any], ...]
    task: Task
    sanitizer: PluginConfig
    seed: int
    profile: str
    cells: tuple[Cell, ...]

    @property
    def label(self) -> str:
        return f"{self.task.name}/{self.cells[0].sanitizer_label}"


@dataclass(frozen=True)
class RunOptions:
    store: str = DEFAULT_STORE
    cache_dir: str = DEFAULT_CACHE
    device: str = "cpu"
    show_progress: bool = False
    time_limit: float | None = None  # per fit and per cell; None: the profile's


def _version_of(registry: Registry, kind: str, name: str) -> dict[str, str]:
    entry = registry.get(kind, name)
    return {"distribution": entry.source.distribution, "version": entry.source.version,
            "plugin_version": str(getattr(entry.obj, "version", ""))}


def _dataset_identity(registry: Registry, name: str, params: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    spec = registry.dataset(name)
    return {"dataset": name, "params": {**spec.params, **dict(params)}, "version": spec.version,
            **{k: v for k, v in _version_of(registry, "datasets", name).items() if k != "plugin_version"}}


def fit_key(registry: Registry, dataset: str, dataset_params: tuple, task: Task,
            sanitizer: PluginConfig, seed: int, profile: str) -> str:
    """Content hash of a fitted sanitizer: everything that can change its fitted state."""
    return hashlib.sha256(canonical_json({
        "data": _dataset_identity(registry, dataset, dataset_params), "task": task.as_dict(),
        "sanitizer": sanitizer.name, "params": sanitizer.kwargs,
        "code": _version_of(registry, "sanitizers", sanitizer.name),
        "seed": seed, "profile": profile,
    }).encode()).hexdigest()[:24]


def plan(spec: BenchmarkSpec, registry: Registry | None = None) -> list[Cell]:
    """Every cell of the spec, in job order. Unknown names and bad parameters fail here, before
    anything runs, with a message naming the spec and the plugin."""
    registry = registry or get_registry()
    try:
        dataset = registry.dataset(spec.dataset)
    except KeyError as exc:
        raise SpecError(f"{spec.source}: {exc}") from None
    unknown_params = set(dict(spec.dataset_params)) - set(dataset.params)
    if unknown_params:
        raise SpecError(f"{spec.source}: data set {spec.dataset!r} has no parameters "
                        f"{sorted(unknown_params)}; it takes {sorted(dataset.params)}")
    tasks = []
    for name in spec.tasks:
        try:
            tasks.append(dataset.task(name))
        except KeyError as exc:
            raise SpecError(f"{spec.source}: {exc}") from None
    get_profile(spec.profile)
    resolved: dict[str, list[PluginConfig]] = {}
    labels: dict[PluginConfig, str] = {}
    for kind, configs in (("sanitizers", spec.sanitizers), ("attacks", spec.attacks),
                          ("metrics", spec.metrics)):
        resolved[kind] = []
        for config in configs:
            try:
                cls = registry.get(kind, config.name).obj
                cls(**config.kwargs)
            except KeyError as exc:
                raise SpecError(f"{spec.source}: {exc}") from None
            except (TypeError, ValueError) as exc:
                raise SpecError(f"{spec.source}: {kind[:-1]} {config.label}: {exc}") from None
            # Defaults are part of the configuration (a changed default is a changed cell); the
            # label shows what the spec set and what differs from the defaults, so tables stay
            # readable and a swept value is always visible.
            defaults = {k: v for k, v in cls.param_defaults().items() if v is not inspect.Parameter.empty}
            full = PluginConfig.make(config.name, {**defaults, **config.kwargs})
            resolved[kind].append(full)
            labels[full] = PluginConfig.make(config.name, {
                k: v for k, v in full.kwargs.items()
                if k in config.kwargs or k not in defaults or defaults[k] != v}).label
    cells = []
    data_id = _dataset_identity(registry, spec.dataset, spec.dataset_params)
    for seed in spec.run_seeds:
        for task in tasks:
            for sanitizer in dict.fromkeys(resolved["sanitizers"]):
                for kind, configs in (("attack", dict.fromkeys(resolved["attacks"])),
                                      ("metric", dict.fromkeys(resolved["metrics"]))):
                    for config in configs:
                        key = hashlib.sha256(canonical_json({
                            "data": data_id, "task": task.as_dict(),
                            "sanitizer": [sanitizer.name, sanitizer.kwargs,
                                          _version_of(registry, "sanitizers", sanitizer.name)],
                            "kind": kind,
                            "plugin": [config.name, config.kwargs,
                                       _version_of(registry, kind + "s", config.name)],
                            "seed": seed, "profile": spec.profile,
                        }).encode()).hexdigest()[:24]
                        cells.append(Cell(spec.dataset, spec.dataset_params, task, sanitizer, kind,
                                          config, seed, spec.profile, key, labels[sanitizer],
                                          labels[config]))
    return cells


def group_jobs(cells: list[Cell]) -> list[Job]:
    jobs: dict[tuple, list[Cell]] = {}
    for cell in cells:
        jobs.setdefault((cell.dataset, cell.dataset_params, cell.task, cell.sanitizer, cell.seed,
                         cell.profile), []).append(cell)
    return [Job(*k, cells=tuple(v)) for k, v in jobs.items()]


# --- per-process state: data sets in memory, provenance -----------------------------------------

_DATA_CACHE: dict[str, DatasetSplits] = {}


def load_dataset(registry: Registry, name: str, params: tuple, profile: str, seed: int) -> DatasetSplits:
    spec = registry.dataset(name)
    merged = {**spec.params, **dict(params)}
    key = canonical_json([name, merged, spec.version, profile, seed])
    if key not in _DATA_CACHE:
        splits = spec.load(profile=get_profile(profile), seed=derive_seed(seed, "dataset", name, merged),
                           **merged)
        # A loader may refine the registered attributes (e.g. the number of identities is a
        # parameter); the splits' own descriptions win.
        attributes = {**spec.attribute_map(), **splits.train.attributes}
        validate_splits(splits, attributes, f"data set {name!r}")
        for _, split in splits.items():
            split.attributes = dict(attributes)
        _DATA_CACHE.clear()  # one data set at a time in memory: matrices iterate data sets outermost
        _DATA_CACHE[key] = splits
    return _DATA_CACHE[key]


_GIT_COMMIT: list[str | None] = []


def git_commit() -> str | None:
    """The commit of the ppbench checkout this code runs from, marked when the tree is dirty."""
    if not _GIT_COMMIT:
        here = Path(__file__).resolve().parent
        try:
            commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=5, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            _GIT_COMMIT.append(commit + ("-dirty" if dirty else ""))
        except (OSError, subprocess.SubprocessError):
            _GIT_COMMIT.append(None)
    return _GIT_COMMIT[0]


def provenance(registry: Registry, cell: Cell, device: str, cell_seed: int) -> dict[str, Any]:
    import torch

    from . import __version__

    return {
        "ppbench": __version__, "git_commit": git_commit(), "torch": torch.__version__,
        "python": platform.python_version(), "device": device, "run_seed": cell.seed,
        "cell_seed": cell_seed, "profile": cell.profile,
        "dataset": _version_of(registry, "datasets", cell.dataset),
        "sanitizer": _version_of(registry, "sanitizers", cell.sanitizer.name),
        cell.kind: _version_of(registry, cell.kind + "s", cell.plugin.name),
    }


# --- time limits ---------------------------------------------------------------------------------


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Interrupt the block with :class:`CellTimeout` after ``seconds``.

    In the main thread of a POSIX process a timer signal interrupts even a plugin that never
    checks its deadline; elsewhere the cooperative deadline of the Context is all there is.
    """
    usable = (seconds is not None and math.isfinite(seconds) and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise CellTimeout(f"{what}: time limit of {seconds:.0f}s exceeded")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- on-disk caches ------------------------------------------------------------------------------


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise workers that would build the same cache entry, so it is built once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SharedModels:
    """``Context.shared`` backed by files: values that do not depend on the sanitizer, computed
    once per (data set, task, seed, profile) and reused by every sanitizer's cells."""

    def __init__(self, root: Path, scope: dict[str, Any]) -> None:
        self.root = root
        self.scope = scope
        self.built = 0

    def __call__(self, name: str, build: Callable[[], Any], key: dict[str, Any]) -> Any:
        import torch

        digest = hashlib.sha256(canonical_json([self.scope, name, key]).encode()).hexdigest()[:24]
        path = self.root / "shared" / f"{name}-{digest}.pt"
        with _file_lock(path):
            if path.exists():
                return torch.load(path, weights_only=False)
            value = build()
            _atomic_save(value, path)
            self.built += 1
            return value


@dataclass
class FittedSanitizer:
    sanitizer: Any
    attack: ImageSet
    test: ImageSet


def _check_sanitized(images: Any, reference: Any, is_image: bool, source: str) -> Any:
    import torch

    if not isinstance(images, torch.Tensor):
        raise PluginContractError(f"{source}: transform must return a tensor, got {type(images).__name__}")
    if images.shape != reference.shape:
        raise PluginContractError(f"{source}: transform changed the shape from "
                                  f"{tuple(reference.shape)} to {tuple(images.shape)}")
    if not images.dtype.is_floating_point:
        raise PluginContractError(f"{source}: transform must return floats, got {images.dtype}")
    images = images.detach().to("cpu", torch.float32)
    if not torch.isfinite(images).all():
        raise PluginContractError(f"{source}: transform returned NaN or inf values")
    if is_image:
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-4 or hi > 1 + 1e-4:
            raise PluginContractError(f"{source}: transformed images must lie in [0, 1], "
                                      f"found [{lo:.4g}, {hi:.4g}]")
        images = images.clamp_(0.0, 1.0)
    return images


# --- running one job -----------------------------------------------------------------------------


@dataclass
class JobReport:
    fits_computed: int = 0
    fits_reused: int = 0
    shared_built: int = 0
    statuses: dict[str, str] = field(default_factory=dict)  # cell key -> status
    errors: dict[str, str] = field(default_factory=dict)  # cell key -> message


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, (PluginContractError, CellTimeout)):
        return str(exc)
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_job(job: Job, options: RunOptions, on_cell: Callable[[Cell, str], None] | None = None) -> JobReport:
    """Fit (or load) one sanitizer configuration and run its pending cells. Never raises for a
    plugin's fault: every failure is stored against the cells it costs."""
    import torch

    registry = get_registry()
    store = ResultStore(options.store)
    report = JobReport()
    profile = get_profile(job.profile)
    limit = options.time_limit if options.time_limit is not None else profile.cell_time_limit
    device = options.device
    dataset_spec = registry.dataset(job.dataset)
    cache_root = Path(options.cache_dir)
    shared = SharedModels(cache_root, {"data": _dataset_identity(registry, job.dataset, job.dataset_params),
                                       "task": job.task.as_dict(), "seed": job.seed, "profile": job.profile})

    def finish(cell: Cell, status: str, values: list[MetricValue] = (), error: str | None = None,
               wall: float | None = None, cell_seed: int = 0) -> None:
        store.commit_cell(cell.record(), status=status, values=values, error=error, wall_time=wall,
                          device=device, provenance=provenance(registry, cell, device, cell_seed))
        report.statuses[cell.key] = status
        if error:
            report.errors[cell.key] = error
        if on_cell is not None:
            on_cell(cell, status)

    def context(seed: int, label: str) -> Context:
        return Context(device=device, profile=profile, seed=seed, time_limit=limit,
                       show_progress=options.show_progress, shared_store=shared,
                       shared_seed=derive_seed(job.seed, "shared", job.task.key), label=label)

    sanitizer_cls = registry.sanitizer(job.sanitizer.name)
    if dataset_spec.kind not in sanitizer_cls.inputs:
        for cell in job.cells:
            finish(cell, "n/a", error=f"sanitizer {job.sanitizer.name!r} does not apply to "
                                      f"{dataset_spec.kind} data ({job.dataset})")
        return report

    try:
        splits = load_dataset(registry, job.dataset, job.dataset_params, job.profile, job.seed)
    except Exception as exc:  # noqa: BLE001 - a broken data set plugin costs its cells only
        message = f"data set {job.dataset!r} failed to load: {_error_text(exc)}"
        for cell in job.cells:
            finish(cell, "error", error=message)
        return report

    fitted: FittedSanitizer | None = None
    fit_error = None
    key = fit_key(registry, job.dataset, job.dataset_params, job.task, job.sanitizer, job.seed, job.profile)
    path = cache_root / "sanitizers" / job.sanitizer.name / f"{key}.pt"
    label = job.label
    try:
        with _file_lock(path):
            if path.exists():
                state = torch.load(path, weights_only=False)
                fitted = FittedSanitizer(state["sanitizer"], splits.attack.with_images(state["attack"]),
                                         splits.test.with_images(state["test"]))
                report.fits_reused += 1
            else:
                fit_seed = derive_seed(job.seed, "fit", key)
                ctx = context(fit_seed, f"{label} fit")
                ctx.seed_everything()
                sanitizer = sanitizer_cls(**job.sanitizer.kwargs)
                source = f"sanitizer {job.cells[0].sanitizer_label}"
                with time_limit(limit, f"{source} fit"):
                    # fit sees the train split only: no test images, no test labels.
                    sanitizer = sanitizer.fit(splits.train, job.task, ctx) or sanitizer
                    sanitize = lambda x: sanitizer.transform(x.to(ctx.device), ctx)  # noqa: E731
                    batch = profile.batch_size * 4
                    attack = _check_sanitized(apply_batched(sanitize, splits.attack.images, batch),
                                              splits.attack.images, splits.attack.is_image, source)
                    test = _check_sanitized(apply_batched(sanitize, splits.test.images, batch),
                                            splits.test.images, splits.test.is_image, source)
                missing = set(sanitizer_cls.capabilities) - {"release"} - set(sanitizer.handles())
                if missing:
                    raise PluginContractError(f"{source} declares capabilities {sorted(missing)} "
                                              f"but handles() does not provide them")
                try:
                    _atomic_save({"sanitizer": sanitizer, "attack": attack, "test": test}, path)
                except Exception as exc:  # noqa: BLE001
                    raise PluginContractError(f"{source}: its fitted state cannot be saved with "
                                              f"torch.save ({exc}); keep it picklable") from None
                fitted = FittedSanitizer(sanitizer, splits.attack.with_images(attack),
                                         splits.test.with_images(test))
                report.fits_computed += 1
    except Exception as exc:  # noqa: BLE001
        fit_error = f"sanitizer fit failed: {_error_text(exc)}"

    for cell in job.cells:
        if fit_error is not None:
            finish(cell, "error", error=fit_error)
            continue
        cell_seed = derive_seed(cell.seed, "cell", cell.key)
        started = time.monotonic()
        try:
            ctx = context(cell_seed, f"{label} {cell.plugin_label}")
            ctx.seed_everything()
            with time_limit(limit, f"{cell.kind} {cell.plugin_label}"):
                if cell.kind == "attack":
                    outcome = _run_attack(registry, cell, fitted, splits, ctx)
                else:
                    outcome = _run_metric(registry, cell, fitted, splits, ctx)
            wall = time.monotonic() - started
            if isinstance(outcome, str):
                finish(cell, "n/a", error=outcome, wall=wall, cell_seed=cell_seed)
            else:
                finish(cell, "ok", values=outcome, wall=wall, cell_seed=cell_seed)
        except Exception as exc:  # noqa: BLE001 - the plugin's failure costs this cell only
            finish(cell, "error", error=_error_text(exc), wall=time.monotonic() - started,
                   cell_seed=cell_seed)
    report.shared_built = shared.built
    return report


def _run_attack(registry: Registry, cell: Cell, fitted: FittedSanitizer, splits: DatasetSplits,
                ctx: Context) -> list[MetricValue] | str:
    attack_cls = registry.attack(cell.plugin.name)
    sanitizer = fitted.sanitizer
    missing = (set(attack_cls.requires) & SANITIZER_CAPABILITIES) - set(type(sanitizer).capabilities)
    if missing:
        return (f"attack {cell.plugin.name!r} requires {sorted(missing)}, which sanitizer "
                f"{cell.sanitizer.name!r} does not expose")
    if AUX in attack_cls.requires and splits.aux is None:
        return f"attack {cell.plugin.name!r} requires public aux data; data set {cell.dataset!r} has none"
    handles = sanitizer.handles()
    view = AttackView(
        attack=fitted.attack,
        # The test split travels without any labels: the attack predicts, the harness scores.
        test=fitted.test.without_labels(),
        raw_train=splits.train if RAW_TRAIN in attack_cls.requires else None,
        aux=splits.aux if AUX in attack_cls.requires else None,
        oracle=(lambda x: sanitizer.transform(x.to(ctx.device), ctx)) if ORACLE in attack_cls.requires else None,
        handles={k: v for k, v in handles.items() if k in attack_cls.requires},
    )
    attack = attack_cls(**cell.plugin.kwargs)
    result = attack.run(view, cell.task, ctx)
    source = f"attack {cell.plugin_label}"
    if not isinstance(result, AttackResult):
        raise PluginContractError(f"{source}: run() must return an AttackResult, got {type(result).__name__}")
    truth = splits.test.labels[cell.task.sensitive]
    return score_attribute_attack(result, truth, splits.test.num_classes(cell.task.sensitive),
                                  splits.test.chance(cell.task.sensitive), source)


def _run_metric(registry: Registry, cell: Cell, fitted: FittedSanitizer, splits: DatasetSplits,
                ctx: Context) -> list[MetricValue]:
    metric = registry.metric(cell.plugin.name)(**cell.plugin.kwargs)
    view = MetricView(raw_train=splits.train, raw_attack=splits.attack, raw_test=splits.test,
                      sanitized_attack=fitted.attack, sanitized_test=fitted.test)
    values = metric.run(view, cell.task, ctx)
    source = f"metric {cell.plugin_label}"
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
    return values


# --- running a whole spec ------------------------------------------------------------------------


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

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)

    def merge(self, job: JobReport) -> None:
        self.fits_computed += job.fits_computed
        self.fits_reused += job.fits_reused
        self.shared_built += job.shared_built
        self.statuses.update(job.statuses)
        self.errors.update(job.errors)

    def summary(self) -> str:
        return (f"{self.planned} cells: {self.skipped} already stored, {len(self.statuses)} run "
                f"({self.count('ok')} ok, {self.count('error')} error, {self.count('n/a')} n/a); "
                f"sanitizer fits: {self.fits_computed} computed, {self.fits_reused} from cache; "
                f"{self.wall_time:.1f}s")


def run(spec: BenchmarkSpec, options: RunOptions, *, executor: str = "local", workers: int = 1,
        retry_errors: bool = False, registry: Registry | None = None) -> RunReport:
    """Run every cell of ``spec`` that the store does not hold yet."""
    from .executors import get_executor

    started = time.monotonic()
    registry = registry or get_registry()
    cells = plan(spec, registry)
    store = ResultStore(options.store)
    done = store.finished_keys(("ok", "n/a") if retry_errors else ("ok", "error", "n/a"))
    pending = [c for c in cells if c.key not in done]
    report = RunReport(planned=len(cells), skipped=len(cells) - len(pending),
                       cell_keys=[c.key for c in cells])
    jobs = group_jobs(pending)
    if jobs:
        get_executor(executor, workers=workers, device=options.device).run(
            jobs, options, report, show_progress=options.show_progress)
    report.wall_time = time.monotonic() - started
    return report
