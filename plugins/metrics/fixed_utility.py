"""Martinsson et al.'s utility score: what fixed classifiers still read from sanitized images.

For a task with utility attributes, each kept attribute has its own reference classifier, trained
to convergence on the RAW train split and cached across tasks and sanitizers
(:func:`ppbench.nn.reference_classifier`; the fixed-classifier attack uses the same models). Each
is applied to the sanitized test split (their eq. 5) and scored by balanced accuracy (the mean
per-class recall over the classes present), so that a constant answer scores exactly chance
whatever the class balance. The figures:

- ``utility`` (primary): the mean over kept attributes of the chance-corrected balanced accuracy
  ``(bacc − 1/K) / (1 − 1/K)`` (K: the classes present in the test split), 0 for a black image
  (every classifier answers one constant class) and 1 for perfect; with a 95% percentile
  bootstrap interval over test items (one resample of the items for all attributes, seeded from
  the context). Plain accuracy would credit a black image with the majority-class rate of every
  attribute (0.58 on synthfaces' smiling task) and could rank noise below black;
- ``mean_bacc`` and ``bacc:<attribute>``: the uncorrected balanced accuracies;
- ``ceiling``: ``utility`` of the same classifiers on the raw test split, the most a sanitizer
  can keep (a diagnostic: an identity sanitizer scores it).

For a task without utility attributes (the 2-D toy problem), the utility is their synthetic score
(eq. 6): ``1 − d / epsilon_max`` with ``epsilon_max = 2``, where ``d`` is by default the mean
absolute difference over every coordinate of every test item, exactly the authors' public code
(``F.l1_loss(x, h(x))``, an elementwise mean), which is the scale of their privacy budgets
epsilon in {0.1, ..., 2}: a shift of (0.5, −0.5) has d = 0.5 and scores 0.75. ``distance="l2"``
reads the paper's text instead: d is the mean Euclidean norm ``‖x − h(x)‖₂`` per item (a larger
number for the same shift: √0.5 ≈ 0.71 here). The score is not clipped: moving points further
than ``epsilon_max`` scores below 0. For image data sets without utility attributes d is the mean
absolute pixel error (pixels lie in [0, 1]; the score is ``1 − MAE`` whatever ``distance`` and
``epsilon_max`` say). Both come with the same bootstrap interval over test items.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import TYPE_CHECKING, Sequence

from ppbench import Context, MetricValue, MetricView, Task, UtilityMetric, hookimpl

if TYPE_CHECKING:
    import numpy as np

DISTANCES = ("l1", "l2")
N_BOOTSTRAP = 1000
_BOOTSTRAP_STREAM = 4099  # the context's seed stream for the item resamples
_CHUNK_ITEMS = 2_000_000  # resampled items per vectorised bootstrap chunk (bounded memory)


def balanced_accuracy(truth: "np.ndarray", predicted: "np.ndarray") -> tuple[float, int]:
    """(mean per-class recall over the classes present in ``truth``, number of those classes)."""
    import numpy as np

    classes, inverse = np.unique(truth, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    hits = np.bincount(inverse, weights=(truth == predicted), minlength=len(classes))
    return float(np.mean(hits / counts)) if len(classes) else math.nan, len(classes)


def chance_corrected(bacc: float, k: int) -> float:
    """``(bacc − 1/K) / (1 − 1/K)``: 0 at chance, 1 perfect; NaN for a single class."""
    return (bacc - 1.0 / k) / (1.0 - 1.0 / k) if k >= 2 else math.nan


def bootstrap_corrected(truth: "np.ndarray", correct: "np.ndarray",
                         resamples: "np.ndarray") -> "np.ndarray":
    """Chance-corrected balanced accuracy of each resample (rows of item indices)."""
    import numpy as np

    classes, labels = np.unique(truth, return_inverse=True)
    k = len(classes)
    b = len(resamples)
    offsets = (np.arange(b) * k)[:, None]
    flat = (labels[resamples] + offsets).ravel()
    counts = np.bincount(flat, minlength=b * k).reshape(b, k)
    hits = np.bincount(flat, weights=correct[resamples].ravel(), minlength=b * k).reshape(b, k)
    present = counts > 0
    recall = np.divide(hits, counts, out=np.zeros_like(hits), where=present)
    k_present = present.sum(axis=1)
    bacc = recall.sum(axis=1) / np.maximum(k_present, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = (bacc - 1.0 / k_present) / (1.0 - 1.0 / k_present)
    return np.where(k_present >= 2, corrected, np.nan)


def bootstrap_interval(n: int, statistic, ctx: Context, n_boot: int = N_BOOTSTRAP,
                       stream: int = _BOOTSTRAP_STREAM) -> tuple[float, float]:
    """95% percentile interval of ``statistic(resamples)`` (B×n item indices → B figures), the
    resamples drawn from the context's seed and ``stream``."""
    import numpy as np

    if n < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng([ctx.seed % 2**63, stream])
    chunk = max(1, _CHUNK_ITEMS // n)
    figures = []
    for start in range(0, n_boot, chunk):
        resamples = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        figures.append(statistic(resamples))
    values = np.concatenate(figures)
    values = values[np.isfinite(values)]
    if not len(values):
        return (math.nan, math.nan)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


class FixedUtility(UtilityMetric):
    """Chance-corrected balanced accuracy of raw-trained classifiers, one per utility attribute, on
    sanitized test data (or Martinsson et al.'s synthetic distance score when a task has no
    utility attributes). ``epsilon_max`` and ``distance`` apply to the synthetic score on vector
    data only; see the module documentation."""

    name = "fixed-utility"
    version = "2"
    description = ("Chance-corrected balanced accuracy of a raw-trained reference classifier per "
                   "utility attribute on sanitized test images (Martinsson et al.'s utility score).")

    def __init__(self, epsilon_max: float = 2.0, distance: str = "l1") -> None:
        if (not isinstance(epsilon_max, Real) or isinstance(epsilon_max, bool)
                or not (math.isfinite(epsilon_max) and epsilon_max > 0)):
            raise ValueError(f"metric 'fixed-utility': parameter 'epsilon_max' must be a finite "
                             f"number > 0, got {epsilon_max!r}")
        if distance not in DISTANCES:
            raise ValueError(f"metric 'fixed-utility': parameter 'distance' must be one of "
                             f"{DISTANCES}, got {distance!r}")
        self.epsilon_max = epsilon_max
        self.distance = distance

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        if not task.utility:
            return self._synthetic_score(view, ctx)
        return self._classifier_scores(view, task.utility, ctx)

    def _classifier_scores(self, view: MetricView, attributes: Sequence[str],
                           ctx: Context) -> list[MetricValue]:
        import numpy as np

        from ppbench.nn import predict_logits, reference_classifier

        names = list(dict.fromkeys(attributes))
        truths, correct, baccs, ks, ceilings = [], [], [], [], []
        values: list[MetricValue] = []
        for attribute in names:
            model = reference_classifier(view.raw_train, attribute, ctx)
            truth = view.raw_test.labels[attribute].cpu().numpy().astype(np.int64)
            sanitized = predict_logits(model, view.sanitized_test.images, ctx).argmax(1).numpy()
            raw = predict_logits(model, view.raw_test.images, ctx).argmax(1).numpy()
            bacc, k = balanced_accuracy(truth, sanitized)
            raw_bacc, _ = balanced_accuracy(truth, raw)
            truths.append(truth)
            correct.append((sanitized == truth).astype(np.float64))
            baccs.append(bacc)
            ks.append(k)
            ceilings.append(chance_corrected(raw_bacc, k))
            values.append(MetricValue(f"bacc:{attribute}", bacc, better="higher", role="utility",
                                      chance=1.0 / k if k else None))

        def mean_corrected(resamples: "np.ndarray") -> "np.ndarray":
            per_attribute = np.stack([bootstrap_corrected(t, c, resamples)
                                      for t, c in zip(truths, correct)])
            with np.errstate(invalid="ignore"):
                return np.nanmean(per_attribute, axis=0) if np.isfinite(per_attribute).any() \
                    else np.full(len(resamples), np.nan)

        corrected = [chance_corrected(b, k) for b, k in zip(baccs, ks)]
        utility = _nanmean(corrected)
        low, high = bootstrap_interval(len(view.raw_test), mean_corrected, ctx)
        head = [
            MetricValue("utility", utility, better="higher", role="utility", primary=True,
                        ci_low=_finite(low), ci_high=_finite(high), chance=0.0),
            MetricValue("mean_bacc", _nanmean(baccs), better="higher", role="utility",
                        chance=_nanmean([1.0 / k for k in ks if k])),
            MetricValue("ceiling", _nanmean(ceilings), better="higher", role="diagnostic",
                        chance=0.0),
        ]
        # One raw-trained reference per kept attribute, each trained to convergence on the raw
        # train split under the profile's epoch cap.
        budget = [MetricValue.budget("reference_models", len(names)),
                  MetricValue.budget("training_items", len(view.raw_train)),
                  MetricValue.budget("max_epochs", ctx.profile.max_epochs)]
        return [v for v in head + values if math.isfinite(v.value)] + budget

    def _synthetic_score(self, view: MetricView, ctx: Context) -> list[MetricValue]:
        raw = view.raw_test.images.double().cpu()
        sanitized = view.sanitized_test.images.double().cpu()
        difference = (raw - sanitized).reshape(len(raw), -1)
        if raw.dim() == 4:
            # Pixels in [0, 1]: the mean absolute error is the distance and the budget is 1.
            per_item, scale = difference.abs().mean(dim=1), 1.0
        elif self.distance == "l1":
            # The authors' F.l1_loss: the mean over items of the mean over coordinates.
            per_item, scale = difference.abs().mean(dim=1), float(self.epsilon_max)
        else:
            per_item, scale = difference.norm(p=2, dim=1), float(self.epsilon_max)
        distances = per_item.numpy()
        score = 1.0 - float(distances.mean()) / scale
        low, high = bootstrap_interval(len(distances),
                               lambda resamples: 1.0 - distances[resamples].mean(axis=1) / scale, ctx)
        return [MetricValue("utility", score, better="higher", role="utility", primary=True,
                            ci_low=_finite(low), ci_high=_finite(high)),
                MetricValue("distance", float(distances.mean()), better="lower",
                            role="diagnostic")]


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@hookimpl
def ppbench_register_metrics(register) -> None:
    register(FixedUtility)
