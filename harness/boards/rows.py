"""One board row's summary: its worst case over the attacks (simultaneous, paired on the shared
test items where the cells kept them), the audits it passes, and its most exposed individuals;
and the rule that combines a stored figure over seeds."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..kinds import audit_threat_models
from .board import Column, ColumnKey, Figure
from .columns import DECILE_KEY, EXPOSED_KEY
from .exposure import DECILE, decile_tiers, row_exposure, seed_halves, stored_seed_values
from .policy import RowSummary
from .statistics import ALPHA, STUDENT_T, SeedItems, seed_worst_case, student_t_interval, worst_case

CELL_INTERVAL = "the cells' own, combined over seeds"


def combined_status(statuses: Sequence[str]) -> str:
    if not statuses:
        return "missing"
    if "error" in statuses:
        return "error"
    return "ok" if "ok" in statuses else "n/a"


def aggregate_over_seeds(values: pd.DataFrame) -> Figure:
    """Stored values over seeds, with the same rule as an attack's primary figure: the seed-to-seed
    spread (Student-t) from three seeds on; below that, the cells' own intervals (over test items)
    combined as for independent estimates, since a Student-t interval over two seeds (t = 12.7)
    would span more than the figure's whole range."""
    values = values[values["value"].notna()]
    seeds = [float(v) for v in values["value"]]
    if not seeds:
        return Figure(status="missing")
    if len(seeds) >= 3:
        interval = student_t_interval(seeds, ALPHA)
        return Figure(interval.mean, interval.low, interval.high, len(seeds), STUDENT_T, "ok")
    lows = pd.to_numeric(values["ci_low"], errors="coerce").to_numpy(dtype=float)
    highs = pd.to_numeric(values["ci_high"], errors="coerce").to_numpy(dtype=float)
    mean = float(sum(seeds) / len(seeds))
    if not (all(math.isfinite(v) for v in lows) and all(math.isfinite(v) for v in highs)):
        if len(seeds) == 1:
            return Figure(mean, math.nan, math.nan, 1, "", "ok")
        interval = student_t_interval(seeds, ALPHA)
        return Figure(interval.mean, interval.low, interval.high, len(seeds), STUDENT_T, "ok")
    below = math.sqrt(sum((v - lo) ** 2 for v, lo in zip(seeds, lows))) / len(seeds)
    above = math.sqrt(sum((hi - v) ** 2 for v, hi in zip(seeds, highs))) / len(seeds)
    return Figure(mean, mean - below, mean + above, len(seeds), CELL_INTERVAL, "ok")


def add_exposure(summaries: list[RowSummary], attack_labels: Sequence[str],
                  statuses: Mapping[tuple[str, str, str], list[str]], stored: Mapping[tuple, pd.DataFrame],
                  cell_keys: Mapping[tuple[str, str], dict[int, str]],
                  items: Mapping[str, Mapping[str, Any]], figures: dict[tuple[str, ColumnKey], Figure],
                  floor: float) -> None:
    """Each row's most exposed individuals over its keyless attacks (ppbench.boards.exposure),
    and the tiers on them."""
    halves: dict[str, dict[str, list[Any]]] = {}
    for summary in summaries:
        sanitizer = summary.sanitizer
        ran = [a for a in attack_labels
               if combined_status(statuses.get((sanitizer, "attack", a), [])) == "ok"
               and stored.get((sanitizer, "attack", a, DECILE)) is not None]
        values = {a: stored_seed_values(stored.get((sanitizer, "attack", a, DECILE))) for a in ran}
        combined = {a: aggregate_over_seeds(stored[(sanitizer, "attack", a, DECILE)]) for a in ran}
        seeds = {a: sorted(cell_keys.get((sanitizer, a), {})) for a in ran}
        per_seed_items = {a: [items.get(cell_keys[(sanitizer, a)][seed]) for seed in seeds[a]] for a in ran}
        summary.exposure = row_exposure(values, combined, per_seed_items, floor)
        figures[(sanitizer, DECILE_KEY)] = summary.exposure.decile
        figures[(sanitizer, EXPOSED_KEY)] = summary.exposure.exposed_figure
        found = {a: [seed_halves(arrays) for arrays in per_seed_items[a]] for a in ran}
        if ran and not summary.incomplete and all(h is not None for a in ran for h in found[a]):
            halves[sanitizer] = found
    complete = [s for s in summaries if not s.incomplete]
    if complete and all(s.sanitizer in halves for s in complete):
        tiers_found = decile_tiers({s.sanitizer: halves[s.sanitizer] for s in complete})
        for summary in complete:
            summary.decile_tier = tiers_found.get(summary.sanitizer) if tiers_found else None


