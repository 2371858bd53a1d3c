"""Martinsson et al.'s utility score: what fixed classifiers still read from sanitized images.

For a task with utility attributes, the utility is the mean accuracy, over those attributes, of the
reference classifier (trained once on RAW train data, shared with the fixed-classifier attack)
applied to the sanitized test split (their eq. 5). ``raw_utility`` is the same on the raw test
split: the ceiling a sanitizer can at best keep.

For a task without utility attributes (the 2-D toy problem), the utility is their synthetic score
(eq. 6): ``1 − mean_i d(x_i, h(x_i)) / epsilon_max`` with ``epsilon_max = 2``, where ``d`` is the
per-item L1 distance by default (REFERENCE.md: the public code used an L1 distortion; the paper's
text calls ``d`` the L2 norm, available as ``distance="l2"``). It is not clipped: a sanitizer that
moves points further than ``epsilon_max`` on average scores below 0. For image data sets without
utility attributes ``d`` is the mean absolute pixel error instead (pixels lie in [0, 1], so the
score is ``1 − MAE`` and ``epsilon_max`` does not apply).
"""

from __future__ import annotations

from numbers import Real

from ppbench import Context, MetricValue, MetricView, Task, UtilityMetric, hookimpl

DISTANCES = ("l1", "l2")


class FixedUtility(UtilityMetric):
    """Mean accuracy of raw-trained classifiers for the utility attributes on sanitized test data
    (or Martinsson et al.'s synthetic distance score when a task has no utility attributes)."""

    name = "fixed-utility"
    version = "1"
    description = ("Accuracy of the raw-trained reference classifier for each utility attribute on "
                   "sanitized test images (Martinsson et al.'s utility score).")

    def __init__(self, epsilon_max: float = 2.0, distance: str = "l1") -> None:
        if not isinstance(epsilon_max, Real) or isinstance(epsilon_max, bool) or not epsilon_max > 0:
            raise ValueError(f"metric 'fixed-utility': parameter 'epsilon_max' must be a number > 0, "
                             f"got {epsilon_max!r}")
        if distance not in DISTANCES:
            raise ValueError(f"metric 'fixed-utility': parameter 'distance' must be one of "
                             f"{DISTANCES}, got {distance!r}")
        self.epsilon_max = epsilon_max
        self.distance = distance

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        if not task.utility:
            return [self._synthetic_score(view)]
        return self._classifier_scores(view, task, ctx)

    def _classifier_scores(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        from ppbench.nn import accuracy, predict_logits, reference_classifier, task_attributes

        # The same attribute list as the fixed-classifier attack, so that both share one model.
        model = reference_classifier(view.raw_train, task_attributes(task), ctx)
        sanitized = predict_logits(model, view.sanitized_test.images, ctx)
        raw = predict_logits(model, view.raw_test.images, ctx)
        values: list[MetricValue] = []
        sanitized_accuracies, raw_accuracies = [], []
        for attribute in task.utility:
            truth = view.raw_test.labels[attribute]
            kept = accuracy(sanitized[attribute], truth)
            sanitized_accuracies.append(kept)
            raw_accuracies.append(accuracy(raw[attribute], truth))
            values.append(MetricValue(f"acc:{attribute}", kept, better="higher", role="utility",
                                      chance=view.raw_test.chance(attribute)))
        mean_chance = sum(view.raw_test.chance(a) for a in task.utility) / len(task.utility)
        values.insert(0, MetricValue("utility", sum(sanitized_accuracies) / len(task.utility),
                                     better="higher", role="utility", primary=True,
                                     chance=mean_chance))
        values.append(MetricValue("raw_utility", sum(raw_accuracies) / len(task.utility),
                                  better="higher", role="diagnostic", chance=mean_chance))
        return values

    def _synthetic_score(self, view: MetricView) -> MetricValue:
        raw = view.raw_test.images.float().cpu()
        sanitized = view.sanitized_test.images.float().cpu()
        difference = (raw - sanitized).reshape(len(raw), -1)
        if raw.dim() == 4:
            score = 1.0 - float(difference.abs().mean())
        else:
            order = 1 if self.distance == "l1" else 2
            mean_distance = float(difference.norm(p=order, dim=1).mean())
            score = 1.0 - mean_distance / float(self.epsilon_max)
        return MetricValue("utility", score, better="higher", role="utility", primary=True)


@hookimpl
def ppbench_register_metrics(register) -> None:
    register(FixedUtility)
