"""The hooks a ppbench plugin implements. Each takes a ``register`` callback (simonw/llm style).

A plugin module declares ``[project.entry-points.ppbench] my-name = "my_package.my_module"`` and
implements any of these with ``@hookimpl``.
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("ppbench")
hookimpl = pluggy.HookimplMarker("ppbench")


@hookspec
def ppbench_register_datasets(register: Callable) -> None:
    """Call ``register(DatasetSpec(...))`` for each data set this plugin provides."""


@hookspec
def ppbench_register_sanitizers(register: Callable) -> None:
    """Call ``register(SanitizerClass)`` for each :class:`ppbench.Sanitizer` subclass."""


@hookspec
def ppbench_register_attacks(register: Callable) -> None:
    """Call ``register(AttackClass)`` for each :class:`ppbench.Attack` subclass."""


@hookspec
def ppbench_register_metrics(register: Callable) -> None:
    """Call ``register(MetricClass)`` for each :class:`ppbench.UtilityMetric` subclass."""
