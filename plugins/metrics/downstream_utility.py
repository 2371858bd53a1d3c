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
from typing import TYPE_CHECKING

from ppbench import Context, MetricValue, MetricView, NotApplicable, Task, UtilityMetric, hookimpl

if TYPE_CHECKING:
    import numpy as np

NAME = "downstream-utility"
N_BOOTSTRAP = 1000
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
        bacc, k = _balanced_accuracy(truth, ours)
        raw_bacc, _ = _balanced_accuracy(truth, theirs)
        ratio = _ratio(bacc, raw_bacc, k)
        low, high = _paired_interval(truth, ours == truth, theirs == truth, ctx)
        values = [
            MetricValue("utility", ratio, better="higher", role="utility", primary=True,
                        ci_low=low, ci_high=high, chance=0.0),
            MetricValue("bacc", bacc, better="higher", role="utility", chance=1.0 / k if k else None),
            MetricValue("raw_bacc", raw_bacc, better="higher", role="diagnostic"),
            MetricValue("epochs", float(fit.epochs), role="diagnostic"),
            MetricValue("raw_epochs", float(baseline.epochs), role="diagnostic"),
        ]
        return [v for v in values if math.isfinite(v.value)]


def _balanced_accuracy(truth: "np.ndarray", predicted: "np.ndarray") -> tuple[float, int]:
    import numpy as np

    classes, inverse = np.unique(truth, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    hits = np.bincount(inverse, weights=(truth == predicted), minlength=len(classes))
    return (float(np.mean(hits / counts)) if len(classes) else math.nan), len(classes)


def _ratio(bacc: float, raw_bacc: float, k: int) -> float:
    """Chance-corrected ``bacc`` over chance-corrected ``raw_bacc``; NaN when the raw model itself
    learns nothing (no baseline to be relative to)."""
    if k < 2:
        return math.nan
    raw = raw_bacc - 1.0 / k
    return (bacc - 1.0 / k) / raw if raw > 0 else math.nan


def _paired_interval(truth: "np.ndarray", ours: "np.ndarray", theirs: "np.ndarray",
                     ctx: Context) -> tuple[float | None, float | None]:
    """95% percentile interval of the ratio, resampling test items for both models at once."""
    import numpy as np

    n = len(truth)
    if n < 2:
        return None, None
    classes, labels = np.unique(truth, return_inverse=True)
    k = len(classes)
    rng = np.random.default_rng([ctx.seed % 2**63, _BOOTSTRAP_STREAM])
    ratios = []
    chunk = max(1, 2_000_000 // n)
    for start in range(0, N_BOOTSTRAP, chunk):
        resamples = rng.integers(0, n, size=(min(chunk, N_BOOTSTRAP - start), n))
        b = len(resamples)
        flat = (labels[resamples] + (np.arange(b) * k)[:, None]).ravel()
        counts = np.bincount(flat, minlength=b * k).reshape(b, k)
        present = counts > 0
        k_present = present.sum(axis=1)

        def bacc(correct: "np.ndarray") -> "np.ndarray":
            hits = np.bincount(flat, weights=correct[resamples].ravel().astype(np.float64),
                               minlength=b * k).reshape(b, k)
            recall = np.divide(hits, counts, out=np.zeros_like(hits), where=present)
            return recall.sum(axis=1) / np.maximum(k_present, 1)

        chance = 1.0 / np.maximum(k_present, 1)
        raw = bacc(theirs) - chance
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((raw > 0) & (k_present >= 2), (bacc(ours) - chance) / raw, np.nan)
        ratios.append(ratio)
    values = np.concatenate(ratios)
    values = values[np.isfinite(values)]
    if not len(values):
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


@hookimpl
def ppbench_register_metrics(register) -> None:
    register(DownstreamUtility)
