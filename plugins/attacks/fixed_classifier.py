"""A naive audit: a classifier trained on raw images, applied unchanged to sanitized ones.

It is the weakest check: a sanitizer that merely shifts the image distribution defeats it without
removing anything. It is here because audits like it are common, and the gap between it and the
adversarial classifier shows how misleading a non-adaptive check can be.
"""

from __future__ import annotations

import math

from ppbench import RAW_TRAIN, Attack, AttackResult, AttackView, Context, Task, hookimpl


class FixedClassifier(Attack):
    """Applies the reference classifier of the sensitive attribute (trained to convergence on the
    raw train split, and cached: the same model the fixed-utility metric uses when another task
    keeps that attribute) to the sanitized test split, and returns its class probabilities.

    Diagnostics: the reference classifier's ``reference_val_accuracy`` on the raw train split's
    validation part (how well it reads raw images) and ``reference_epochs``.
    """

    name = "fixed-classifier"
    version = "2"
    description = ("Converged classifier of the sensitive attribute trained on raw train images, "
                   "applied to sanitized test images (a naive, non-adaptive audit).")
    requires = frozenset({RAW_TRAIN})
    threat_model = "raw-trained"

    def run(self, view: AttackView, task: Task, ctx: Context) -> AttackResult:
        from ppbench.nn import predict_logits, reference_fit

        if view.raw_train is None:
            raise ValueError("attack 'fixed-classifier' requires the raw train split")
        reference = reference_fit(view.raw_train, task.sensitive, ctx)
        logits = predict_logits(reference.model, view.test.images, ctx)
        if task.sensitive in view.raw_train.attributes:
            predictions = logits.float().softmax(dim=1)
        else:
            predictions = logits.argmax(dim=1)  # the class count was inferred, not the data set's
        diagnostics = {"reference_val_accuracy": reference.val_accuracy,
                       "reference_epochs": float(reference.epochs)}
        return AttackResult(predictions=predictions,
                            diagnostics={k: v for k, v in diagnostics.items() if math.isfinite(v)},
                            budget={"reference_models": 1.0, "epochs": float(reference.epochs),
                                    "training_items": float(len(view.raw_train))})


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(FixedClassifier)
