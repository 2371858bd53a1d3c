"""stego-detector: does a vendor's build differ from the honest model it claims to be?

The honest reference is the payload-free model that a sanitizer declares itself a variant of
(``Sanitizer.honest_reference``; ``ppgan-subverted`` declares ``ppgan``), configured with the
vendor's parameters that it takes and fitted and applied with the same seeds
(:mod:`ppbench.honest_reference`). An auditor who can run both on the same inputs holds pairs of
outputs that differ by exactly what the vendor adds. This detector is given both models' outputs
for the attack split (:class:`~ppbench.ReferenceDetectorView`), trains a CNN to tell the vendor's
from the reference's on their SRM high-pass residuals and the pixels (where a payload at low
amplitude shows; :mod:`ppbench.plugins.attacks.residual_probe`), with early stopping on a
held-out part, and scores every candidate by the log-odds of "vendor". The harness scores the
scores by AUC (the ``reference-detector`` kind, shown beside the ranking).

It answers a different question from the attribute attacks: not "does the output leak the
secret to me" but "is there anything in it the honest model does not put there". A keyed payload
that no keyless attack reads may still be detected; the board then shows a vendor's build that
hides something, which is what an auditor needs to know before trusting it. Sanitizers that
declare no honest reference get ``n/a``.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

from ppbench import HONEST_REFERENCE, Attack, Context, DetectionResult, ReferenceDetectorView, Task, hookimpl

from .residual_probe import srm_residuals

NAME = "stego-detector"


def _features(images: "Any") -> "Any":
    import torch

    return torch.cat([images.float(), srm_residuals(images)], dim=1)


class StegoDetector(Attack):
    """A CNN on pixels and SRM residuals, trained to tell the sanitizer's outputs from its honest
    reference's for the same inputs; scores each candidate by the log-odds of "the sanitizer's".
    ``width`` is the CNN's; ``max_epochs`` and ``patience`` default to the profile's."""

    name = NAME
    version = "1"
    kind = "reference-detector"
    description = ("Steganalysis of a vendor's build: a CNN on pixels and SRM residuals tells the "
                   "sanitizer's outputs from its declared honest reference's; scored by AUC.")
    requires = frozenset({HONEST_REFERENCE})
    threat_model = "reference-distinguisher"

    def __init__(self, width: int = 32, max_epochs: int | None = None, patience: int | None = None) -> None:
        for key, value in (("width", width), ("max_epochs", max_epochs), ("patience", patience)):
            allowed_none = key != "width"
            if value is None and allowed_none:
                continue
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"attack {NAME!r}: parameter {key!r} must be an integer >= 1"
                                 f"{' or None' if allowed_none else ''}, got {value!r}")
        self.width = width
        self.max_epochs = max_epochs
        self.patience = patience

    def run(self, view: ReferenceDetectorView, task: Task, ctx: Context) -> DetectionResult:
        import torch

        from ppbench.nn import build_classifier, default_width, fit_classifier, predict_logits

        suspect, reference = view.suspect.images, view.reference.images
        if suspect.dim() != 4:
            raise ValueError(f"attack {NAME!r} analyses images; got items of shape {tuple(suspect.shape[1:])}")
        features = _features(torch.cat([suspect, reference]))
        labels = torch.cat([torch.ones(len(suspect), dtype=torch.long),
                            torch.zeros(len(reference), dtype=torch.long)])
        model = build_classifier("cnn", tuple(features.shape[1:]), 2, width=self.width, seed=ctx.seed)
        result = fit_classifier(model, features, labels, ctx, max_epochs=self.max_epochs,
                                patience=self.patience, validation=0.2, desc=f"{NAME}: vendor or reference",
                                generator=ctx.generator(stream=7))
        logits = predict_logits(result.model, _features(view.candidates), ctx).float()
        diagnostics = {"train_accuracy": result.train_accuracy, "val_accuracy": result.val_accuracy,
                       "epochs": float(result.epochs)}
        budget = {"epochs": float(result.epochs), "training_items": float(len(features)),
                  "max_epochs": float(self.max_epochs or ctx.profile.max_epochs),
                  "width": float(self.width or default_width("cnn", tuple(features.shape[1:])))}
        return DetectionResult(scores=logits[:, 1] - logits[:, 0],
                               diagnostics={k: v for k, v in diagnostics.items() if math.isfinite(v)},
                               budget=budget)


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(StegoDetector)
