"""What a job asks of a cluster: CPUs, GPUs and memory, from what its plugins declare.

A plugin class may declare ``resources``, e.g. ``{"num_gpus": 0.25}`` for a small model that can
share a GPU with three others, or ``{"num_cpus": 4, "memory": 8e9}``. A job (one sanitizer fit
and its cells) asks for the most that any of its plugins asks for, key by key; what a plugin
leaves out is :func:`default_resources`. Only a cluster executor (``--executor ray``) reads them.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import TYPE_CHECKING, Any, Mapping

from .spec import SpecError

if TYPE_CHECKING:
    from .registry import Registry

RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory")  # memory in bytes, as Ray counts it


def default_resources(device: str) -> dict[str, float]:
    """One CPU; one whole GPU on a CUDA run (a plugin that shares one declares a fraction)."""
    return {"num_cpus": 1.0, "num_gpus": 1.0 if device.startswith("cuda") else 0.0}


def declared_resources(plugin: Any, source: str) -> dict[str, float]:
    """A plugin class's ``resources``, checked: known keys, finite numbers >= 0, GPUs either a
    fraction of one or whole ones."""
    declared = getattr(plugin, "resources", None) or {}
    if not isinstance(declared, Mapping):
        raise SpecError(f"{source}: 'resources' must be a dict such as {{'num_gpus': 0.5}}, "
                        f"got {type(declared).__name__}")
    checked: dict[str, float] = {}
    for key, value in declared.items():
        if key not in RESOURCE_KEYS:
            raise SpecError(f"{source}: unknown resource {key!r} in 'resources'; known: "
                            f"{', '.join(RESOURCE_KEYS)}")
        if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value) \
                or value < 0:
            raise SpecError(f"{source}: resource {key!r} must be a number >= 0, got {value!r}")
        if key == "num_gpus" and value > 1 and value != int(value):
            raise SpecError(f"{source}: 'num_gpus' above 1 must be a whole number, got {value!r}")
        checked[key] = float(value)
    return checked


def job_resources(registry: Registry, job: Any, device: str) -> dict[str, float]:
    """What ``job`` asks for: per key, the most that its sanitizer or any of its cells' plugins
    asks for (with the defaults for what one leaves out). No GPU on a CPU run."""
    defaults = default_resources(device)
    # A job's sanitizer; a batch job's, one per cell (a cell that cannot join fits alone).
    names = dict.fromkeys(cell.sanitizer.name for cell in job.cells) or [job.sanitizer.name]
    plugins = [(registry.sanitizer(name), f"sanitizer {name!r}") for name in names]
    for cell in job.cells:
        plugin = (registry.attack if cell.kind == "attack" else registry.metric)(cell.plugin.name)
        plugins.append((plugin, f"{cell.kind} {cell.plugin.name!r}"))
    wanted: dict[str, float] = {}
    for plugin, source in plugins:
        for key, value in {**defaults, **declared_resources(plugin, source)}.items():
            wanted[key] = max(wanted.get(key, 0.0), value)
    if not device.startswith("cuda"):
        wanted["num_gpus"] = 0.0
    return wanted
