"""Leaderboard statistics: figures that do not overstate privacy, and rankings that do not rank noise.

The figure of merit of an attack is the normalized advantage on balanced accuracy, 0 at chance and
1 for a perfect attack, whose chance level does not depend on the class balance or on the test
sample. A row's worst case is a maximum over attacks, so its interval must pay for that selection
(max-t bootstrap or Bonferroni), and rows are only told apart (tiers) when a paired test over the
shared test items says they differ. Everything here is pure numpy/scipy/scikit-learn.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05  # stated significance level for intervals and tier tests
N_BOOTSTRAP = 2000
# Bootstrap replicates are processed in chunks of about this many resampled items, so that memory
# stays bounded on large test splits while small ones are done in one vectorised pass.
_CHUNK_ITEMS = 2_000_000


@dataclass(frozen=True)
class Interval:
    """A figure with its interval and how the interval was obtained (shown on the board)."""

    mean: float
    low: float
    high: float
    method: str


@dataclass(frozen=True, eq=False)  # eq=False: fields are arrays, so compare and hash by identity
class SeedItems:
    """One attack's outcome on one seed's test split: the truth and the predicted labels per item."""

    truth: np.ndarray
    predicted: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        truth = np.asarray(self.truth).astype(np.int64, copy=False)
        predicted = np.asarray(self.predicted).astype(np.int64, copy=False)
        if truth.ndim != 1 or truth.shape != predicted.shape or truth.size == 0:
            raise ValueError(f"truth and predicted must be non-empty 1-D arrays of the same length, "
                             f"got shapes {truth.shape} and {predicted.shape}")
        if int(self.num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if truth.min() < 0 or truth.max() >= self.num_classes:
            raise ValueError(f"truth labels must lie in [0, {self.num_classes})")
        object.__setattr__(self, "truth", truth)
        object.__setattr__(self, "predicted", predicted)
        object.__setattr__(self, "num_classes", int(self.num_classes))


@dataclass(frozen=True)
class WorstCase:
    """A row's worst case over attacks, with an interval valid despite the selection of the max."""

    mean: float
    attack: str
    low: float
    high: float
    method: str
    per_attack: dict[str, Interval]  # the simultaneous per-attack intervals


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Mean per-class recall over the classes present in ``truth``.

    Its chance level is exactly 1/K for any predictor independent of the truth, whatever the class
    balance, so a constant guess of the majority class does not look like leakage.
    """
    items = SeedItems(truth, predicted, num_classes)
    counts = np.bincount(items.truth, minlength=items.num_classes)
    hits = np.bincount(items.truth, weights=items.truth == items.predicted, minlength=items.num_classes)
    present = counts > 0
    return float(np.mean(hits[present] / counts[present]))


def orient_binary(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Flip a binary classifier that is systematically below chance, without bias at chance.

    An inverted classifier reveals the attribute as well as a correct one, but max(bacc, 1 − bacc)
    is biased upward at chance. Cross-fitting keeps the decision independent of the items it is
    applied to: each half (by index parity) is flipped when the *other* half is below chance.
    """
    items = SeedItems(truth, predicted, num_classes)
    if items.num_classes != 2:
        return items.predicted
    oriented = items.predicted.copy()
    even = np.arange(items.truth.size) % 2 == 0
    for this, other in ((even, ~even), (~even, even)):
        if other.any() and balanced_accuracy(items.truth[other], items.predicted[other], 2) < 0.5:
            oriented[this] = 1 - items.predicted[this]
    return oriented


