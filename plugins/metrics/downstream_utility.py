"""Downstream utility: what a model trained on sanitized data is worth on real data.

The protocol of the DeepPrivacy2 authors and of Safe Fakes: the party that receives sanitized
images trains its own task model on them and deploys it on real ones. A classifier of a kept
attribute is trained, to convergence (early stopping, the reference classifiers' recipe and
network, :func:`ppbench.nn.train_with_reference_recipe`), on the sanitized attack split with that
attribute's labels, and tested on the RAW test split. The same learner trained on the raw attack
split (the very items, unsanitized; cached per data set, seed and attribute, so every sanitizer of
a run is compared with one baseline) gives the reference. The figures:

- ``utility`` (primary): the ratio of their chance-corrected balanced accuracies on the raw test
  split, ``(bacc_sanitized − 1/K) / (bacc_raw − 1/K)``: 1 when training on sanitized images costs
  nothing, 0 when the model learns nothing (a black image), with a 95% percentile bootstrap
  interval over test items (both models' predictions resampled together: a paired interval);
- ``bacc``: the sanitized-trained model's balanced accuracy on raw test images (utility role);
- ``raw_bacc``, ``epochs``, ``raw_epochs``: the baseline's balanced accuracy and both trainings'
  epochs (diagnostics: the budget behind the figure).

``fixed-utility`` asks the opposite question (a raw-trained model applied to sanitized images);
the two disagree exactly when a sanitizer moves images off the raw distribution while keeping the
attribute readable (a colour shift), or keeps it only in a form a raw model reads.

``attribute`` names the kept attribute (default: the task's first utility attribute). A task
without utility attributes has nothing downstream to learn: the cell is n/a.
"""

from __future__ import annotations

import math

from ppbench import Context, MetricValue, MetricView, NotApplicable, Task, UtilityMetric, hookimpl

# The utility score's estimators: one balanced accuracy and one bootstrap for both metrics.
from .fixed_utility import balanced_accuracy, bootstrap_corrected, bootstrap_interval, chance_corrected

NAME = "downstream-utility"
_BOOTSTRAP_STREAM = 4111  # the context's seed stream for the item resamples


class DownstreamUtility(UtilityMetric):
    """A task model trained on sanitized attack images, tested on raw test images, relative to
    the same model trained on the raw attack images."""

    name = NAME
    version = "1"
    description = ("Chance-corrected balanced accuracy on raw test images of a kept-attribute "
                   "classifier trained on sanitized images, relative to the same classifier trained "
                   "on raw images (train on sanitized, test on real).")

    def __init__(self, attribute: str | None = None) -> None:
        if attribute is not None and (not isinstance(attribute, str) or not attribute):
            raise ValueError(f"metric {NAME!r}: parameter 'attribute' must be an attribute name, "
                             f"got {attribute!r}")
        self.attribute = attribute

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        import numpy as np

        from ppbench.nn import predict_logits, reference_fit, train_with_reference_recipe

        attribute = self.attribute or (task.utility[0] if task.utility else None)
        if attribute is None:
            raise NotApplicable(f"{NAME}: task {task.name!r} keeps no utility attribute to learn "
                                f"downstream; name one with attribute=")
        if attribute == task.sensitive:
            raise ValueError(f"metric {NAME!r}: attribute {attribute!r} is the sensitive one; "
                             f"downstream utility is about a kept attribute")
        if attribute not in view.sanitized_attack.labels:
            raise ValueError(f"metric {NAME!r}: the data set has no attribute {attribute!r} "
                             f"(it has {', '.join(sorted(view.sanitized_attack.labels))})")
        baseline = reference_fit(view.raw_attack, attribute, ctx, split="attack")
        model, fit = train_with_reference_recipe(view.sanitized_attack, attribute, ctx,
                                                 desc=f"{NAME} ({attribute})")
        truth = view.raw_test.labels[attribute].cpu().numpy().astype(np.int64)
        ours = predict_logits(model, view.raw_test.images, ctx).argmax(1).numpy()
        theirs = predict_logits(baseline.model, view.raw_test.images, ctx).argmax(1).numpy()
        bacc, k = balanced_accuracy(truth, ours)
        raw_bacc, _ = balanced_accuracy(truth, theirs)
        ratio = _ratio(bacc, raw_bacc, k)
        mine, baseline_correct = (ours == truth).astype(np.float64), (theirs == truth).astype(np.float64)

        def ratios(resamples: "np.ndarray") -> "np.ndarray":  # both models on the same resample
            raw = bootstrap_corrected(truth, baseline_correct, resamples)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(raw > 0, bootstrap_corrected(truth, mine, resamples) / raw, np.nan)

        low, high = bootstrap_interval(len(truth), ratios, ctx, stream=_BOOTSTRAP_STREAM)
        values = [
            MetricValue("utility", ratio, better="higher", role="utility", primary=True,
                        ci_low=low if math.isfinite(low) else None,
                        ci_high=high if math.isfinite(high) else None, chance=0.0),
            MetricValue("bacc", bacc, better="higher", role="utility", chance=1.0 / k if k else None),
            MetricValue("raw_bacc", raw_bacc, better="higher", role="diagnostic"),
            MetricValue("epochs", float(fit.epochs), role="diagnostic"),
            MetricValue("raw_epochs", float(baseline.epochs), role="diagnostic"),
            MetricValue.budget("epochs", fit.epochs),
            MetricValue.budget("max_epochs", ctx.profile.max_epochs),
            MetricValue.budget("training_items", len(view.sanitized_attack)),
            MetricValue.budget("reference_models", 1),
        ]
        return [v for v in values if math.isfinite(v.value)]


def _ratio(bacc: float, raw_bacc: float, k: int) -> float:
    """Chance-corrected ``bacc`` over chance-corrected ``raw_bacc``; NaN when the raw model itself
    learns nothing (no baseline to be relative to)."""
    raw = chance_corrected(raw_bacc, k)
    return chance_corrected(bacc, k) / raw if raw > 0 else math.nan


@hookimpl
def ppbench_register_metrics(register) -> None:
    register(DownstreamUtility)
