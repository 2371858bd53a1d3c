"""The most exposed individuals: leakage per identity, its worst decile, and who is exposed.

An average over test items hides a sanitizer that protects most people and exposes a few
completely (Aerni, Zhang and Tramèr, CCS 2024: average-case evaluations understated the leakage
of the most vulnerable records by an order of magnitude). So every attribute and
re-identification cell also measures the leakage of each **group** of test items: each identity
when the data set has an ``identity`` attribute, else each subgroup of the kept attributes (their
joint values). From the per-group figures it reports:

- ``worst_decile``: the mean leakage of the tenth of the groups that leak most (at least one
  group). The maximum of noisy per-group estimates is biased upward (with 20 items per identity
  a chance-level attack's most "exposed" tenth would read about 0.4), so the figure is
  **cross-fitted**: each group's items are split in two halves (alternate items, in the split's
  order); the groups are ranked on one half and their leakage is read on the other, and the two
  directions are averaged. Selection noise then cannot inflate the figure: at chance it is 0 in
  expectation, and a group that truly leaks is selected and measured on items that did not
  select it. Its interval is a percentile bootstrap over groups (identities are the unit, not
  images).
- ``exposed_share``: the share of groups whose own leakage is significantly above a reference
  (0 in a cell, the task's leakage floor on a board): one-sided tests per group, with the
  Benjamini–Hochberg procedure at 5% over the groups, so that with many groups a few chance
  excursions do not count as exposed people.

Per-group leakage, for predicted classes of the sensitive attribute:

- when the groups are the sensitive attribute's own classes (hide the identity): the group's
  one-vs-rest informedness, TPR − FPR: how much more often its own items are called by its name
  than other people's are (a constant guess scores 0, not 1 for the guessed person);
- otherwise: the chance-corrected balanced accuracy within the group's items,
  ``(bacc − c) / (1 − c)`` with ``c`` the mean, over the classes present, of how often the attack
  predicts each (1/K for any guess independent of the truth); for a binary attribute this is
  TPR + TNR − 1. A half with fewer than two classes present measures nothing (NaN).

The tests use Agresti–Caffo's adjusted proportions (one success and one failure added to each
sample) for the estimate and the standard error: the plain Wald test rejects far too often at a
group's 10–40 items. Measured on 300 simulated chance-level attacks (50 identities, 1,000
items, binary attribute): some identity is called exposed in 5.3% of them, against
Benjamini–Hochberg's 5%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

if TYPE_CHECKING:
    from .api import MetricValue, Task

WORST_FRACTION = 0.1
EXPOSURE_ALPHA = 0.05
EXPOSURE_BOOTSTRAP = 1000
# The per-item arrays a cell stores for the board (which tests them against the task's floor).
LEAKAGE_ITEM, SE_ITEM = "exposure_leakage", "exposure_se"
HALF_ITEMS = ("exposure_half0", "exposure_half1")


@dataclass
class GroupLeakage:
    """Leakage of each group: on each half of its items (``halves``, G×2) and on all of them
    (``whole``); the test's adjusted estimate (``tested``) and standard error (``se``). NaN where
    nothing is measurable."""

    halves: np.ndarray
    whole: np.ndarray
    tested: np.ndarray
    se: np.ndarray

    def __post_init__(self) -> None:
        self.halves = np.asarray(self.halves, dtype=float).reshape(-1, 2)
        for name in ("whole", "tested", "se"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=float))


def half_of_each_group(groups: np.ndarray) -> np.ndarray:
    """0 or 1 for every item: alternate items of each group, in the split's order."""
    groups = np.asarray(groups)
    half = np.zeros(groups.size, dtype=np.int64)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        half[members[1::2]] = 1
    return half


def _informedness(hits: int, n_pos: int, false_hits: int, n_neg: int) -> tuple[float, float, float]:
    """TPR − FPR, its Agresti–Caffo adjusted value and standard error (the test's); NaN without
    positives or negatives."""
    if n_pos == 0 or n_neg == 0:
        return math.nan, math.nan, math.nan
    p1, p0 = (hits + 1) / (n_pos + 2), (false_hits + 1) / (n_neg + 2)
    return (hits / n_pos - false_hits / n_neg, p1 - p0,
            math.sqrt(p1 * (1 - p1) / n_pos + p0 * (1 - p0) / n_neg))


def _within_group(truth: np.ndarray, predicted: np.ndarray, k: int) -> tuple[float, float, float]:
    """Chance-corrected balanced accuracy within one group's items, its adjusted value and the
    standard error of the test."""
    counts = np.bincount(truth, minlength=k)
    present = counts > 0
    m = int(present.sum())
    if m < 2:
        return math.nan, math.nan, math.nan
    hits = np.bincount(truth, weights=truth == predicted, minlength=k)
    chance = float(np.mean(np.bincount(predicted, minlength=k)[present] / truth.size))
    if chance >= 1.0:
        return math.nan, math.nan, math.nan
    recall = hits[present] / counts[present]
    adjusted = (hits[present] + 1) / (counts[present] + 2)
    se = math.sqrt(float(np.sum(adjusted * (1 - adjusted) / counts[present]))) / m
    scale = 1.0 - chance
    return ((float(recall.mean()) - chance) / scale, (float(adjusted.mean()) - chance) / scale,
            se / scale)


