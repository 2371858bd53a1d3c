"""A naive audit: a classifier trained on raw images, applied unchanged to sanitized ones.

It is the weakest check: a sanitizer that merely shifts the image distribution defeats it without
removing anything. It is here because audits like it are common, and the gap between it and the
adversarial classifier shows how misleading a non-adaptive check can be.
"""

from __future__ import annotations

from ppbench import RAW_TRAIN, Attack, AttackResult, AttackView, Context, Task, hookimpl


class FixedClassifier(Attack):
    """Applies the shared reference classifier (trained on the raw train split) to the sanitized
    test split and reads its sensitive-attribute head."""

    name = "fixed-classifier"
    version = "1"
    description = ("Reference classifier trained on raw train images, applied to sanitized test "
                   "images (a naive, non-adaptive audit).")
    requires = frozenset({RAW_TRAIN})
    threat_model = "raw-trained"

    def run(self, view: AttackView, task: Task, ctx: Context) -> AttackResult:
        from ppbench.nn import predict_logits, reference_classifier, task_attributes

        if view.raw_train is None:
            raise ValueError("attack 'fixed-classifier' requires the raw train split")
        # The same attribute list as the fixed-utility metric, so that both share one model.
        model = reference_classifier(view.raw_train, task_attributes(task), ctx)
        logits = predict_logits(model, view.test.images, ctx)[task.sensitive]
        if task.sensitive not in view.raw_train.attributes:
            logits = logits.argmax(dim=1)  # the head's size was inferred, not the data set's
        return AttackResult(predictions=logits)


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(FixedClassifier)
