"""Release mode: a sanitizer that publishes a synthetic surrogate data set instead of transforming.

A sanitizer with the ``release`` capability (Webster et al.'s private data surrogates) is fitted on
the train split like any other, and then asked for ``release(n, ctx)``: a labelled surrogate set
D' = {(G(z), C(G(z)))}. The harness checks it (:func:`check_release`) and caches it with the fit,
as it caches a transform's sanitized splits. Nothing of the data is transformed, so what the cells
see is defined here, in one place:

- **attribute attacks** answer "can the sensitive attribute of real people be inferred from what
  was released?": the view's ``attack`` split is the release with its released labels, and its
  ``test`` split the real test images (no labels); the harness scores the predictions on real
  people exactly as for a transform. An attack applies to releases only when it declares so
  (``Attack.applies_to``); one that reads raw data only (a fixed raw-trained classifier) would
  score the raw test split and say nothing about the release, so its cell is ``n/a``;
- the **oracle** does not exist (there is no transform to query), so attacks requiring it are n/a;
- **metrics** see the release (``MetricView.release``); those that measure transformed images are
  n/a unless they declare ``applies_to`` with ``release``;
- **membership attacks** work on either mode (``ppbench.membership``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .api import RELEASE, TRANSFORM, PluginContractError, Task
from .data import Attribute, ImageSet

if TYPE_CHECKING:
    import torch


def sanitizer_mode(sanitizer: Any) -> str:
    """``release`` or ``transform`` for a sanitizer class or instance."""
    return RELEASE if RELEASE in getattr(sanitizer, "capabilities", frozenset()) else TRANSFORM


def mode_problem(plugin: Any, label: str, sanitizer: str, mode: str) -> str | None:
    """Why a plugin's cell is n/a against a sanitizer of ``mode``, or None when it applies."""
    applies = frozenset(getattr(plugin, "applies_to", frozenset({TRANSFORM})))
    if mode in applies:
        return None
    if mode == RELEASE:
        return (f"{label} does not apply to releases (sanitizer {sanitizer!r} publishes a "
                "surrogate data set and transforms nothing; a plugin that applies declares "
                "applies_to = {'transform', 'release'})")
    return f"{label} applies to releases only, and sanitizer {sanitizer!r} transforms images"


def check_release(release: Any, task: Task, attributes: Mapping[str, Attribute],
                  item_shape: tuple[int, ...], source: str) -> ImageSet:
    """A sanitizer's release, validated and copied to the CPU: float32 images of the data's item
    shape in [0, 1] and, for every attribute of the task, one int64 label per image in range.
    Labels of other attributes are dropped; the attribute descriptions are the data set's."""
    import torch

    if not isinstance(release, ImageSet):
        raise PluginContractError(f"{source}: release() must return an ImageSet, got "
                                  f"{type(release).__name__}")
    images = release.images
    if not isinstance(images, torch.Tensor) or not images.dtype.is_floating_point:
        raise PluginContractError(f"{source}: the released images must be a float tensor")
    if images.dim() < 2 or tuple(images.shape[1:]) != tuple(item_shape):
        raise PluginContractError(f"{source}: released images must have the data's item shape "
                                  f"{tuple(item_shape)}, got {tuple(images.shape[1:])}")
    if len(images) < 2:
        raise PluginContractError(f"{source}: a release needs at least 2 items, got {len(images)}")
    images = images.detach().to("cpu", torch.float32)
    if not torch.isfinite(images).all():
        raise PluginContractError(f"{source}: the released images contain NaN or inf")
    if images.dim() == 4:
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-4 or hi > 1 + 1e-4:
            raise PluginContractError(f"{source}: released images must lie in [0, 1], found "
                                      f"[{lo:.4g}, {hi:.4g}]")
        images = images.clamp(0.0, 1.0)
    labels: dict[str, torch.Tensor] = {}
    for name in (task.sensitive, *task.utility):
        values = release.labels.get(name)
        if not isinstance(values, torch.Tensor):
            raise PluginContractError(f"{source}: the release has no labels of {name!r}; label every "
                                      f"attribute of task {task.name!r} "
                                      f"({', '.join((task.sensitive, *task.utility))})")
        if values.dtype.is_floating_point or values.dim() != 1 or len(values) != len(images):
            raise PluginContractError(f"{source}: released labels of {name!r} must be one integer "
                                      f"per image ({len(images)}), got {values.dtype} "
                                      f"{tuple(values.shape)}")
        k = attributes[name].num_classes
        values = values.detach().to("cpu", torch.int64)
        if int(values.min()) < 0 or int(values.max()) >= k:
            raise PluginContractError(f"{source}: released labels of {name!r} must lie in 0..{k - 1}")
        labels[name] = values.clone()
    return ImageSet(images.clone(), labels, {name: attributes[name] for name in labels})

