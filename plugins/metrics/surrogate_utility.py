"""surrogate-utility: how useful what a sanitizer publishes is to someone who trains on it.

Webster et al.'s utility measure. C is trained on the real fit split, C' on what was published,
with the same learner (:func:`ppbench.nn.train_with_reference_recipe`: the reference
classifiers' network and early-stopped recipe; C *is* the cached reference classifier), one
classifier per kept attribute of the task:

- a release (D' = {(G(z), C(G(z)))}): C' learns the released images with their released labels
  and is tested on the real test split, as a user of the surrogate set would apply it;
- a transform: C' learns the sanitized attack split with its true labels and is tested on the
  sanitized test split (at deployment, images pass through the sanitizer first).

In both modes C is tested on the real test split, so the gap C − C' is what publishing through
the sanitizer costs a downstream learner, and release and transform rows share one utility
column. The sensitive attribute is not a utility attribute and is never scored here (the metric
does not see its test labels). Figures:

- ``accuracy`` (primary): C''s mean accuracy over the kept attributes, with a 95% percentile
  bootstrap interval over test items;
- ``real_accuracy``: C's mean accuracy on the same items (the paper's 90.64% against C''s
  86.50-89.35%);
- ``gap``: real_accuracy − accuracy, with a paired bootstrap interval (the same resampled items
  for both);
- ``accuracy:<attribute>`` and ``real_accuracy:<attribute>`` per kept attribute.

The board shows the first three in their own columns (``real_accuracy`` and ``gap`` are
``reported`` figures); the per-attribute ones are stored with the cell, in the results store.
"""

from __future__ import annotations

from typing import Any

from ppbench import Context, MetricValue, MetricView, Task, UtilityMetric, hookimpl
from ppbench.api import PluginContractError

N_BOOTSTRAP = 1000
_BOOTSTRAP_STREAM = 4111


class SurrogateUtility(UtilityMetric):
    """C' trained on the release (or the sanitized images) against C trained on the real fit
    split: per-attribute accuracies, their means and the gap C − C'."""

    name = "surrogate-utility"
    version = "2"
    description = ("Utility of what a sanitizer publishes: a classifier trained on it (C', on a "
                   "release or the sanitized images) against one trained on the real fit split (C).")
    applies_to = frozenset({"release", "transform"})

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        import numpy as np
        import torch

        from ppbench.nn import predict_logits, reference_classifier, train_with_reference_recipe

        # A release's view holds the release as sanitized_attack and the raw test split as
        # sanitized_test: the same two fields serve both modes.
        published, evaluated = view.sanitized_attack, view.sanitized_test
        attributes = [a for a in task.utility if a in published.labels and a in view.raw_test.labels]
        if not attributes:
            raise PluginContractError(f"{self.name}: task {task.name!r} keeps no attribute that the "
                                      "published set labels")
        hits: dict[str, tuple[Any, Any]] = {}
        for attribute in attributes:
            truth = view.raw_test.labels[attribute]
            real = reference_classifier(view.raw_train, attribute, ctx)
            if len(torch.unique(published.labels[attribute])) < 2:
                surrogate_hits = (torch.full_like(truth, int(published.labels[attribute][0])) == truth)
            else:
                surrogate, _ = train_with_reference_recipe(published, attribute, ctx,
                                                           desc=f"{self.name} C' ({attribute})")
                surrogate_hits = predict_logits(surrogate, evaluated.images, ctx).argmax(1) == truth
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
            MetricValue("real_accuracy", float(real.mean()), role="reported",
                        ci_low=interval(boot_real)[0], ci_high=interval(boot_real)[1]),
            MetricValue("gap", float(real.mean() - surrogate.mean()), better="lower",
                        role="reported", ci_low=interval(boot_real - boot_surrogate)[0],
                        ci_high=interval(boot_real - boot_surrogate)[1], chance=0.0),
        ]
        # C: one raw-trained reference per attribute; C': as many, trained on the published set.
        values += [MetricValue.budget("reference_models", len(attributes)),
                   MetricValue.budget("training_items", len(published)),
                   MetricValue.budget("max_epochs", ctx.profile.max_epochs)]
        for attribute in attributes:
            values.append(MetricValue(f"accuracy:{attribute}", float(hits[attribute][0].mean()),
                                      role="diagnostic"))
            values.append(MetricValue(f"real_accuracy:{attribute}", float(hits[attribute][1].mean()),
                                      role="diagnostic"))
        return values


@hookimpl
def ppbench_register_metrics(register: Any) -> None:
    register(SurrogateUtility)
