"""A board's view of the most exposed individuals (:mod:`ppbench.exposure`), per row.

- **worst decile**: the largest, over the row's keyless attacks, of each attack's cross-fitted
  worst-decile leakage (mean over seeds). With three seeds or more its interval is Student-t over
  seeds made simultaneous over the attacks (Bonferroni), like the worst case; below that, the
  chosen attack's cells' identity-bootstrap intervals, combined;
- **exposed**: the share of identities whose own leakage to that attack is significantly above
  the task's leakage floor (Benjamini–Hochberg at 5% per seed, averaged over seeds). A row
  whose exposed share is above zero in a majority of its seeds *exposes someone*: under the
  null each seed finds someone with probability at most 5% (the false-discovery control's
  family-wise error when nobody leaks), so two seeds of three do so by chance at most 0.75% of
  the time, while one person read in full is found in every seed;
- **decile tier**: rows grouped as the worst-case tiers are, on the worst decile. Walking down
  the worst-decile order, a row starts a new tier when a paired bootstrap over the shared test
  identities (the same identities are resampled for every row and attack of a seed) says it is
  significantly worse than the current tier's leader (one-sided, 5%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..exposure import HALF_ITEMS, LEAKAGE_ITEM, SE_ITEM, exposed_share, worst_decile
from .board import Figure
from ..scoring import wilson_interval
from .statistics import ALPHA, STUDENT_T, seed_worst_case, student_t_interval

DECILE = "worst_decile"
EXPOSED = "exposed_share"
DECILE_BOOTSTRAP = 1000


@dataclass
class RowExposure:
    """One row's worst decile over its attacks, the attack that reaches it, the share exposed."""

    decile: Figure
    attack: str = ""
    exposed: float = math.nan
    # The share exposed with its interval: Student-t over seeds from three seeds on, else a
    # Wilson interval over the identities tested.
    exposed_figure: Figure = field(default_factory=Figure)
    exposed_seeds: int = 0  # seeds in which someone's own leakage is significant
    seeds: int = 0

    @property
    def exposes_someone(self) -> bool:
        return self.seeds > 0 and self.exposed_seeds > self.seeds / 2


def row_exposure(per_seed_values: Mapping[str, Sequence[float]], combined: Mapping[str, Figure],
                 exposure_items: Mapping[str, Sequence[Mapping[str, np.ndarray] | None]],
                 floor: float) -> RowExposure:
    """``per_seed_values``: attack -> its cells' worst-decile figures (seed order); ``combined``:
    attack -> the figure aggregated over seeds (for fewer than three seeds); ``exposure_items``:
    attack -> each seed's stored per-identity arrays."""
    attacks = sorted(a for a, values in per_seed_values.items() if values)
    if not attacks:
        return RowExposure(Figure())
    means = {a: float(np.mean(per_seed_values[a])) for a in attacks}
    top = max(attacks, key=lambda a: (means[a], a))
    n_seeds = len(per_seed_values[top])
    simultaneous = seed_worst_case({a: per_seed_values[a] for a in attacks})
    if simultaneous is not None:
        top, interval = simultaneous
        decile = Figure(interval.mean, interval.low, interval.high, n_seeds, interval.method, "ok")
    else:
        chosen = combined.get(top, Figure())
        decile = Figure(means[top], chosen.ci_low, chosen.ci_high, n_seeds,
                        f"{chosen.interval} (not simultaneous)" if chosen.interval else "", "ok")
    shares, tested = [], []
    for items in exposure_items.get(top, []):
        if not items or LEAKAGE_ITEM not in items:
            continue
        share = exposed_share(items[LEAKAGE_ITEM], items[SE_ITEM], floor)
        if math.isfinite(share):
            shares.append(share)
            tested.append(int(np.sum(np.isfinite(np.asarray(items[LEAKAGE_ITEM], float))
                                     & (np.asarray(items[SE_ITEM], float) > 0))))
    return RowExposure(decile, top, float(np.mean(shares)) if shares else math.nan,
                       _share_figure(shares, tested), exposed_seeds=sum(s > 0 for s in shares),
                       seeds=len(shares))


def _share_figure(shares: Sequence[float], tested: Sequence[int]) -> Figure:
    if not shares:
        return Figure(status="missing")
    mean = float(np.mean(shares))
    if len(shares) >= 3:
        interval = student_t_interval(shares, ALPHA)
        return Figure(mean, max(0.0, interval.low), min(1.0, interval.high), len(shares), STUDENT_T, "ok")
    exposed = int(round(sum(s * n for s, n in zip(shares, tested))))
    low, high = wilson_interval(exposed, int(sum(tested)))
    return Figure(mean, low, high, len(shares), "Wilson over identities", "ok")


def seed_halves(items: Mapping[str, np.ndarray] | None) -> np.ndarray | None:
    """A cell's per-identity leakage on each half (G×2), when it stored them."""
    if not items or not all(name in items for name in HALF_ITEMS):
        return None
    return np.stack([np.asarray(items[HALF_ITEMS[0]], float), np.asarray(items[HALF_ITEMS[1]], float)], axis=1)


def decile_tiers(rows: Mapping[str, Mapping[str, Sequence[np.ndarray]]], alpha: float = ALPHA,
                 n_boot: int = DECILE_BOOTSTRAP, seed: int = 0) -> dict[str, int] | None:
    """Tiers on the worst decile (see the module doc). ``rows``: row -> attack -> per-seed G×2
    halves. None when the rows do not share their identities (different counts per seed)."""
    names = sorted(rows)
    if not names:
        return {}
    seeds = {len(per_seed) for attacks in rows.values() for per_seed in attacks.values()}
    if len(seeds) != 1 or any(not attacks for attacks in rows.values()):
        return None
    n_seeds = seeds.pop()
    sizes: list[int] = []
    for s in range(n_seeds):
        found = {per_seed[s].shape[0] for attacks in rows.values() for per_seed in attacks.values()}
        if len(found) != 1:
            return None
        sizes.append(found.pop())

    def row_value(name: str, picks: Sequence[np.ndarray | None]) -> float:
        per_attack = []
        for per_seed in rows[name].values():
            values = [worst_decile(per_seed[s] if picks[s] is None else per_seed[s][picks[s]])
                      for s in range(n_seeds)]
            per_attack.append(np.nanmean(values) if np.isfinite(values).any() else -math.inf)
        return max(per_attack)

    observed = {name: row_value(name, [None] * n_seeds) for name in names}
    rng = np.random.default_rng(seed)
    replicates = {name: np.empty(n_boot) for name in names}
    for b in range(n_boot):
        picks = [rng.integers(0, size, size) for size in sizes]
        for name in names:
            replicates[name][b] = row_value(name, picks)
    order = sorted(names, key=lambda name: (observed[name], name))
    leader, tier, result = order[0], 1, {order[0]: 1}
    for name in order[1:]:
        if float(np.mean(replicates[name] <= replicates[leader])) < alpha:
            leader, tier = name, tier + 1
        result[name] = tier
    return result


def stored_seed_values(group: Any) -> list[float]:
    """The per-seed values of one stored (row, attack, value) group, in seed order."""
    if group is None:
        return []
    return [float(v) for v in group.sort_values("seed")["value"] if v == v]
