"""The plugin manager: entry-point discovery, the registry of named plugins, listing, load errors.

Entry points of the group ``ppbench`` are loaded one at a time, so that a plugin that fails to
import, declares a hook that does not exist, or raises while registering is reported by name and
the others still load. Built-in plugins come through the same entry points as third-party ones.

``PPBENCH_LOAD_PLUGINS=a,b`` loads only the named entry points or distributions (``ppbench`` for
the built-ins alone; an empty value loads none).
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterator

import pluggy

from . import hookspecs
from .api import SANITIZER_CAPABILITIES, Attack, DatasetSpec, Sanitizer, UtilityMetric
from .kinds import PLUGIN_KINDS, attack_kind, requirement_alternatives, requirement_labels, threat_model

ENTRY_POINT_GROUP = "ppbench"
LOAD_PLUGINS_ENV = "PPBENCH_LOAD_PLUGINS"
KINDS = tuple(PLUGIN_KINDS)


class UnknownPluginError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Source:
    """Where a registered object came from."""

    plugin: str  # the entry point's name
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.distribution} {self.version} (plugin {self.plugin!r})"


@dataclass
class Registered:
    kind: str
    name: str
    obj: Any
    source: Source


@dataclass
class PluginFailure:
    plugin: str
    distribution: str
    error: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.plugin} ({self.distribution}): {self.error}"


@dataclass(frozen=True)
class RegistryRecipe:
    """How to build a registry again in another process (a worker, a sandboxed cell): the value of
    ``PPBENCH_LOAD_PLUGINS`` when it was built, and the extra (not installed) plugins, modules by
    import name and other objects as they are (they must pickle, e.g. module-level classes)."""

    load_plugins: str | None = None
    extra_plugins: tuple[tuple[str, str, Any], ...] = ()  # (name, "module" | "object", value)

    @classmethod
    def of(cls, extra_plugins: dict[str, Any] | None) -> "RegistryRecipe":
        import types

        extras = tuple((name, "module", plugin.__name__) if isinstance(plugin, types.ModuleType)
                       else (name, "object", plugin) for name, plugin in (extra_plugins or {}).items())
        return cls(os.environ.get(LOAD_PLUGINS_ENV), extras)

    def build(self) -> "Registry":
        import importlib

        extras = {name: importlib.import_module(value) if how == "module" else value
                  for name, how, value in self.extra_plugins}
        previous = os.environ.get(LOAD_PLUGINS_ENV)
        _set_env(LOAD_PLUGINS_ENV, self.load_plugins)
        try:
            return build_registry(extras)
        finally:
            _set_env(LOAD_PLUGINS_ENV, previous)


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@dataclass
class Registry:
    recipe: RegistryRecipe = field(default_factory=RegistryRecipe)
    entries: dict[str, dict[str, Registered]] = field(default_factory=lambda: {k: {} for k in KINDS})
    conflicts: dict[str, dict[str, list[Source]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failures: list[PluginFailure] = field(default_factory=list)
    plugins: list[Source] = field(default_factory=list)

    def get(self, kind: str, name: str) -> Registered:
        if name in self.conflicts[kind]:
            sources = " and ".join(str(s) for s in self.conflicts[kind][name])
            raise UnknownPluginError(f"{kind[:-1]} name {name!r} is registered twice: by {sources}")
        try:
            return self.entries[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.entries[kind])) or "none"
            hint = ""
            if self.failures:
                hint = "; plugins that failed to load: " + ", ".join(f.plugin for f in self.failures)
            raise UnknownPluginError(f"unknown {kind[:-1]} {name} (known: {known}){hint}") from None

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("datasets", name).obj

    def sanitizer(self, name: str) -> type[Sanitizer]:
        return self.get("sanitizers", name).obj

    def attack(self, name: str) -> type[Attack]:
        return self.get("attacks", name).obj

    def metric(self, name: str) -> type[UtilityMetric]:
        return self.get("metrics", name).obj

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def source(self, kind: str, name: str) -> Source:
        return self.get(kind, name).source

    def __iter__(self) -> Iterator[Registered]:
        for kind in KINDS:
            yield from (self.entries[kind][n] for n in sorted(self.entries[kind]))


def _check_registered(kind: str, obj: Any) -> str:
    """Validate one registered object; return its name. Errors say what is wrong with it."""
    spec = PLUGIN_KINDS[kind]
    if spec.instances:
        if not isinstance(obj, spec.base):
            raise TypeError(f"register() for {kind} takes {spec.registers}, got {obj!r}")
    elif not (isinstance(obj, type) and issubclass(obj, spec.base)):
        raise TypeError(f"register() for {kind} takes {spec.registers}, got {obj!r}")
    if not obj.name:
        raise ValueError(f"{obj!r} has no `name`")
    if isinstance(obj, DatasetSpec):
        names = {a.name for a in obj.attributes}
        for task in obj.tasks:
            unknown = {task.sensitive, *task.utility} - names
            if unknown:
                raise ValueError(f"data set {obj.name!r}: task {task.name!r} names unknown "
                                 f"attributes {sorted(unknown)}")
        return obj.name
    if issubclass(obj, Sanitizer):
        unknown = set(obj.capabilities) - SANITIZER_CAPABILITIES
        if unknown:
            raise ValueError(f"sanitizer {obj.name!r} declares unknown capabilities {sorted(unknown)}; "
                             f"known: {sorted(SANITIZER_CAPABILITIES)}")
    if issubclass(obj, Attack):
        # A class-level `requires` is checked now (names, alternatives); one that an instance sets
        # from its parameters, or a property, is checked when a configured instance runs.
        if not isinstance(obj.requires, property):
            requirement_alternatives(obj.requires, obj.name)
        attack_kind(obj)
        threat_model(obj)
    obj.param_defaults()  # a constructor that cannot be introspected fails here, at load time
    return obj.name


def _wanted(entry_point: metadata.EntryPoint, distribution: str) -> bool:
    raw = os.environ.get(LOAD_PLUGINS_ENV)
    if raw is None:
        return True
    allowed = {n.strip() for n in raw.split(",") if n.strip()}
    return entry_point.name in allowed or distribution in allowed


def _entry_points() -> Iterator[tuple[metadata.EntryPoint, str, str]]:
    seen: set[tuple[str, str]] = set()
    for dist in metadata.distributions():
        dist_name = dist.metadata["Name"] or "unknown"
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or (dist_name, ep.name) in seen:
                continue
            seen.add((dist_name, ep.name))
            yield ep, dist_name, dist.version


def build_registry(extra_plugins: dict[str, Any] | None = None) -> Registry:
    """Discover every ``ppbench`` entry point and collect what each plugin registers.

    ``extra_plugins`` (name -> module or object with hookimpls) is for tests and notebooks that
    want a plugin without installing it; installed entry points are loaded as usual.
    """
    registry = Registry(recipe=RegistryRecipe.of(extra_plugins))
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    sources: dict[str, Source] = {}

    def add(plugin: Any, source: Source) -> None:
        pm.register(plugin, name=source.plugin)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            pm.unregister(name=source.plugin)
            raise ValueError(f"hook implementation matches no ppbench hook: {exc}") from None
        sources[source.plugin] = source
        registry.plugins.append(source)

    for ep, dist_name, version in _entry_points():
        if not _wanted(ep, dist_name):
            continue
        source = Source(ep.name, dist_name, version)
        if pm.has_plugin(ep.name):
            registry.failures.append(PluginFailure(
                ep.name, dist_name, f"entry point name already used by {sources[ep.name]}"))
            continue
        try:
            add(ep.load(), source)
        except Exception as exc:  # noqa: BLE001 - any import error is the plugin's, not ours
            registry.failures.append(PluginFailure(ep.name, dist_name, f"{type(exc).__name__}: {exc}",
                                                   traceback.format_exc()))
    for name, plugin in (extra_plugins or {}).items():
        try:
            add(plugin, Source(name, "(not installed)", "-"))
        except Exception as exc:  # noqa: BLE001
            registry.failures.append(PluginFailure(name, "(not installed)", f"{type(exc).__name__}: {exc}"))

    hooks = {kind.name: getattr(pm.hook, kind.hook) for kind in PLUGIN_KINDS.values()}
    failed: set[str] = set()
    for kind, hook in hooks.items():
        for impl in hook.get_hookimpls():
            source = sources[impl.plugin_name]
            if impl.plugin_name in failed:
                continue
            staged: list[Registered] = []

            def register(obj: Any, _kind: str = kind, _source: Source = source,
                         _staged: list[Registered] = staged) -> None:
                name = _check_registered(_kind, obj)
                _staged.append(Registered(_kind, name, obj, _source))

            try:
                impl.function(register=register)
            except Exception as exc:  # noqa: BLE001
                failed.add(impl.plugin_name)
                registry.failures.append(PluginFailure(
                    impl.plugin_name, source.distribution,
                    f"while registering {kind}: {type(exc).__name__}: {exc}", traceback.format_exc()))
                continue
            for entry in staged:
                _insert(registry, entry)
    return registry


def _insert(registry: Registry, entry: Registered) -> None:
    kind, name = entry.kind, entry.name
    if name in registry.conflicts[kind]:
        registry.conflicts[kind][name].append(entry.source)
        return
    existing = registry.entries[kind].get(name)
    if existing is None:
        registry.entries[kind][name] = entry
        return
    if existing.obj is entry.obj:
        return
    del registry.entries[kind][name]
    registry.conflicts[kind][name] = [existing.source, entry.source]
    registry.failures.append(PluginFailure(
        entry.source.plugin, entry.source.distribution,
        f"{kind[:-1]} name {name!r} is registered by both {existing.source} and {entry.source}; "
        f"neither is usable until one is renamed"))


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        _registry = build_registry()
    return _registry


def reset_registry() -> None:
    global _registry
    _registry = None
    _rebuilt.clear()


_rebuilt: dict[RegistryRecipe, Registry] = {}


def registry_for(recipe: RegistryRecipe | None) -> Registry:
    """The registry a job was planned with, rebuilt once per process from its recipe (``None``:
    the process-wide registry)."""
    if recipe is None:
        return get_registry()
    try:
        if recipe not in _rebuilt:
            _rebuilt[recipe] = recipe.build()
        return _rebuilt[recipe]
    except TypeError:  # an extra plugin object that is not hashable
        return recipe.build()


def remember(registry: Registry) -> None:
    """Let :func:`registry_for` return this very registry for its recipe in this process."""
    try:
        _rebuilt[registry.recipe] = registry
    except TypeError:  # an extra plugin object that is not hashable: rebuild it when needed
        pass


def describe(registry: Registry) -> dict[str, Any]:
    """Everything ``ppbench list`` shows, as plain data."""

    def params(cls: Any) -> dict[str, Any]:
        import inspect

        return {k: (None if v is inspect.Parameter.empty else v) for k, v in cls.param_defaults().items()}

    def requires(cls: type[Attack]) -> list[str]:
        """The requirements of the default configuration: an attack may set them in __init__ from
        its parameters, so the class attribute alone can be wrong. Constructors only store
        configuration (CONTRIBUTING), so building one here is cheap."""
        try:
            declared = cls().requires
        except Exception:  # noqa: BLE001 - a required parameter, or a constructor that fails
            declared = cls.requires
        if isinstance(declared, property):  # no default configuration to evaluate it on
            return ["(depends on its parameters)"]
        try:
            return requirement_labels(declared, cls.name)
        except ValueError as exc:  # listed, not raised: one broken plugin must not stop the list
            return [f"(invalid: {exc})"]

    out: dict[str, Any] = {kind: [] for kind in KINDS}
    for entry in registry:
        row: dict[str, Any] = {"name": entry.name, "distribution": entry.source.distribution,
                               "version": entry.source.version, "plugin": entry.source.plugin}
        obj = entry.obj
        if entry.kind == "datasets":
            row.update(kind=obj.kind, params=dict(obj.params), description=obj.description.splitlines()[0],
                       tasks=[f"{t.name} (sensitive: {t.sensitive}; kept: {', '.join(t.utility) or 'none'})"
                              for t in obj.tasks],
                       task_details=[{"name": t.name, "sensitive": t.sensitive, "utility": list(t.utility),
                                      "description": t.description} for t in obj.tasks],
                       attributes=[a.name for a in obj.attributes], plugin_version=obj.version)
        else:
            row.update(params=params(obj), description=obj.summary(), plugin_version=obj.version)
            if entry.kind == "sanitizers":
                row.update(capabilities=sorted(obj.capabilities), inputs=sorted(obj.inputs))
            if entry.kind == "attacks":
                model = threat_model(obj)
                row.update(requires=requires(obj), kind=obj.kind, threat_model=model.id,
                           threat_model_description=model.description, knowledge=model.knowledge)
        out[entry.kind].append(row)
    out["failures"] = [{"plugin": f.plugin, "distribution": f.distribution, "error": f.error}
                       for f in registry.failures]
    return out

