"""Planning: a benchmark spec becomes cells, and cells are grouped into jobs.

A *cell* is one (data set, task, sanitizer configuration, attack or metric, seed); a *job* is one
sanitizer fit and the cells that reuse it. Cell keys are content hashes of everything that can
change a cell's result (data set identity, parameters, plugin versions, seed, profile), so a result
is reused exactly when it would be recomputed identically.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

from .api import Task, get_profile
from .cache_admin import resolve_cache_dir
from .kinds import attack_kind, threat_model
from .pixels import STORAGE_FORMAT
from .registry import Registry, RegistryRecipe, get_registry
from .spec import BenchmarkSpec, PluginConfig, SpecError, canonical_json
from .store import CellRecord

DEFAULT_STORE = "results.db"


def _new_run_id() -> str:
    import os
    import socket
    import uuid

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def derive_seed(*parts: Any) -> int:
    """A 60-bit seed from a hash of its parts (benchopt style): stable across runs and machines."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()
    return int(digest[:15], 16)


def resolve_device(device: str) -> str:
    """``auto`` picks CUDA when present, else the CPU; a CUDA device is checked against this
    machine, so that a run fails before any work rather than in its first cell."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SpecError(f"--device {device}: this torch ({torch.__version__}) sees no CUDA "
                            "device on this machine; use --device cpu or --device auto")
        count = torch.cuda.device_count()
        if ":" in device and int(device.split(":")[1]) >= count:
            raise SpecError(f"--device {device}: this machine has {count} CUDA device(s), "
                            f"cuda:0 to cuda:{count - 1}")
    torch.device(device)  # raises on a malformed name
    return device


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
    scoring: str = ""  # an attack's scoring kind ('attribute'...); '' for a metric
    threat_model: str = ""  # an attack's threat-model identifier
    seal: str = ""  # a sealed run's salt commitment; '' for the public draw of the data
    canaries: int = 0  # membership canaries in the fit split (ppbench.membership); 0: none

    def record(self) -> CellRecord:
        return CellRecord(
            cell_key=self.key, dataset=self.dataset, task=self.task.name,
            sensitive=self.task.sensitive, sanitizer=self.sanitizer.name,
            sanitizer_params=self.sanitizer.params_json(), sanitizer_label=self.sanitizer_label,
            kind=self.kind, plugin=self.plugin.name, plugin_params=self.plugin.params_json(),
            plugin_label=self.plugin_label, seed=self.seed, profile=self.profile,
            scoring=self.scoring, threat_model=self.threat_model)


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
    seal: str = ""
    # The cells that the store already held when the run planned (run again because they were
    # forced or retried): any other cell found stored later was computed by another run.
    stored_at_plan: frozenset[str] = frozenset()
    # Cells of this fit that a batch job runs afterwards, together with other fits' cells
    # (ppbench.batches): this job fits the sanitizer for them, and stores them as errors when
    # the fit fails.
    batched: tuple[Cell, ...] = ()
    canaries: int = 0  # membership canaries shuffled into the fit split (ppbench.membership)

    @property
    def sanitizer_label(self) -> str:
        return (self.cells or self.batched)[0].sanitizer_label

    @property
    def label(self) -> str:
        return f"{self.task.name}/{self.sanitizer_label}"


@dataclass(frozen=True)
class RunOptions:
    store: str = DEFAULT_STORE
    # --cache, else $PPBENCH_CACHE, else the per-user cache folder (ppbench.cache_admin).
    cache_dir: str = field(default_factory=lambda: str(resolve_cache_dir()))
    device: str = "cpu"
    show_progress: bool = False  # bars (on a terminal)
    # A line per finished job on stderr instead of bars (a log file, a CI console).
    progress_lines: bool = False
    time_limit: float | None = None  # per fit and per cell; None: the profile's
    # A sealed run's secret salt: it stays with the process that loads the data, never reaches a
    # plugin, and is published afterwards by `ppbench reveal`.
    salt: str | None = None
    # "process": every fit, attack and metric runs in a warm child process that holds only what
    # it is granted (ppbench.sandbox); "none": in this process, for development.
    isolation: str = "none"
    # Several runs on one store share the work: a job is leased to one of them, and a lease
    # not renewed for this many seconds (its run was killed) is taken over.
    lease_ttl: float = 60.0
    run_id: str = field(default_factory=lambda: _new_run_id())
    # The registry the cells were planned with, rebuilt from this recipe wherever a job runs
    # (None: the process-wide registry of installed plugins).
    registry_recipe: RegistryRecipe | None = None
    # Run the cells of batchable attacks in batch jobs, several sanitizer configurations at once
    # (ppbench.batches); --batch-attacks auto turns it on for a GPU.
    batch_attacks: bool = False
    # Local data's revisions (ppbench.data_revision): dataset key -> digest of its files, mixed
    # into the keys of cached fits and shared models.
    data_revisions: tuple[tuple[str, str], ...] = ()

    def revision_of(self, data_key: str) -> str:
        return dict(self.data_revisions).get(data_key, "")


def version_of(registry: Registry, kind: str, name: str) -> dict[str, str]:
    """Where a plugin's code came from, for provenance: its distribution and that distribution's
    version, and the plugin's own ``version``."""
    entry = registry.get(kind, name)
    return {"distribution": entry.source.distribution, "version": entry.source.version,
            "plugin_version": str(getattr(entry.obj, "version", ""))}