def attribute_advantage(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Normalized advantage ``(bacc − 1/K) / (1 − 1/K)`` after orientation: 0 at chance, 1 perfect."""
    k = int(num_classes)
    bacc = balanced_accuracy(truth, orient_binary(truth, predicted, k), k)
    return (bacc - 1.0 / k) / (1.0 - 1.0 / k)


STUDENT_T = "Student-t over seeds"


def student_t_interval(values: Sequence[float], alpha: float = ALPHA) -> Interval:
    """Mean over seeds with its two-sided Student-t interval (NaN bounds for a single value).

    Seeds redraw the split and retrain the attack, so their spread is the variability that matters
    once there are enough of them.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("student_t_interval needs at least one value")
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, math.nan, math.nan, "single value: no interval")
    half = float(stats.t.ppf(1.0 - alpha / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, f"Student-t over {x.size} seeds")


def _paired_bootstrap(groups: Sequence[Sequence[SeedItems]], n_boot: int, seed: int) -> np.ndarray:
    """Replicates of the seed-mean advantage, shape (len(groups), n_boot).

    Every group must share each seed's truth: one index vector per seed and replicate is applied to
    all groups, so that differences and maxima between groups keep their pairing. On a binary
    attribute the cross-fitted orientation is decided again in every replicate (each resampled item
    keeps its half): holding it fixed ignores the chance of a wrong flip and under-covers near
    chance (about 0.8 for an advantage of 0.03 on 1000 items).
    """
    rng = np.random.default_rng(seed)
    truths = [items.truth for items in groups[0]]
    k = groups[0][0].num_classes
    parts = 2 if k == 2 else 1
    bacc = np.zeros((len(groups), n_boot))
    chunk = max(1, _CHUNK_ITEMS // max(t.size for t in truths))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        for s, truth in enumerate(truths):
            part = np.arange(truth.size) % parts
            idx = rng.integers(0, truth.size, size=(b, truth.size))
            # One bincount over (replicate, half, class) gives every replicate's counts at once.
            key = ((np.arange(b)[:, None] * parts + part[idx]) * k + truth[idx]).ravel()
            counts = np.bincount(key, minlength=b * parts * k).reshape(b, parts, k)
            total = counts.sum(axis=1)
            present = total > 0
            for g, group in enumerate(groups):
                predicted = group[s].predicted
                hits = _part_hits(key, (predicted == truth)[idx], b, parts, k)
                if k == 2:
                    flipped = _part_hits(key, ((1 - predicted) == truth)[idx], b, parts, k)
                    below = _half_bacc(hits, counts) < 0.5  # NaN (an empty half) never flips
                    hits = np.where(below[:, ::-1, None], flipped, hits)
                recall = np.divide(hits.sum(axis=1), total, out=np.zeros((b, k)), where=present)
                bacc[g, start:start + b] += recall.sum(axis=1) / present.sum(axis=1)
    bacc /= len(truths)
    return (bacc - 1.0 / k) / (1.0 - 1.0 / k)


def _part_hits(key: np.ndarray, correct: np.ndarray, b: int, parts: int, k: int) -> np.ndarray:
    return np.bincount(key, weights=correct.ravel(), minlength=b * parts * k).reshape(b, parts, k)


def _half_bacc(hits: np.ndarray, counts: np.ndarray) -> np.ndarray:
    present = counts > 0
    recall = np.divide(hits, counts, out=np.zeros(hits.shape), where=present)
    with np.errstate(invalid="ignore", divide="ignore"):
        return recall.sum(axis=2) / present.sum(axis=2)


def _seed_figures(per_seed: Sequence[SeedItems]) -> list[float]:
    return [attribute_advantage(it.truth, it.predicted, it.num_classes) for it in per_seed]


def attack_interval(per_seed: Sequence[SeedItems], alpha: float = ALPHA, n_boot: int = N_BOOTSTRAP,
                    seed: int = 0) -> Interval:
    """An attack's figure (mean advantage over seeds) and its interval.

    With three seeds or more the seed-to-seed spread is used (Student-t); with fewer there is no
    usable spread, so the test items are resampled within each seed (percentile bootstrap).
    """
    per_seed = list(per_seed)
    if not per_seed:
        raise ValueError("attack_interval needs at least one seed")
    values = _seed_figures(per_seed)
    if len(values) >= 3:
        return student_t_interval(values, alpha)
    replicates = _paired_bootstrap([per_seed], n_boot, seed)[0]
    low, high = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0])
    method = "bootstrap over test items" + (f" ({len(values)} seeds)" if len(values) > 1 else "")
    return Interval(float(np.mean(values)), float(low), float(high), method)


def _check_shared(groups: Mapping[str, Sequence[SeedItems]]) -> None:
    """Paired statistics are only valid when every group was scored on the same test items."""
    if not groups:
        raise ValueError("no attacks given")
    reference_name, reference = next(iter(groups.items()))
    if len(reference) == 0:
        raise ValueError(f"{reference_name!r} has no seeds")
    for name, per_seed in groups.items():
        if len(per_seed) != len(reference):
            raise ValueError(f"{name!r} has {len(per_seed)} seeds, {reference_name!r} has {len(reference)}")
        for s, (items, ref) in enumerate(zip(per_seed, reference)):
            if items.num_classes != ref.num_classes or not np.array_equal(items.truth, ref.truth):
                raise ValueError(f"{name!r} and {reference_name!r} do not share the test items of seed {s}")


