"""Reference classifiers: one converged classifier per attribute, trained on RAW train data.

The fixed-classifier attack (a naive audit: apply a classifier trained on raw images to sanitized
ones) and the fixed-utility metric (Martinsson et al.'s utility score) both read them. Each
attribute has a classifier of its own (no trunk shared between attributes: a trunk also trained on
the sensitive attribute would carry it into every utility head). It does not depend on the
sanitizer or on the task, so it is trained once per (data set, seed, profile) and attribute
through ``ctx.shared``, keyed by the attribute, the size and item shape of the raw train split and
the recipe: the smiling and identity tasks share the ``young`` classifier, and the
fixed-classifier attack of the smiling task uses the same ``smiling`` classifier as the utility
metric of any task that keeps smiling.

Training uses the shared loop (:func:`~ppbench.nn.fit_classifier`) with the adversarial
classifier's recipe: early stopping on a stratified validation split of the raw train split,
capped by the profile's ``max_epochs`` and ``patience``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..api import Context
from ..data import ImageSet
from .networks import build_classifier, default_width
from .training import DEFAULT_AVERAGE, DEFAULT_LR, FitResult, fit_classifier

# Bump when the architecture or the training recipe changes, so that cached models are retrained.
REFERENCE_VERSION = "2"
REFERENCE_KIND = "auto"  # SmallCNN for images, MLP for vectors
SHARED_NAME = "reference-classifier"
# The adversarial classifier's recipe (see its module for the measurements behind it).
REFERENCE_LR = DEFAULT_LR
REFERENCE_AVERAGE = DEFAULT_AVERAGE
# A generator stream of its own, so that its shuffling does not coincide with an attack's.
_REFERENCE_STREAM = 7919


@dataclass
class ReferenceClassifier:
    """A reference classifier and how its training went (figures on the raw train split's own
    validation part, in eval mode)."""

    attribute: str
    model: nn.Module
    num_classes: int
    train_accuracy: float
    val_accuracy: float
    epochs: int


def train_with_reference_recipe(split: ImageSet, attribute: str, ctx: Context,
                                desc: str | None = None) -> tuple[nn.Module, FitResult]:
    """A classifier of ``attribute`` trained on ``split`` exactly as the reference classifiers
    are (same network, width and early-stopped recipe), uncached: for comparisons that need the
    same learner on other data (a classifier trained on a released surrogate set versus the
    reference trained on the real one)."""
    num_classes = split.num_classes(attribute)
    width = default_width(REFERENCE_KIND, split.shape)
    model = build_classifier(REFERENCE_KIND, split.shape, num_classes, width=width, seed=ctx.seed)
    result = fit_classifier(model, split.images, split.labels[attribute], ctx,
                            lr=REFERENCE_LR, average=REFERENCE_AVERAGE,
                            desc=desc or f"reference classifier ({attribute})",
                            generator=ctx.generator(stream=_REFERENCE_STREAM))
    return model, result


def _train_payload(raw_train: ImageSet, attribute: str, ctx: Context) -> dict[str, Any]:
    num_classes = raw_train.num_classes(attribute)
    width = default_width(REFERENCE_KIND, raw_train.shape)
    model, result = train_with_reference_recipe(raw_train, attribute, ctx)
    # Plain tensors, strings and numbers only, not a pickled module: the payload loads with
    # torch.load(weights_only=True) (tests/test_nn.py checks it), and survives refactors of the
    # module classes. NaN (no validation part) is stored as None.
    return {
        "version": REFERENCE_VERSION,
        "kind": REFERENCE_KIND,
        "width": int(width),
        "attribute": attribute,
        "input_shape": [int(s) for s in raw_train.shape],
        "num_classes": int(num_classes),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "train_accuracy": _finite_or_none(result.train_accuracy),
        "val_accuracy": _finite_or_none(result.val_accuracy),
        "epochs": int(result.epochs),
    }


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _model_from_payload(payload: dict[str, Any]) -> nn.Module:
    model = build_classifier(payload["kind"], payload["input_shape"], int(payload["num_classes"]),
                             width=int(payload["width"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def reference_fit(raw_train: ImageSet, attribute: str, ctx: Context,
                  split: str = "train") -> ReferenceClassifier:
    """The reference classifier of ``attribute`` with its training figures; see
    :func:`reference_classifier`. ``split`` names the raw split it is trained on when it is not
    the train split (the downstream-utility metric's raw baseline is trained on the raw attack
    split, the very items its sanitized counterpart is trained on), and keys the cache apart."""
    if attribute not in raw_train.labels:
        raise KeyError(f"reference classifier: raw {split} split has no labels for {attribute!r}")
    payload = ctx.shared(
        SHARED_NAME,
        lambda: _train_payload(raw_train, attribute, ctx),
        **({} if split == "train" else {"split": split}),
        attribute=attribute,
        version=REFERENCE_VERSION,
        kind=REFERENCE_KIND,
        width=default_width(REFERENCE_KIND, raw_train.shape),
        input_shape=[int(s) for s in raw_train.shape],
        n_train=len(raw_train),
        num_classes=raw_train.num_classes(attribute),
        max_epochs=ctx.profile.max_epochs,
        patience=ctx.profile.patience,
        batch_size=ctx.profile.batch_size,
        lr=REFERENCE_LR,
        average=REFERENCE_AVERAGE,
    )
    model = _model_from_payload(payload).to(torch.device("cpu"))
    nan = float("nan")
    return ReferenceClassifier(
        attribute=attribute, model=model, num_classes=int(payload["num_classes"]),
        train_accuracy=nan if payload["train_accuracy"] is None else payload["train_accuracy"],
        val_accuracy=nan if payload["val_accuracy"] is None else payload["val_accuracy"],
        epochs=int(payload["epochs"]))


def reference_classifier(raw_train: ImageSet, attribute: str, ctx: Context) -> nn.Module:
    """A classifier of ``attribute`` trained on the raw ``raw_train`` split, on the CPU in eval
    mode; it returns logits (N×K).

    Cached with ``ctx.shared`` per attribute (not per task), input shape, size of the train
    split, class count and training recipe; every call returns a fresh module loaded from the
    cached weights, so callers may move or modify it freely.
    """
    return reference_fit(raw_train, attribute, ctx).model


def reference_classifiers(raw_train: ImageSet, attributes: Sequence[str],
                          ctx: Context) -> dict[str, nn.Module]:
    """:func:`reference_classifier` for each of ``attributes`` (one model each)."""
    return {name: reference_classifier(raw_train, name, ctx) for name in dict.fromkeys(attributes)}