def code_identity(registry: Registry, kind: str, name: str) -> dict[str, str]:
    """What a plugin contributes to cell, fit and cache keys: its distribution's name and the
    plugin's own ``version`` (a data set's ``DatasetSpec.version``), never the distribution's
    version. A release of ppbench, or of a plugin package, recomputes only the plugins whose
    ``version`` was bumped: a plugin bumps it when its results change (CONTRIBUTING)."""
    entry = registry.get(kind, name)
    return {"distribution": entry.source.distribution,
            "plugin_version": str(getattr(entry.obj, "version", ""))}


def dataset_identity(registry: Registry, name: str, params: tuple[tuple[str, Any], ...],
                     seal: str = "", revision: str = "") -> dict[str, Any]:
    """What identifies the data beyond the run seed. ``seal``: the commitment of a sealed run's
    secret salt (:mod:`~ppbench.sealing`), whose data differ from the unsealed draw;
    ``revision``: what local files hold (:mod:`~ppbench.data_revision`), for cache keys only."""
    spec = registry.dataset(name)
    identity = {"dataset": name, "params": {**spec.params, **dict(params)}, "version": spec.version,
                "distribution": registry.get("datasets", name).source.distribution}
    if seal:
        identity["seal"] = seal
    if revision:
        identity["revision"] = revision
    return identity


def dataset_key(registry: Registry, name: str, params: tuple[tuple[str, Any], ...],
                seal: str = "") -> str:
    """A short hash of what identifies generated or loaded data beyond its name and seed."""
    identity = dataset_identity(registry, name, params, seal)
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def fit_key(registry: Registry, dataset: str, dataset_params: tuple, task: Task,
            sanitizer: PluginConfig, seed: int, profile: str, seal: str = "", revision: str = "",
            *, canaries: int = 0) -> str:
    """Content hash of a fitted sanitizer: everything that can change its fitted state
    (``canaries``: the membership canaries in its fit split; a fit without keeps its key)."""
    return hashlib.sha256(canonical_json({
        "data": dataset_identity(registry, dataset, dataset_params, seal, revision), "task": task.as_dict(),
        "sanitizer": sanitizer.name, "params": sanitizer.kwargs,
        "code": code_identity(registry, "sanitizers", sanitizer.name),
        "seed": seed, "profile": profile, "storage": STORAGE_FORMAT,
        **({"canaries": canaries} if canaries else {}),
    }).encode()).hexdigest()[:24]


def check_plugin_params(cls: type, kind: str, config: PluginConfig, where: str) -> None:
    """A plugin's parameters are its constructor's keyword arguments (scikit-learn's estimator
    contract): a name it does not take is reported with the ones it does."""
    defaults = cls.param_defaults()
    takes_any = cls.__init__ is not object.__init__ and any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
    unknown = [k for k in config.kwargs if k not in defaults]
    if unknown and not takes_any:
        valid = ", ".join(k if v is inspect.Parameter.empty else f"{k}={v!r}"
                          for k, v in defaults.items()) or "none"
        raise SpecError(f"{where}: {kind[:-1]} {config.name} has no parameter "
                        f"{', '.join(unknown)}; its parameters: {valid}")


