"""The hooks a ppbench plugin implements: one per plugin kind, each taking a ``register`` callback
(simonw/llm style)::

    ppbench_register_datasets(register)     register(DatasetSpec(...))
    ppbench_register_sanitizers(register)   register(SanitizerClass)
    ppbench_register_attacks(register)      register(AttackClass)
    ppbench_register_metrics(register)      register(UtilityMetricClass)

A plugin module declares ``[project.entry-points.ppbench] my-name = "my_package.my_module"`` and
implements any of these with ``@hookimpl``. The specs are generated from
:data:`ppbench.kinds.PLUGIN_KINDS`, so a new plugin kind is declared in that table alone.
"""

from __future__ import annotations

from typing import Callable

import pluggy

from .kinds import PLUGIN_KINDS, PluginKind

hookspec = pluggy.HookspecMarker("ppbench")
hookimpl = pluggy.HookimplMarker("ppbench")


def _spec(kind: PluginKind) -> Callable[[Callable], None]:
    def spec(register: Callable) -> None: ...

    spec.__name__ = spec.__qualname__ = kind.hook
    spec.__doc__ = f"Call ``register(...)`` with {kind.registers} for each of the {kind.name} this plugin provides."
    return hookspec(spec)


for _kind in PLUGIN_KINDS.values():
    globals()[_kind.hook] = _spec(_kind)

__all__ = ["hookimpl", "hookspec", *(kind.hook for kind in PLUGIN_KINDS.values())]
