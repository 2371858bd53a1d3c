"""Planning: a benchmark spec becomes cells, and cells are grouped into jobs.

A *cell* is one (data set, task, sanitizer configuration, attack or metric, seed); a *job* is one
sanitizer fit and the cells that reuse it. Cell keys are content hashes of everything that can
change a cell's result (data set identity, parameters, plugin versions, seed, profile), so a result
is reused exactly when it would be recomputed identically.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Any

from .api import Task, get_profile
from .kinds import attack_kind, threat_model
from .registry import Registry, get_registry
from .spec import BenchmarkSpec, PluginConfig, SpecError, canonical_json
from .store import CellRecord

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


def version_of(registry: Registry, kind: str, name: str) -> dict[str, str]:
    entry = registry.get(kind, name)
    return {"distribution": entry.source.distribution, "version": entry.source.version,
            "plugin_version": str(getattr(entry.obj, "version", ""))}


def dataset_identity(registry: Registry, name: str, params: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    spec = registry.dataset(name)
    return {"dataset": name, "params": {**spec.params, **dict(params)}, "version": spec.version,
            **{k: v for k, v in version_of(registry, "datasets", name).items() if k != "plugin_version"}}


def dataset_key(registry: Registry, name: str, params: tuple[tuple[str, Any], ...]) -> str:
    """A short hash of what identifies generated or loaded data beyond its name and seed."""
    identity = dataset_identity(registry, name, params)
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def fit_key(registry: Registry, dataset: str, dataset_params: tuple, task: Task,
            sanitizer: PluginConfig, seed: int, profile: str) -> str:
    """Content hash of a fitted sanitizer: everything that can change its fitted state."""
    return hashlib.sha256(canonical_json({
        "data": dataset_identity(registry, dataset, dataset_params), "task": task.as_dict(),
        "sanitizer": sanitizer.name, "params": sanitizer.kwargs,
        "code": version_of(registry, "sanitizers", sanitizer.name),
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
    if spec.standard_check is not None and spec.standard_check not in {c.name for c in spec.attacks}:
        raise SpecError(f"{spec.source}: [benchmark] standard_check {spec.standard_check!r} is not one "
                        f"of the spec's attacks {sorted({c.name for c in spec.attacks})}")
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
    data_id = dataset_identity(registry, spec.dataset, spec.dataset_params)
    for seed in spec.run_seeds:
        for task in tasks:
            for sanitizer in dict.fromkeys(resolved["sanitizers"]):
                for kind, configs in (("attack", dict.fromkeys(resolved["attacks"])),
                                      ("metric", dict.fromkeys(resolved["metrics"]))):
                    for config in configs:
                        key = hashlib.sha256(canonical_json({
                            "data": data_id, "task": task.as_dict(),
                            "sanitizer": [sanitizer.name, sanitizer.kwargs,
                                          version_of(registry, "sanitizers", sanitizer.name)],
                            "kind": kind,
                            "plugin": [config.name, config.kwargs,
                                       version_of(registry, kind + "s", config.name)],
                            "seed": seed, "profile": spec.profile,
                        }).encode()).hexdigest()[:24]
                        scoring = model = ""
                        if kind == "attack":
                            attack = registry.attack(config.name)
                            scoring, model = attack_kind(attack).name, threat_model(attack).id
                        cells.append(Cell(spec.dataset, spec.dataset_params, task, sanitizer, kind,
                                          config, seed, spec.profile, key, labels[sanitizer],
                                          labels[config], scoring, model))
    return cells


def group_jobs(cells: list[Cell]) -> list[Job]:
    jobs: dict[tuple, list[Cell]] = {}
    for cell in cells:
        jobs.setdefault((cell.dataset, cell.dataset_params, cell.task, cell.sanitizer, cell.seed,
                         cell.profile), []).append(cell)
    return [Job(*k, cells=tuple(v)) for k, v in jobs.items()]