def worst_case(attacks: Mapping[str, Sequence[SeedItems]], alpha: float = ALPHA,
               n_boot: int = N_BOOTSTRAP, seed: int = 0) -> WorstCase:
    """The largest attack figure of a row, with an interval that accounts for picking the largest.

    The maximum of noisy means is biased upward and the selected attack's own interval under-covers
    (it was selected *because* its noise was high), so the per-attack intervals are made
    simultaneous: Bonferroni Student-t with three seeds or more, else max-t from a paired bootstrap
    over the shared test items. The worst case's bounds are the maxima of the simultaneous bounds.
    """
    names = sorted(attacks)
    _check_shared({name: attacks[name] for name in names})
    values = {name: _seed_figures(attacks[name]) for name in names}
    figures = {name: float(np.mean(values[name])) for name in names}
    top = max(names, key=lambda name: figures[name])  # max keeps the first of ties: sorted order
    m, n_seeds = len(names), len(attacks[names[0]])
    if m == 1:
        per_attack = {top: attack_interval(attacks[top], alpha, n_boot, seed)}
    elif n_seeds >= 3:
        method = f"Bonferroni Student-t ({m} attacks, {n_seeds} seeds)"
        per_attack = {name: replace(student_t_interval(values[name], alpha / m), method=method)
                      for name in names}
    else:
        replicates = _paired_bootstrap([attacks[name] for name in names], n_boot, seed)
        estimate = np.array([figures[name] for name in names])
        se = replicates.std(axis=1, ddof=1)
        # An attack whose replicates never move (e.g. a constant guess) has nothing to widen.
        z = np.divide(np.abs(replicates - estimate[:, None]), se[:, None],
                      out=np.zeros_like(replicates), where=se[:, None] > 0)
        c = float(np.quantile(z.max(axis=0), 1.0 - alpha))
        method = f"max-t bootstrap (simultaneous over {m} attacks)"
        per_attack = {name: Interval(figures[name], figures[name] - c * se[i], figures[name] + c * se[i],
                                     method) for i, name in enumerate(names)}
    return WorstCase(figures[top], top, max(i.low for i in per_attack.values()),
                     max(i.high for i in per_attack.values()), per_attack[top].method, per_attack)


def tiers(rows: Mapping[str, Mapping[str, Sequence[SeedItems]]], alpha: float = ALPHA,
          n_boot: int = N_BOOTSTRAP, seed: int = 0) -> dict[str, int]:
    """Group rows whose worst cases are not significantly different; tier 1 is the most private.

    A strict order on noisy worst cases would rank noise. Walking down the worst-case order, a row
    starts a new tier only when a paired bootstrap over the shared test items says it is
    significantly worse (one-sided, level ``alpha``) than the current tier's leader. The rows'
    order was chosen from the same data, so two equal rows are split at about twice ``alpha``.
    """
    names = sorted(rows)
    if not names:
        return {}
    groups: dict[str, Sequence[SeedItems]] = {}
    owner: list[str] = []
    for name in names:
        if not rows[name]:
            raise ValueError(f"row {name!r} has no attacks")
        for attack in sorted(rows[name]):
            groups[f"{name} / {attack}"] = rows[name][attack]
            owner.append(name)
    _check_shared(groups)
    figures = np.array([np.mean(_seed_figures(per_seed)) for per_seed in groups.values()])
    owners = np.array(owner)
    worst = {name: float(figures[owners == name].max()) for name in names}
    if len(names) == 1:
        return {names[0]: 1}
    replicates = _paired_bootstrap(list(groups.values()), n_boot, seed)
    worst_star = {name: replicates[owners == name].max(axis=0) for name in names}
    order = sorted(names, key=lambda name: (worst[name], name))
    leader, tier, result = order[0], 1, {order[0]: 1}
    for name in order[1:]:
        if float(np.mean(worst_star[name] <= worst_star[leader])) < alpha:
            leader, tier = name, tier + 1
        result[name] = tier
    return result


def _bounds(interval: Interval) -> tuple[float, float]:
    low = interval.low if math.isfinite(interval.low) else interval.mean
    high = interval.high if math.isfinite(interval.high) else interval.mean
    return low, high


def pareto_marks(points: Mapping[str, tuple[Interval, Interval]]) -> dict[str, str]:
    """Pareto marks that respect uncertainty: "front", "possible" or "".

    ``points``: row → (worst-case interval, lower is better; utility interval, higher is better).
    A row is on the front when no other row's box could dominate it, "possible" when no other row's
    box dominates it for certain. Dominance needs one strict improvement, so two rows with the same
    point (no interval) do not push each other off the front.
    """
    boxes = {name: (_bounds(w), _bounds(u)) for name, (w, u) in points.items()
             if math.isfinite(w.mean) and math.isfinite(u.mean)}
    marks = {name: "" for name in points}
    for i, ((wi_low, wi_high), (ui_low, ui_high)) in boxes.items():
        certainly = possibly = False
        for j, ((wj_low, wj_high), (uj_low, uj_high)) in boxes.items():
            if j == i:
                continue
            if wj_high <= wi_low and uj_low >= ui_high and (wj_high < wi_low or uj_low > ui_high):
                certainly = True
            if wj_low <= wi_high and uj_high >= ui_low and (wj_low < wi_high or uj_high > ui_low):
                possibly = True
        marks[i] = "" if certainly else "possible" if possibly else "front"
    return marks


