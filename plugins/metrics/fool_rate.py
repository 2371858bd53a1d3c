"""Fool rate (Martinsson et al., Table 1): how often a fixed classifier of the sensitive attribute,
trained on raw data, reads the value a generator-style sanitizer drew and rendered.

The classifier is the shared reference classifier of the sensitive attribute (trained to
convergence on the raw train split, :func:`ppbench.nn.reference_classifier`, the same model as the
fixed-classifier attack's). It is applied to the sanitized test split, and its guesses are compared
with the replacement values the sanitizer recorded per item (``Sanitized.records["replacement"]``,
which the harness lends to metrics and withholds from attacks). A sanitizer that renders its drawn
value convincingly scores near 1; one whose output still shows the true value scores near the
agreement of the true value with a uniform draw, 1/K (the chance reported with the figure).

Any sanitizer that records ``replacement`` is measured; for the others the cell is ``n/a``.
"""

from __future__ import annotations

from ppbench import Context, MetricValue, MetricView, Task, UtilityMetric, hookimpl


class FoolRate(UtilityMetric):
    """Share of sanitized test items on which a raw-trained classifier of the sensitive attribute
    predicts the replacement value the sanitizer drew (Martinsson et al., Table 1)."""

    name = "fool-rate"
    version = "1"
    description = ("How often a raw-trained classifier of the sensitive attribute reads the "
                   "replacement value a generator drew (Martinsson et al., Table 1).")
    requires_records = frozenset({"replacement"})

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        from ppbench.nn import predict_logits, reference_classifier
        from ppbench.scoring import wilson_interval

        drawn = view.records["test"]["replacement"].long().cpu()
        k = view.raw_train.num_classes(task.sensitive)
        if len(drawn) and (int(drawn.min()) < 0 or int(drawn.max()) >= k):
            raise ValueError(f"the recorded replacement values must be classes of "
                             f"{task.sensitive} (0..{k - 1})")
        model = reference_classifier(view.raw_train, task.sensitive, ctx)
        predicted = predict_logits(model, view.sanitized_test.images, ctx).argmax(dim=1).cpu()
        fooled = int((predicted == drawn).sum())
        low, high = wilson_interval(fooled, len(drawn))
        raw_predicted = predict_logits(model, view.raw_test.images, ctx).argmax(dim=1).cpu()
        return [
            MetricValue("fool_rate", fooled / max(1, len(drawn)), better="higher",
                        role="diagnostic", primary=True, ci_low=low, ci_high=high, chance=1.0 / k),
            # How often the drawn value happens to equal what the classifier reads on the raw item:
            # the agreement a sanitizer that leaves the input untouched would score.
            MetricValue("raw_agreement", float((raw_predicted == drawn).float().mean()),
                        better="lower", role="diagnostic", chance=1.0 / k),
            MetricValue.budget("reference_models", 1),
        ]


@hookimpl
def ppbench_register_metrics(register) -> None:
    register(FoolRate)