def seed_worst(sanitizer: str, attack_labels: Sequence[str],
                seed_values: Callable[[str, str], list[float]]) -> list[float]:
    """A row's worst case per seed: the largest of its attacks' figures on that seed."""
    per_attack = [seed_values(sanitizer, a) for a in attack_labels]
    per_attack = [values for values in per_attack if values]
    if not per_attack or len({len(values) for values in per_attack}) != 1:
        return []
    return [float(v) for v in np.max(np.asarray(per_attack, dtype=float), axis=0)]


def summarise_row(sanitizer: str, attack_labels: list[str], primary: dict[str, Column],
               figures: dict[tuple[str, ColumnKey], Figure], per_seed_items: Any,
               standard_check: str | None, paired: dict[str, dict[str, list[SeedItems]]],
               seed_values: Callable[[str, str], list[float]] | None = None) -> RowSummary:
    status = {a: figures[(sanitizer, primary[a].key)].status for a in attack_labels}
    ran = {a: figures[(sanitizer, primary[a].key)] for a in attack_labels
           if status[a] == "ok" and math.isfinite(figures[(sanitizer, primary[a].key)].mean)}
    incomplete = any(s in ("error", "missing") for s in status.values())
    # The audits a row can pass (the spec's standard check first, then the naive audits), each
    # with its own marginal figure: passing one is a claim about that attack alone.
    audit_models = audit_threat_models()
    audits = {a: ran[a] for a in sorted(ran, key=lambda a: (primary[a].plugin_name != standard_check, a))
              if primary[a].plugin_name == standard_check or primary[a].threat_model in audit_models}
    standard = next((a for a in audits if primary[a].plugin_name == standard_check), None)
    if not ran:
        worst_status = combined_status([s for s in status.values() if s != "missing"])
        return RowSummary(sanitizer, Figure(status=worst_status if attack_labels else "missing"), "",
                          {}, audits, standard, Figure(), incomplete)
    per_attack_items = {a: per_seed_items(sanitizer, a) for a in ran}
    if all(v is not None for v in per_attack_items.values()):
        try:
            result = worst_case(per_attack_items, ALPHA)
        except ValueError:
            result = None
        if result is not None:
            paired[sanitizer] = per_attack_items
            per_attack = {a: Figure(i.mean, i.low, i.high, ran[a].n_seeds, i.method, "ok")
                          for a, i in result.per_attack.items()}
            worst = Figure(result.mean, result.low, result.high, ran[result.attack].n_seeds,
                           result.method, "ok")
            return RowSummary(sanitizer, worst, result.attack, per_attack, audits, standard, Figure(), incomplete)
    # An attack without per-item results (a recognizer's figures), with three seeds or more: the
    # worst case over the seeds' figures, simultaneous over the attacks (Bonferroni).
    found = seed_worst_case({a: seed_values(sanitizer, a) for a in ran}) if seed_values else None
    if found is not None:
        attack, interval = found
        worst = Figure(interval.mean, interval.low, interval.high, ran[attack].n_seeds, interval.method, "ok")
        return RowSummary(sanitizer, worst, attack, dict(ran), audits, standard, Figure(), incomplete)
    # No per-item results (e.g. a store migrated from schema 1): the largest mean with that
    # attack's own interval, which is not simultaneous; the footnotes say so.
    attack = max(ran, key=lambda a: (ran[a].mean, a))
    chosen = ran[attack]
    worst = Figure(chosen.mean, chosen.ci_low, chosen.ci_high, chosen.n_seeds,
                   f"{chosen.interval} (not simultaneous)", "ok")
    return RowSummary(sanitizer, worst, attack, dict(ran), audits, standard, Figure(), incomplete)