def attribute_group_leakage(truth: np.ndarray, predicted: np.ndarray, groups: np.ndarray,
                            num_classes: int, groups_are_sensitive: bool) -> GroupLeakage:
    """Per-group leakage of predicted classes (see the module doc), groups in sorted order."""
    truth = np.asarray(truth, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    half = half_of_each_group(groups)
    names = np.unique(groups)
    halves = np.full((names.size, 2), math.nan)
    whole, tested, se = (np.full(names.size, math.nan) for _ in range(3))
    for g, name in enumerate(names):
        mine = groups == name
        for h in (0, 1, None):
            part = np.ones_like(mine) if h is None else half == h
            if groups_are_sensitive:
                own, other = mine & part, ~mine & part
                value, adjusted, error = _informedness(
                    int((predicted[own] == name).sum()), int(own.sum()),
                    int((predicted[other] == name).sum()), int(other.sum()))
            else:
                chosen = mine & part
                value, adjusted, error = _within_group(truth[chosen], predicted[chosen], num_classes)
            if h is None:
                whole[g], tested[g], se[g] = value, adjusted, error
            else:
                halves[g, h] = value
    return GroupLeakage(halves, whole, tested, se)


def worst_decile(halves: np.ndarray, fraction: float = WORST_FRACTION) -> float:
    """The cross-fitted mean leakage of the most exposed ``fraction`` of the groups (see the
    module doc); NaN when no group is measurable on both halves."""
    halves = np.asarray(halves, dtype=float).reshape(-1, 2)
    halves = halves[np.isfinite(halves).all(axis=1)]
    if halves.shape[0] == 0:
        return math.nan
    count = max(1, math.ceil(fraction * halves.shape[0]))
    readings = []
    for rank_on, read_on in ((0, 1), (1, 0)):
        # Ties are broken by position, which depends on neither half's figure.
        chosen = np.argsort(-halves[:, rank_on], kind="stable")[:count]
        readings.append(float(halves[chosen, read_on].mean()))
    return float(np.mean(readings))


def worst_decile_interval(halves: np.ndarray, n_boot: int = EXPOSURE_BOOTSTRAP, seed: int = 0,
                          alpha: float = EXPOSURE_ALPHA) -> tuple[float, float]:
    """Percentile bootstrap over groups of :func:`worst_decile`."""
    halves = np.asarray(halves, dtype=float).reshape(-1, 2)
    halves = halves[np.isfinite(halves).all(axis=1)]
    if halves.shape[0] < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    replicates = [worst_decile(halves[rng.integers(0, halves.shape[0], halves.shape[0])])
                  for _ in range(n_boot)]
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def exposed_share(tested: np.ndarray, se: np.ndarray, reference: float = 0.0,
                  alpha: float = EXPOSURE_ALPHA) -> float:
    """The share of measurable groups whose leakage is significantly above ``reference``
    (one-sided z-tests on the adjusted estimates, Benjamini–Hochberg at ``alpha``)."""
    from scipy import stats

    tested, se = np.asarray(tested, dtype=float), np.asarray(se, dtype=float)
    usable = np.isfinite(tested) & np.isfinite(se) & (se > 0)
    if not usable.any():
        return math.nan
    p = np.sort(stats.norm.sf((tested[usable] - reference) / se[usable]))
    m = p.size
    passing = np.flatnonzero(p <= alpha * np.arange(1, m + 1) / m)
    return (int(passing[-1]) + 1 if passing.size else 0) / m


def exposure_groups(labels: Mapping[str, np.ndarray], task: "Task") -> tuple[np.ndarray, bool] | None:
    """The group of every test item, and whether the groups are the sensitive attribute's own
    classes: identities when the data has them, else the joint values of the kept attributes;
    None when there is neither."""
    if "identity" in labels:
        return np.asarray(labels["identity"], dtype=np.int64), task.sensitive == "identity"
    kept = [name for name in task.utility if name in labels]
    if not kept:
        return None
    joint = np.stack([np.asarray(labels[name], dtype=np.int64) for name in kept], axis=1)
    return np.unique(joint, axis=0, return_inverse=True)[1].reshape(-1), False


def exposure_values(leakage: GroupLeakage, seed: int = 0) -> tuple[list["MetricValue"], dict[str, np.ndarray]]:
    """A cell's exposure figures and the per-group arrays the board tests against its floor."""
    from .api import MetricValue

    decile = worst_decile(leakage.halves)
    if not math.isfinite(decile):
        return [], {}
    low, high = worst_decile_interval(leakage.halves, seed=seed)
    share = exposed_share(leakage.tested, leakage.se)
    values = [MetricValue("worst_decile", decile, better="lower", role="leakage",
                          ci_low=low, ci_high=high, chance=0.0)]
    if math.isfinite(share):
        values.append(MetricValue("exposed_share", share, better="lower", role="leakage", chance=0.0))
    return values, {LEAKAGE_ITEM: leakage.tested, SE_ITEM: leakage.se,
                    HALF_ITEMS[0]: leakage.halves[:, 0], HALF_ITEMS[1]: leakage.halves[:, 1]}
