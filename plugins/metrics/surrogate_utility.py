"""surrogate-utility: how useful a released surrogate data set is to someone who trains on it.

Webster et al.'s utility measure. C is trained on the real fit split, C' on the release
(D' = {(G(z), C(G(z)))}), with the same learner (:func:`ppbench.nn.train_with_reference_recipe`:
the reference classifiers' network and early-stopped recipe; C *is* the cached reference
classifier); both are tested on the real test split, one classifier per kept attribute of the
task. The sensitive attribute is not a utility attribute and is never scored here (the metric
does not see its test labels). Figures:

- ``accuracy`` (primary): C''s mean accuracy over the kept attributes, with a 95% percentile
  bootstrap interval over test items;
- ``real_accuracy``: C's mean accuracy on the same items (the paper's 90.64% against C''s
  86.50-89.35%);
- ``gap``: real_accuracy − accuracy, with a paired bootstrap interval (the same resampled items
  for both);
- ``accuracy:<attribute>`` and ``real_accuracy:<attribute>`` per kept attribute.

Release mode only: a transform has no surrogate set to train on.
"""

from __future__ import annotations

from typing import Any

from ppbench import Context, MetricValue, MetricView, Task, UtilityMetric, hookimpl
from ppbench.api import PluginContractError

N_BOOTSTRAP = 1000
_BOOTSTRAP_STREAM = 4111


class SurrogateUtility(UtilityMetric):
    """C' trained on the release against C trained on the real fit split, both on real test
    images: per-attribute accuracies, their means and the gap C − C'."""

    name = "surrogate-utility"
    version = "1"
    description = ("Utility of a released surrogate set: a classifier trained on it (C') against "
                   "one trained on the real fit split (C), both tested on real test images.")
    applies_to = frozenset({"release"})

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        import numpy as np
        import torch

        from ppbench.nn import predict_logits, reference_classifier, train_with_reference_recipe

        release = view.release
        attributes = [a for a in task.utility if a in release.labels and a in view.raw_test.labels]
        if not attributes:
            raise PluginContractError(f"{self.name}: task {task.name!r} keeps no attribute that the "
                                      "release labels")
        hits: dict[str, tuple[Any, Any]] = {}
        for attribute in attributes:
            truth = view.raw_test.labels[attribute]
            real = reference_classifier(view.raw_train, attribute, ctx)
            if len(torch.unique(release.labels[attribute])) < 2:
                surrogate_hits = (torch.full_like(truth, int(release.labels[attribute][0])) == truth)
            else:
                surrogate, _ = train_with_reference_recipe(release, attribute, ctx,
                                                           desc=f"{self.name} C' ({attribute})")
                surrogate_hits = predict_logits(surrogate, view.raw_test.images, ctx).argmax(1) == truth
            real_hits = predict_logits(real, view.raw_test.images, ctx).argmax(1) == truth
            hits[attribute] = (surrogate_hits.numpy().astype(float), real_hits.numpy().astype(float))
        surrogate = np.mean([hits[a][0] for a in attributes], axis=0)  # per test item
        real = np.mean([hits[a][1] for a in attributes], axis=0)
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,),
                                                      generator=ctx.generator(_BOOTSTRAP_STREAM))))
        index = rng.integers(0, len(surrogate), size=(N_BOOTSTRAP, len(surrogate)))
        boot_surrogate, boot_real = surrogate[index].mean(1), real[index].mean(1)

        def interval(values: Any) -> tuple[float, float]:
            low, high = np.percentile(values, [2.5, 97.5])
            return float(low), float(high)

        values = [
            MetricValue("accuracy", float(surrogate.mean()), role="utility", primary=True,
                        ci_low=interval(boot_surrogate)[0], ci_high=interval(boot_surrogate)[1]),
            MetricValue("real_accuracy", float(real.mean()), role="diagnostic",
                        ci_low=interval(boot_real)[0], ci_high=interval(boot_real)[1]),
            MetricValue("gap", float(real.mean() - surrogate.mean()), better="lower",
                        role="diagnostic", ci_low=interval(boot_real - boot_surrogate)[0],
                        ci_high=interval(boot_real - boot_surrogate)[1], chance=0.0),
        ]
        for attribute in attributes:
            values.append(MetricValue(f"accuracy:{attribute}", float(hits[attribute][0].mean()),
                                      role="diagnostic"))
            values.append(MetricValue(f"real_accuracy:{attribute}", float(hits[attribute][1].mean()),
                                      role="diagnostic"))
        return values


@hookimpl
def ppbench_register_metrics(register: Any) -> None:
    register(SurrogateUtility)
