"""How the harness scores attacks: accuracy against withheld labels, normalized advantage, intervals.

Attacks only predict; the scores are computed here so that every attack is judged the same way.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from .api import AttackResult, MetricValue, PluginContractError

if TYPE_CHECKING:
    import torch

Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (well behaved near 0 and 1)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def normalized_advantage(accuracy: float, chance: float) -> float:
    """(acc − chance) / (1 − chance): 0 at chance, 1 for a perfect attack; comparable across tasks."""
    if chance >= 1.0:
        return 0.0
    return (accuracy - chance) / (1.0 - chance)


def predicted_labels(result: AttackResult, n: int, num_classes: int, source: str) -> "torch.Tensor":
    """Validate an attack's predictions and reduce scores to class indices."""
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
        return predictions.argmax(dim=1)
    if predictions.dim() != 1 or len(predictions) != n:
        raise PluginContractError(
            f"{source}: expected {n} predicted labels (one per sanitized test item), got shape "
            f"{tuple(predictions.shape)}")
    if predictions.dtype.is_floating_point:
        raise PluginContractError(f"{source}: predicted labels must be integers, got {predictions.dtype}")
    return predictions.long()


def score_attribute_attack(result: AttackResult, truth: "torch.Tensor", num_classes: int,
                           chance: float, source: str) -> list[MetricValue]:
    """Accuracy (primary, with its Wilson interval) and normalized advantage of an attack."""
    labels = predicted_labels(result, len(truth), num_classes, source)
    correct = int((labels == truth.cpu()).sum())
    n = len(truth)
    accuracy = correct / n
    low, high = wilson_interval(correct, n)
    values = [
        MetricValue("accuracy", accuracy, better="lower", role="leakage", primary=True,
                    ci_low=low, ci_high=high, chance=chance),
        MetricValue("advantage", normalized_advantage(accuracy, chance), better="lower",
                    role="leakage", ci_low=normalized_advantage(low, chance),
                    ci_high=normalized_advantage(high, chance), chance=0.0),
    ]
    for name, value in result.diagnostics.items():
        if not math.isfinite(float(value)):
            raise PluginContractError(f"{source}: diagnostic {name!r} is not finite ({value})")
        values.append(MetricValue(str(name), float(value), role="diagnostic"))
    return values


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval over seeds (the interval is NaN for a single seed)."""
    n = len(values)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = sum(values) / n
    if n == 1:
        return (mean, math.nan, math.nan)
    from scipy import stats

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return (mean, mean - half, mean + half)