def leakage_floor(utility_labels: Mapping[str, np.ndarray], utility_classes: Mapping[str, int],
                  sensitive: np.ndarray, sensitive_classes: int, seed: int = 0) -> SeedItems | None:
    """What the kept utility attributes alone reveal about the sensitive one.

    A sanitizer that keeps a utility attribute correlated with the sensitive one cannot push the
    attacks below this floor, so the board should not call that residue a leak. It is estimated on
    the raw train labels by cross-validated logistic regression (out-of-fold predictions), returned
    as :class:`SeedItems` so that it is scored exactly like an attack. None without utility
    attributes (the floor is then 0).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    if not utility_labels:
        return None
    y = np.asarray(sensitive).astype(np.int64, copy=False)
    features = np.hstack([np.eye(int(utility_classes[name]))[np.asarray(utility_labels[name], dtype=np.int64)]
                          for name in sorted(utility_labels)])
    counts = np.bincount(y, minlength=int(sensitive_classes))
    # Fewer folds on a tiny sample, so that at least two classes can fill every fold.
    n_splits = min(5, int(np.sort(counts)[-2]))
    if n_splits < 2:
        return SeedItems(y, np.full_like(y, counts.argmax()), sensitive_classes)
    # A class with fewer members than folds is not learned: with balanced weights its one or two
    # training items would dominate the fit and push the floor below chance. Its items are still
    # predicted (as some other class), which is what an attack could do without it.
    learnable = counts[y] >= n_splits
    predicted = np.empty_like(y)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*least populated class.*", category=UserWarning)
        for train, test in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(features, y):
            train = train[learnable[train]]
            model = LogisticRegression(class_weight="balanced", max_iter=5000)
            predicted[test] = model.fit(features[train], y[train]).predict(features[test])
    return SeedItems(y, predicted, sensitive_classes)


def seed_worst_case(per_seed: Mapping[str, Sequence[float]], alpha: float = ALPHA) -> tuple[str, Interval] | None:
    """The worst case over attacks from their per-seed figures alone (attacks whose cells store
    no per-item results, such as a recognizer's verification figures): the largest mean, with a
    Student-t interval over seeds made simultaneous over the attacks (Bonferroni). None with
    fewer than three seeds, or when the attacks did not run on the same number of seeds."""
    attacks = sorted(a for a, values in per_seed.items() if len(values))
    if not attacks:
        return None
    sizes = {len(per_seed[a]) for a in attacks}
    if len(sizes) != 1 or sizes.pop() < 3:
        return None
    m = len(attacks)
    means = {a: float(np.mean(per_seed[a])) for a in attacks}
    lows, highs = [], []
    for attack in attacks:
        values = np.asarray(per_seed[attack], dtype=float)
        half = float(stats.t.ppf(1 - alpha / (2 * m), values.size - 1) * values.std(ddof=1)
                     / math.sqrt(values.size))
        lows.append(means[attack] - half)
        highs.append(means[attack] + half)
    top = max(attacks, key=lambda a: (means[a], a))
    n = len(per_seed[top])
    # Advantages lie in [-1, 1]: three seeds' t-interval can reach past the end of the scale.
    return top, Interval(means[top], max(-1.0, max(lows)), min(1.0, max(highs)),
                         f"Bonferroni Student-t ({m} attacks, {n} seeds)")


def seed_tiers(per_seed_worst: Mapping[str, Sequence[float]], alpha: float = ALPHA) -> dict[str, int] | None:
    """Tiers as :func:`tiers` makes them, from each row's worst case per seed: walking down the
    order, a row starts a new tier when a one-sided paired t-test over the seeds (the rows of a
    seed share its test items) says it is worse than the current tier's leader. None with fewer
    than three seeds, or rows with different seed counts."""
    names = sorted(per_seed_worst)
    if not names:
        return {}
    sizes = {len(per_seed_worst[n]) for n in names}
    if len(sizes) != 1 or sizes.pop() < 3:
        return None
    values = {n: np.asarray(per_seed_worst[n], dtype=float) for n in names}
    order = sorted(names, key=lambda n: (float(values[n].mean()), n))
    leader, tier, result = order[0], 1, {order[0]: 1}
    for name in order[1:]:
        differences = values[name] - values[leader]
        spread = float(differences.std(ddof=1))
        if spread == 0.0:
            significant = float(differences.mean()) > 0
        else:
            t_value = float(differences.mean()) / (spread / math.sqrt(differences.size))
            significant = float(stats.t.sf(t_value, differences.size - 1)) < alpha
        if significant:
            leader, tier = name, tier + 1
        result[name] = tier
    return result