def plan(spec: BenchmarkSpec, registry: Registry | None = None, seal: str = "") -> list[Cell]:
    """Every cell of the spec, in job order. Unknown names and bad parameters fail here, before
    anything runs, with a message naming the spec and the plugin. ``seal``: plan a sealed run's
    cells (their data, and so their keys, differ from the public draw's)."""
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
    if spec.standard_check is not None and spec.standard_check not in {c.name for c in spec.attacks}:
        raise SpecError(f"{spec.source}: [benchmark] standard_check {spec.standard_check!r} is not one "
                        f"of the spec's attacks {sorted({c.name for c in spec.attacks})}")
    if spec.ranking_utility is not None and spec.ranking_utility not in {c.name for c in spec.metrics}:
        raise SpecError(f"{spec.source}: [benchmark] ranking_utility {spec.ranking_utility!r} is not one "
                        f"of the spec's metrics {sorted({c.name for c in spec.metrics})}")
    resolved: dict[str, list[PluginConfig]] = {}
    labels: dict[PluginConfig, str] = {}
    for kind, configs in (("sanitizers", spec.sanitizers), ("attacks", spec.attacks),
                          ("metrics", spec.metrics)):
        resolved[kind] = []
        for config in configs:
            try:
                cls = registry.get(kind, config.name).obj
                check_plugin_params(cls, kind, config, f"{spec.source}: [[{kind}]] {config.name}")
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
    data_ids = {params: dataset_identity(registry, spec.dataset, params, seal) for params in spec.dataset_configs}
    # Seed, then data configuration, then task: the job order of a spec without a data sweep.
    for seed, data_params, task in itertools.product(spec.run_seeds, data_ids, tasks):
        data_id = data_ids[data_params]
        for sanitizer in dict.fromkeys(resolved["sanitizers"]):
            for kind, configs in (("attack", dict.fromkeys(resolved["attacks"])),
                                  ("metric", dict.fromkeys(resolved["metrics"]))):
                for config in configs:
                    key = hashlib.sha256(canonical_json({
                        "data": data_id, "task": task.as_dict(),
                        "sanitizer": [sanitizer.name, sanitizer.kwargs,
                                      code_identity(registry, "sanitizers", sanitizer.name)],
                        "kind": kind,
                        "plugin": [config.name, config.kwargs,
                                   code_identity(registry, kind + "s", config.name)],
                        "seed": seed, "profile": spec.profile, "storage": STORAGE_FORMAT,
                        # Canaries change every fit, so every cell (and none without them).
                        **({"canaries": spec.canaries} if spec.canaries else {}),
                    }).encode()).hexdigest()[:24]
                    scoring = model = ""
                    if kind == "attack":
                        attack = configured_attack(registry, config)
                        scoring, model = attack_kind(attack).name, threat_model(attack).id
                    cells.append(Cell(spec.dataset, data_params, task, sanitizer, kind,
                                      config, seed, spec.profile, key, labels[sanitizer],
                                      labels[config], scoring, model, seal, canaries=spec.canaries))
    return cells


def configured_attack(registry: Registry, config: PluginConfig) -> Any:
    """The configured instance, whose threat model may follow its parameters (a recognizer's
    gallery); its class when the constructor refuses them (the cell then reports why)."""
    cls = registry.attack(config.name)
    try:
        return cls(**config.kwargs)
    except Exception:  # noqa: BLE001 - a plugin's constructor error belongs to its cells
        return cls


def group_jobs(cells: list[Cell], stored: frozenset[str] | set[str] = frozenset(),
               batched: Sequence[Cell] = ()) -> list[Job]:
    """One job per sanitizer fit. ``stored``: the cell keys the store held at planning.
    ``batched``: cells that batch jobs run later; their fits' jobs carry them (see ``Job``)."""
    jobs: dict[tuple, tuple[list[Cell], list[Cell]]] = {}
    for index, group in enumerate((cells, batched)):
        for cell in group:
            jobs.setdefault((cell.dataset, cell.dataset_params, cell.task, cell.sanitizer,
                             cell.seed, cell.profile, cell.seal, cell.canaries), ([], []))[index].append(cell)
    return [Job(*k[:-2], cells=tuple(own), seal=k[-2],
                stored_at_plan=frozenset(c.key for c in own if c.key in stored),
                batched=tuple(later), canaries=k[-1])
            for k, (own, later) in jobs.items()]
