"""real-fake: a detector of sanitized versus raw items (Martinsson et al.'s argument against the
generator alone, which can pass its input through when the drawn value equals the true one).

A fresh classifier (SmallCNN for images, MLP for vectors, as the adversarial classifier) learns
"sanitized" from the sanitized attack split and "raw" from public raw data (``aux``), the same
number of each, to convergence with early stopping on a validation part. It scores every candidate
of its :class:`~ppbench.DetectorView` by the log-odds of "sanitized"; the harness scores the scores
by AUC (the ``detector`` scoring kind), which the board shows beside the ranking.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

from ppbench import AUX, Attack, Context, DetectionResult, DetectorView, Task, hookimpl

NAME = "real-fake"
ARCHITECTURES = ("auto", "cnn", "resnet10", "resnet18", "mlp")


class RealFake(Attack):
    """Trains a classifier to tell sanitized from raw items and scores each candidate by the
    log-odds of "sanitized". ``arch`` and ``width`` as for the adversarial classifier;
    ``max_epochs`` and ``patience`` default to the profile's."""

    name = NAME
    version = "1"
    kind = "detector"
    description = ("Detector of sanitized versus raw items, trained on the sanitized attack split "
                   "and public raw data; scored by AUC (chance 0.5).")
    requires = frozenset({AUX})
    threat_model = "distinguisher"

    def __init__(self, arch: str = "auto", width: int | None = None, max_epochs: int | None = None,
                 patience: int | None = None) -> None:
        if arch not in ARCHITECTURES:
            raise ValueError(f"attack {NAME!r}: parameter 'arch' must be one of {ARCHITECTURES}, "
                             f"got {arch!r}")
        for key, value in (("width", width), ("max_epochs", max_epochs), ("patience", patience)):
            if value is not None and (not isinstance(value, Integral) or isinstance(value, bool)
                                      or value < 1):
                raise ValueError(f"attack {NAME!r}: parameter {key!r} must be None or an integer "
                                 f">= 1, got {value!r}")
        self.arch = arch
        self.width = width
        self.max_epochs = max_epochs
        self.patience = patience

    def run(self, view: DetectorView, task: Task, ctx: Context) -> DetectionResult:
        import torch

        from ppbench.nn import build_classifier, default_width, fit_classifier, predict_logits

        if view.raw is None:
            raise ValueError("real-fake needs raw items (aux) to learn what raw data look like")
        # Balanced classes: as many of each as the smaller side has.
        n = min(len(view.sanitized), len(view.raw))
        generator = ctx.generator(stream=2)
        sanitized = view.sanitized.images[torch.randperm(len(view.sanitized), generator=generator)[:n]]
        raw = view.raw.images[torch.randperm(len(view.raw), generator=generator)[:n]]
        images = torch.cat([sanitized, raw])
        labels = torch.cat([torch.ones(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)])
        model = build_classifier(self.arch, tuple(images.shape[1:]), 2, width=self.width, seed=ctx.seed)
        result = fit_classifier(model, images, labels, ctx, max_epochs=self.max_epochs,
                                patience=self.patience, validation=0.2, desc="real/fake detector",
                                generator=ctx.generator(stream=3))
        logits = predict_logits(result.model, view.candidates, ctx).float()
        diagnostics: dict[str, Any] = {"train_accuracy": result.train_accuracy,
                                       "val_accuracy": result.val_accuracy,
                                       "epochs": float(result.epochs)}
        budget = {"epochs": float(result.epochs), "training_items": float(len(images)),
                  "max_epochs": float(self.max_epochs or ctx.profile.max_epochs),
                  "width": float(self.width or default_width(self.arch, tuple(images.shape[1:])))}
        return DetectionResult(scores=logits[:, 1] - logits[:, 0],
                               diagnostics={k: v for k, v in diagnostics.items() if math.isfinite(v)},
                               budget=budget)


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(RealFake)
