"""How the harness scores attacks: attacks only predict; every figure is computed here from the
withheld truth, so that every attack is judged the same way.

Attribute attacks (predicted classes or class scores per test item):

- ``advantage`` (primary): the normalized advantage ``(bacc − 1/K) / (1 − 1/K)`` on balanced
  accuracy, 0 at chance and 1 for a perfect attack, with a bootstrap interval over test items;
- ``balanced_accuracy``: the mean per-class recall, whose chance level is exactly 1/K for any guess
  independent of the truth, whatever the class balance. Plain accuracy over the majority class
  would hide leakage on an imbalanced attribute (glasses: 10%);
- on a binary attribute a classifier systematically below chance is leakage (flip its answers and
  it reads the secret). Taking max(bacc, 1 − bacc) would be biased upward at chance, so the
  orientation is cross-fitted: each half of the test items is flipped when the *other* half is
  below chance (:func:`~ppbench.boards.statistics.orient_binary`);
- ``accuracy`` (secondary), with chance from the known prior: the largest class frequency of the
  train split, never the test sample's;
- ``auc`` when the attack returns class scores (one-vs-rest, averaged over classes).

The per-item truth and predictions are kept (``Scored.items``) so that leaderboards can run paired
tests on the shared test items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .api import AttackResult, MetricValue, PluginContractError, Task
from .data import ImageSet

if TYPE_CHECKING:
    import numpy as np
    import torch

# Bootstrap replicates of a single cell's interval: the board recomputes intervals from the stored
# items with more replicates; this one is what a cell shows on its own.
CELL_BOOTSTRAP = 1000


@dataclass
class Scored:
    """A scored cell: its figures and the per-item arrays a board's paired statistics need."""

    values: list[MetricValue]
    items: dict[str, "np.ndarray"] = field(default_factory=dict)


@dataclass
class WithheldTruth:
    """What the harness alone holds about the test split: every label, and the train prior."""

    task: Task
    test: ImageSet
    train_prior: Mapping[str, "torch.Tensor"]  # attribute -> class frequencies of the train split


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (well behaved near 0 and 1)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _predictions(result: AttackResult, n: int, num_classes: int,
                 source: str) -> tuple["np.ndarray", "np.ndarray | None"]:
    """Validate an attack's output: (predicted labels, class scores or None)."""
    import torch

    predictions = result.predictions
    if not isinstance(predictions, torch.Tensor):
        raise PluginContractError(f"{source}: predictions must be a tensor, got {type(predictions).__name__}")
    predictions = predictions.detach().cpu()
    if predictions.dim() == 2:
        if predictions.shape != (n, num_classes):
            raise PluginContractError(
                f"{source}: class scores must have shape ({n}, {num_classes}), got {tuple(predictions.shape)}")
        if not torch.isfinite(predictions).all():
            raise PluginContractError(f"{source}: class scores contain NaN or inf")
        scores = predictions.double()
        return scores.argmax(dim=1).numpy(), scores.numpy()
    if predictions.dim() != 1 or len(predictions) != n:
        raise PluginContractError(
            f"{source}: expected {n} predicted labels (one per sanitized test item), got shape "
            f"{tuple(predictions.shape)}")
    if predictions.dtype.is_floating_point:
        raise PluginContractError(f"{source}: predicted labels must be integers, got {predictions.dtype}")
    if n and (int(predictions.min()) < 0 or int(predictions.max()) >= num_classes):
        raise PluginContractError(f"{source}: predicted labels must lie in 0..{num_classes - 1}")
    return predictions.long().numpy(), None


def auc_ovr(truth: "np.ndarray", scores: "np.ndarray") -> float:
    """ROC AUC: of class 1's score for a binary attribute; else one-vs-rest averaged over the
    classes present (with at least one other class present)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    present = np.unique(truth)
    if len(present) < 2:
        return math.nan
    if scores.shape[1] == 2:
        return float(roc_auc_score(truth, scores[:, 1] - scores[:, 0]))
    return float(np.mean([roc_auc_score(truth == c, scores[:, c]) for c in present]))


def diagnostic_values(diagnostics: Mapping[str, Any], source: str) -> list[MetricValue]:
    """An attack's diagnostics as stored values (``diag:<name>``), each a finite number."""
    values = []
    for name, value in diagnostics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise PluginContractError(f"{source}: diagnostic {name!r} is not a number ({value!r})") from None
        if not math.isfinite(number):
            raise PluginContractError(f"{source}: diagnostic {name!r} is not finite ({value})")
        values.append(MetricValue(f"diag:{name}", number, role="diagnostic"))
    return values


