"""Honest references: the payload-free model that a sanitizer declares itself a variant of.

A vendor's build of a published sanitizer (Liu et al.'s subverted PP-GAN) declares
``honest_reference = "<registered name>"``. The harness then

- configures the reference with the parameters of the vendor's configuration that the reference
  takes (the vendor's own, such as a key, are dropped): :func:`reference_config`;
- fits and applies the vendor's model with the seeds of the reference's configuration (the fit
  seed derives from the reference's fit key in :mod:`ppbench.jobs`), so that a deterministic
  vendor whose honest part is the reference's code differs from it by exactly what it adds, and a
  board that holds both rows compares the same model with and without the payload;
- hands a ``reference-detector`` attack the reference's outputs beside the vendor's, for the same
  inputs (the reference's fit is cached like any other, so a board that also lists the reference
  as a row fits it once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import PluginConfig

if TYPE_CHECKING:
    from .registry import Registry


def reference_config(registry: "Registry", config: PluginConfig) -> tuple[PluginConfig | None, str | None]:
    """``(the honest reference's configuration, None)``; ``(None, None)`` when the sanitizer
    declares none; ``(None, why)`` when it declares one that cannot be used."""
    cls = registry.sanitizer(config.name)
    name = getattr(cls, "honest_reference", None)
    if name is None:
        return None, None
    if not isinstance(name, str) or not name or name == config.name:
        return None, (f"sanitizer {config.name!r} declares honest_reference {name!r}, which must "
                      "name another registered sanitizer")
    try:
        reference = registry.sanitizer(name)
    except KeyError:
        return None, (f"sanitizer {config.name!r} declares honest_reference {name!r}, which is not "
                      "registered (install the plugin that provides it)")
    accepted = reference.param_defaults()
    return PluginConfig.make(name, {k: v for k, v in config.kwargs.items() if k in accepted}), None
