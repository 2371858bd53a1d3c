"""The reference classifier: one multi-head model trained on RAW train data, shared by every cell.

The fixed-classifier attack (a naive audit: apply a classifier trained on raw images to sanitized
ones) and the fixed-utility metric (Martinsson et al.'s utility score) both use it. It does not
depend on the sanitizer, so it is trained once per (data set, task, seed) through
``ctx.shared``; both callers must ask for the same attribute list, the task's sensitive and
utility attributes (:func:`task_attributes`), so that they hit the same cache entry.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..api import Context, Task
from ..data import ImageSet
from .networks import build_classifier
from .training import train_classifier

# Bump when the architecture or the training recipe changes, so that cached models are retrained.
REFERENCE_VERSION = "1"
REFERENCE_KIND = "auto"  # SmallCNN for images, MLP for vectors
SHARED_NAME = "reference-classifier"
# A generator stream of its own, so that its shuffling does not coincide with an attack's.
_REFERENCE_STREAM = 7919


def task_attributes(task: Task) -> list[str]:
    """The attribute list every caller passes: the task's sensitive and utility attributes, sorted."""
    return sorted({task.sensitive, *task.utility})


def _train_payload(raw_train: ImageSet, attributes: list[str], ctx: Context) -> dict[str, Any]:
    head_sizes = {name: raw_train.num_classes(name) for name in attributes}
    model = build_classifier(REFERENCE_KIND, raw_train.shape, head_sizes, seed=ctx.seed)
    targets = {name: raw_train.labels[name] for name in attributes}
    train_classifier(model, raw_train.images, targets, ctx, desc="reference classifier",
                     generator=ctx.generator(stream=_REFERENCE_STREAM))
    # Cached as plain tensors and primitives, not as a pickled module: the store may load with
    # torch.load(weights_only=True), and the cache survives refactors of the module classes.
    return {
        "version": REFERENCE_VERSION,
        "kind": REFERENCE_KIND,
        "input_shape": list(raw_train.shape),
        "head_sizes": head_sizes,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }



def _model_from_payload(payload: dict[str, Any]) -> nn.Module:
    model = build_classifier(payload["kind"], payload["input_shape"], dict(payload["head_sizes"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def reference_classifier(raw_train: ImageSet, attributes: Sequence[str], ctx: Context) -> nn.Module:
    """A :class:`~ppbench.nn.MultiHead` classifier trained on raw ``raw_train`` for ``attributes``
    (one head each), on the CPU in eval mode. Cached with ``ctx.shared`` per attribute list,
    input shape, size of the train split and training recipe; every call returns a fresh module
    loaded from the cached weights, so callers may move or modify it freely.
    """
    names = sorted(set(attributes))
    missing = [name for name in names if name not in raw_train.labels]
    if missing:
        raise KeyError(f"reference classifier: raw train split has no labels {missing}")
    payload = ctx.shared(
        SHARED_NAME,
        lambda: _train_payload(raw_train, names, ctx),
        attributes=names,
        version=REFERENCE_VERSION,
        kind=REFERENCE_KIND,
        input_shape=list(raw_train.shape),
        n_train=len(raw_train),
        epochs=ctx.profile.max_epochs,
        batch_size=ctx.profile.batch_size,
    )
    return _model_from_payload(payload).to(torch.device("cpu"))