def budget_values(budget: Mapping[str, Any], source: str) -> list[MetricValue]:
    """A result's recorded budget as stored values (``budget:<name>``), each a finite number."""
    values = []
    if not isinstance(budget, Mapping):
        raise PluginContractError(f"{source}: budget must be a dict of numbers, got {type(budget).__name__}")
    for name, value in budget.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise PluginContractError(f"{source}: budget {name!r} is not a number ({value!r})") from None
        if not math.isfinite(number):
            raise PluginContractError(f"{source}: budget {name!r} is not finite ({value})")
        values.append(MetricValue.budget(name, number))
    return values


def score_attribute(result: Any, truth: WithheldTruth, source: str, withheld: Any = None) -> Scored:
    """Score an attribute attack against the withheld sensitive labels (see the module doc);
    ``withheld`` (what a view builder kept back) is unused: the truth is the test labels."""
    import numpy as np

    from .boards.statistics import SeedItems, attack_interval, attribute_advantage, orient_binary

    if not isinstance(result, AttackResult):
        raise PluginContractError(f"{source}: run() must return an AttackResult, got {type(result).__name__}")
    attribute = truth.task.sensitive
    labels = truth.test.labels[attribute].cpu().numpy().astype(np.int64)
    k = truth.test.num_classes(attribute)
    predicted, scores = _predictions(result, len(labels), k, source)
    oriented = orient_binary(labels, predicted, k)
    from .boards.statistics import balanced_accuracy

    bacc = balanced_accuracy(labels, oriented, k)
    advantage = attribute_advantage(labels, predicted, k)
    interval = attack_interval([SeedItems(labels, predicted, k)], n_boot=CELL_BOOTSTRAP)
    correct = int((predicted == labels).sum())
    low, high = wilson_interval(correct, len(labels))
    prior_chance = float(truth.train_prior[attribute].max())
    values = [
        MetricValue("advantage", advantage, better="lower", role="leakage", primary=True,
                    ci_low=interval.low, ci_high=interval.high, chance=0.0),
        MetricValue("balanced_accuracy", bacc, better="lower", role="leakage", chance=1.0 / k),
        MetricValue("accuracy", correct / max(1, len(labels)), better="lower", role="leakage",
                    ci_low=low, ci_high=high, chance=prior_chance),
    ]
    if scores is not None:
        values.append(MetricValue("auc", auc_ovr(labels, scores), better="lower", role="leakage",
                                  chance=0.5))
    items: dict[str, np.ndarray] = {"truth": labels, "predicted": predicted}
    exposure, exposure_items = _exposure(truth, oriented, labels, k)
    values = ([v for v in values if math.isfinite(v.value)] + exposure
              + diagnostic_values(result.diagnostics, source))
    return Scored(values, {**items, **exposure_items})


def _exposure(truth: WithheldTruth, oriented: "np.ndarray", labels: "np.ndarray",
              k: int) -> tuple[list[MetricValue], dict[str, "np.ndarray"]]:
    """The most exposed individuals' figures (:mod:`ppbench.exposure`) of an attribute cell."""
    from .exposure import attribute_group_leakage, exposure_groups, exposure_values

    test_labels = {name: values.cpu().numpy() for name, values in truth.test.labels.items()}
    found = exposure_groups(test_labels, truth.task)
    if found is None:
        return [], {}
    groups, groups_are_sensitive = found
    leakage = attribute_group_leakage(labels, oriented, groups, k, groups_are_sensitive)
    return exposure_values(leakage)


def mean_interval(values: "list[float]") -> tuple[float, float, float]:
    """Mean and 95% Student-t interval over seeds (the interval is NaN for a single seed)."""
    from .boards.statistics import student_t_interval

    interval = student_t_interval(values)
    return (interval.mean, interval.low, interval.high)
