"""Building leaderboards from the store: one board per (data set, task, profile).

Columns, left to right: each utility metric's primary value, each other metric's primary value
(and a distortion metric's other values), each attack's figures (grouped by threat model; the
scoring kind's primary figure first), and the worst case over attacks. Attack figures are
recomputed from the per-item results the store keeps, so that the worst case, tiers and the floor
are judged with paired statistics on the shared test items (:mod:`.statistics`). Which columns
a board has is :mod:`.columns`, each row's worst case and exposure :mod:`.rows`, and the ranking
policy :mod:`.policy`.

If the store holds two attempts at the same (configuration, plugin, seed), e.g. after a plugin's
version changed the cell key, the most recent one counts and the notes say how many were set aside.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ..kinds import ATTACK_KINDS, KNOWLEDGE_LEVELS, THREAT_MODELS, separate_threat_models
from ..provenance import collect_provenance
from ..spec import canonical_json
from .board import (ATTACK, DETECTION, LEVEL_PREFIX, TIDY_COLUMNS, UTILITY, WORST_CASE, CellInfo, Column,
                    ColumnKey, Figure, Leaderboard, board_slug, data_label,
                    parse_data_label)
from .columns import DECILE_KEY, EXPOSED_KEY, WORST_KEY, board_columns, separate_worst_key
from .exposure import stored_seed_values
from .notes import footnotes, notes
from .policy import RowSummary, apply_policy
from .rows import add_exposure, aggregate_over_seeds, combined_status, seed_worst, summarise_row
from .statistics import ALPHA, SeedItems, attack_interval, seed_tiers, tiers

FLOOR_FACT = "leakage_floor"


def build_leaderboards(frame: pd.DataFrame, items: Mapping[str, Mapping[str, Any]] | None = None,
                       facts: Iterable[Any] = (), standard_check: str | None = None,
                       ranking_utility: str | None = None) -> list[Leaderboard]:
    """One leaderboard per (data set, task, profile) of the store's rows (``ResultStore.frame()``).

    ``items`` (``ResultStore.items``) holds each attack cell's per-item truth and predictions and
    ``facts`` (``ResultStore.facts``) the leakage floor's predictions; without them the board
    falls back to the stored figures and says so. ``standard_check`` names the attack that the
    benchmark spec calls the papers' standard check (it decides the flag).
    """
    if frame.empty:
        return []
    items = items or {}
    facts = list(facts)
    frame = frame.assign(data_params=frame["provenance"].map(_data_params))
    profiles_per_task = frame.groupby(["dataset", "task"])["profile"].nunique()
    labels = _data_labels(frame)
    boards = []
    for (dataset, task, profile, data_params), rows in frame.groupby(
            ["dataset", "task", "profile", "data_params"], sort=False):
        data = labels[(dataset, data_params)]
        slug = board_slug(str(dataset), str(task),
                          str(profile) if profiles_per_task[(dataset, task)] > 1 else None, data)
        boards.append(_build_board(str(dataset), str(task), str(profile), slug,
                                   rows.reset_index(drop=True), items, facts, standard_check, data,
                                   ranking_utility))
    return sorted(boards, key=lambda b: (b.dataset, b.task, b.profile, _data_order(b.data)))


def _data_params(provenance: Any) -> str:
    """A cell's data configuration (the spec's ``[dataset]`` parameters), as canonical JSON."""
    try:
        params = json.loads(provenance).get("data_params", {}) if provenance else {}
    except (TypeError, ValueError, AttributeError):
        params = {}
    return canonical_json(params if isinstance(params, dict) else {})


def _data_labels(frame: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Each data configuration's label on its board: the parameters that differ among the data
    set's configurations in ``frame`` ("n_train=500"), '' where the data set has only one."""
    labels: dict[tuple[str, str], str] = {}
    for dataset, group in frame.groupby("dataset", sort=False):
        configs = {p: json.loads(p) for p in group["data_params"].unique()}
        for raw, config in configs.items():
            labels[(dataset, raw)] = data_label(config, list(configs.values()))
    return labels


def data_labels_of(frame: pd.DataFrame) -> pd.Series:
    """Each stored row's data configuration label, as its board names it ("n_train=500")."""
    params = frame["provenance"].map(_data_params)
    labels = _data_labels(frame.assign(data_params=params))
    return pd.Series([labels[(d, p)] for d, p in zip(frame["dataset"], params)], index=frame.index)


def _data_order(label: str) -> tuple:
    """Boards of a data sweep in the order of their values (n_train=500 before n_train=2000)."""
    parts = []
    for _, value in parse_data_label(label):
        try:
            parts.append((0, float(value), ""))
        except ValueError:
            parts.append((1, 0.0, value))
    return tuple(parts)


def boards_from_store(store: Any, cell_keys: Iterable[str] | None = None,
                      standard_check: str | None = None,
                      ranking_utility: str | None = None) -> list[Leaderboard]:
    """Leaderboards of a :class:`~ppbench.store.ResultStore` (optionally only the given cells)."""
    frame = store.frame(cell_keys)
    attack_keys = frame.loc[frame["kind"] == "attack", "cell_key"].unique().tolist()
    return build_leaderboards(frame, store.items(attack_keys), store.facts(), standard_check,
                              ranking_utility)


def _latest_attempts(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    cells = rows.drop_duplicates("cell_key")[
        ["cell_key", "sanitizer_label", "kind", "plugin_label", "seed", "created_at"]]
    cells = cells.sort_values(["created_at", "cell_key"])
    latest = cells.drop_duplicates(["sanitizer_label", "kind", "plugin_label", "seed"], keep="last")
    return rows[rows["cell_key"].isin(set(latest["cell_key"]))], len(cells) - len(latest)


def _seed_items(arrays: Mapping[str, Any] | None, num_classes: int) -> SeedItems | None:
    if not arrays or "truth" not in arrays or "predicted" not in arrays:
        return None
    # A kind scored on other classes than the sensitive attribute's (membership: member or not)
    # stores its own count.
    if "num_classes" in arrays:
        num_classes = int(arrays["num_classes"][0])
    return SeedItems(arrays["truth"], arrays["predicted"], num_classes)


def _floor(rows: pd.DataFrame, facts: list[Any], dataset: str, task: str, profile: str) -> Figure:
    """The leakage floor over the board's seeds, scored like an attack."""
    seeds = sorted({int(s) for s in rows["seed"]})
    data_keys = {json.loads(p).get("data_key") for p in rows["provenance"].dropna() if p}
    per_seed: dict[int, SeedItems] = {}
    for fact in facts:
        if (fact.name == FLOOR_FACT and fact.dataset == dataset and fact.task == task
                and fact.profile == profile and fact.seed in seeds and fact.data_key in data_keys):
            per_seed[fact.seed] = SeedItems(fact.arrays["truth"], fact.arrays["predicted"],
                                            int(fact.arrays["num_classes"][0]))
    if not per_seed or len(per_seed) < len(seeds):
        return Figure(status="missing")
    interval = attack_interval([per_seed[s] for s in seeds], ALPHA)
    return Figure(interval.mean, interval.low, interval.high, len(seeds), interval.method, "ok")


def _build_board(dataset: str, task: str, profile: str, slug: str, rows: pd.DataFrame,
                 items: Mapping[str, Mapping[str, Any]], facts: list[Any],
                 standard_check: str | None, data: str = "",
                 ranking_utility: str | None = None) -> Leaderboard:
    rows, superseded = _latest_attempts(rows)
    sensitive = str(rows["sensitive"].iloc[0])
    columns = board_columns(rows)
    sanitizers = sorted(rows["sanitizer_label"].unique())
    seeds = sorted({int(s) for s in rows["seed"]})
    cells = rows.drop_duplicates("cell_key")
    statuses: dict[tuple[str, str, str], list[str]] = {}
    cell_keys: dict[tuple[str, str], dict[int, str]] = {}
    for cell in cells.itertuples(index=False):
        statuses.setdefault((cell.sanitizer_label, cell.kind, cell.plugin_label), []).append(cell.status)
        if cell.kind == "attack" and cell.status == "ok":
            cell_keys.setdefault((cell.sanitizer_label, cell.plugin_label), {})[int(cell.seed)] = cell.cell_key
    ok = rows[(rows["status"] == "ok") & (rows["metric"] != "")].sort_values("seed")
    stored = {key: group for key, group in
              ok.groupby(["sanitizer_label", "kind", "plugin_label", "metric"], sort=False)}
    num_classes = _num_classes(rows)

    def per_seed_items(sanitizer: str, attack: str) -> list[SeedItems] | None:
        keys = cell_keys.get((sanitizer, attack), {})
        found = [_seed_items(items.get(keys[s]), num_classes) for s in sorted(keys)]
        return found if found and all(f is not None for f in found) else None

    def seed_values(sanitizer: str, attack: str) -> list[float]:
        """An attack's worst-case figure per seed (seed order), as its cells stored it."""
        return stored_seed_values(stored.get((sanitizer, "attack", attack, primary[attack].key.value)))

    figures: dict[tuple[str, ColumnKey], Figure] = {}
    summaries: list[RowSummary] = []
    primary: dict[str, Column] = {}
    # Each attack's figure in the worst case: its scoring kind's primary, or the kind's value on
    # the advantage scale when the primary is not (a TAR at a FAR).
    for column in columns:
        if column.key.kind != ATTACK:
            continue
        ranked = ATTACK_KINDS.get(column.scoring or "attribute", ATTACK_KINDS["attribute"]).worst_case_value
        current = primary.get(column.key.plugin)
        if current is None or (column.key.value == ranked and current.key.value != ranked):
            primary[column.key.plugin] = column
    separate = separate_threat_models()
    attack_labels = sorted(a for a, c in primary.items() if c.threat_model not in separate)
    apart = {model: sorted(a for a, c in primary.items() if c.threat_model == model)
             for model in sorted({c.threat_model for c in primary.values()} & separate)}
    by_level = attacks_by_level(attack_labels, primary)
    paired: dict[str, dict[str, list[SeedItems]]] = {}
    for sanitizer in sanitizers:
        for column in columns:
            if column.key.kind == WORST_CASE:
                continue
            kind = "attack" if column.key.kind in (ATTACK, DETECTION) else "metric"
            status = combined_status(statuses.get((sanitizer, kind, column.key.plugin), []))
            figure = Figure(status=status)
            if status == "ok":
                per_seed = per_seed_items(sanitizer, column.key.plugin) if (
                    column.key.kind == ATTACK and column is primary.get(column.key.plugin)) else None
                if per_seed is not None:
                    interval = attack_interval(per_seed, ALPHA)
                    figure = Figure(interval.mean, interval.low, interval.high, len(per_seed),
                                    interval.method, "ok")
                else:
                    values = stored.get((sanitizer, kind, column.key.plugin, column.key.value))
                    figure = aggregate_over_seeds(values) if values is not None else Figure(status="missing")
            figures[(sanitizer, column.key)] = figure
        summary = summarise_row(sanitizer, attack_labels, primary, figures, per_seed_items,
                             standard_check, paired, seed_values)
        # A threat model judged apart gets its own worst case, kept out of tiers and the ranking.
        summary.separate = {model: summarise_row(sanitizer, labels, primary, figures, per_seed_items, None, {})
                            for model, labels in apart.items()}
        for model, judged in summary.separate.items():
            figures[(sanitizer, separate_worst_key(model))] = judged.worst
        summary.by_level = {level: summarise_row(sanitizer, labels, primary, figures, per_seed_items, None, {})
                            for level, labels in by_level.items()}
        summaries.append(summary)
    # The spec's ranking utility, else the first metric (by label) with a utility figure.
    utilities = [c for c in columns if c.key.kind == UTILITY]
    utility_column = next((c for c in utilities if c.plugin_name == ranking_utility),
                          utilities[0] if utilities else None)
    for summary in summaries:
        summary.utility = figures[(summary.sanitizer, utility_column.key)] if utility_column else Figure()
        figures[(summary.sanitizer, WORST_KEY)] = summary.worst
    finished = [s for s in summaries if not s.incomplete]
    complete = {s.sanitizer: paired[s.sanitizer] for s in finished if s.sanitizer in paired}
    try:
        tier_of = tiers(complete, ALPHA) if complete else None
    except ValueError:
        tier_of = None  # rows do not share their test items: no paired test is possible
    tiers_over_seeds = False
    if finished and len(complete) < len(finished):
        # An attack stores no per-item results (a recognizer's figures): pair the rows over seeds.
        tier_of = seed_tiers({s.sanitizer: seed_worst(s.sanitizer, attack_labels, seed_values)
                              for s in finished}, ALPHA)
        tiers_over_seeds = tier_of is not None
    floor = _floor(rows, facts, dataset, task, profile)
    # Cross-validation noise can put an uninformative floor slightly below 0; nothing is below 0.
    floor_value = max(0.0, floor.mean) if math.isfinite(floor.mean) else 0.0
    if any(c.key == DECILE_KEY for c in columns):
        add_exposure(summaries, attack_labels, statuses, stored, cell_keys, items, figures,
                      floor_value)
    sign = -1.0 if utility_column is not None and utility_column.better == "lower" else 1.0
    ordered = apply_policy(summaries, tier_of, floor_value, sign)
    table = _tidy_table(dataset, data, task, sensitive, profile, columns, ordered, figures)
    ranking = pd.DataFrame([{
        "position": s.position, "tier": s.tier, "sanitizer": s.sanitizer,
        "worst_case": s.worst.mean, "worst_case_ci_low": s.worst.ci_low,
        "worst_case_ci_high": s.worst.ci_high, "worst_case_n_seeds": s.worst.n_seeds,
        "worst_case_interval": s.worst.interval, "worst_attack": s.worst_attack,
        "incomplete": s.incomplete, "leaks": s.leaks,
        **({"worst_decile": s.exposure.decile.mean, "worst_decile_ci_low": s.exposure.decile.ci_low,
            "worst_decile_ci_high": s.exposure.decile.ci_high, "worst_decile_attack": s.exposure.attack,
            "exposed_share": s.exposure.exposed, "decile_tier": s.decile_tier}
           if s.exposure is not None else {}),
        "utility": s.utility.mean, "utility_ci_low": s.utility.ci_low,
        "utility_ci_high": s.utility.ci_high, "utility_n_seeds": s.utility.n_seeds,
        "pareto": s.pareto, "flag": s.flag,
        **{f"{model}_{name}": value for model, judged in s.separate.items() for name, value in (
            ("worst_case", judged.worst.mean), ("worst_case_ci_low", judged.worst.ci_low),
            ("worst_case_ci_high", judged.worst.ci_high), ("worst_attack", judged.worst_attack))},
        **{f"{LEVEL_PREFIX}{level}:{name}": value for level, judged in s.by_level.items() for name, value in (
            ("worst_case", judged.worst.mean), ("worst_case_ci_low", judged.worst.ci_low),
            ("worst_case_ci_high", judged.worst.ci_high), ("worst_attack", judged.worst_attack))},
    } for s in ordered])
    ranking["tier"] = ranking["tier"].astype("Int64")
    board = Leaderboard(dataset=dataset, task=task, sensitive=sensitive, profile=profile, slug=slug, data=data,
                        columns=columns, utility_column=utility_column,
                        standard_check=standard_check if standard_check in {c.plugin_name for c in columns} else None,
                        floor=floor, table=table, ranking=ranking,
                        provenance=collect_provenance(rows), notes=notes(rows, superseded),
                        cell_info=_cell_info(rows), attack_sources=_attack_sources(rows))
    board.footnotes = footnotes(board, seeds, tiered=tier_of is not None, over_seeds=tiers_over_seeds)
    return board


def attacks_by_level(attack_labels: Sequence[str], primary: Mapping[str, Column]) -> dict[str, list[str]]:
    """The keyless attacks per attacker-knowledge level (their threat model's, ``unlisted`` for a
    plugin's own threat model), in ``KNOWLEDGE_LEVELS`` order; empty when they share one level,
    whose worst case is then the row's own."""
    levels: dict[str, list[str]] = {}
    for label in attack_labels:
        model = THREAT_MODELS.get(primary[label].threat_model)
        levels.setdefault(model.knowledge if model is not None else "unlisted", []).append(label)
    if len(levels) < 2:
        return {}
    order = {level: i for i, level in enumerate(KNOWLEDGE_LEVELS)}
    return {level: levels[level] for level in sorted(levels, key=lambda l: (order.get(l, len(order)), l))}


def _attack_sources(rows: pd.DataFrame) -> dict[str, str]:
    """Attacks from a package other than ppbench itself, by label: "distribution version", from
    their cells' provenance (a third-party attack that tops a row is named with its package)."""
    sources: dict[str, str] = {}
    for cell in rows[rows["kind"] == "attack"].drop_duplicates("plugin_label").itertuples(index=False):
        try:
            plugin = json.loads(cell.provenance or "{}").get("attack") or {}
        except (TypeError, ValueError):
            continue
        distribution = plugin.get("distribution")
        if distribution and distribution != "ppbench":
            sources[cell.plugin_label] = f"{distribution} {plugin.get('version', '?')}".strip()
    return sources


def _cell_info(rows: pd.DataFrame) -> dict[tuple[str, str, str], CellInfo]:
    """Per (sanitizer, cell kind, plugin label): each seed's wall time, the diagnostics over seeds
    and the error and n/a messages, so that a board can show what its figures cost and what the
    plugin saw without a query on the store."""
    info: dict[tuple[str, str, str], CellInfo] = {}
    for cell in rows.drop_duplicates("cell_key").sort_values(["seed", "cell_key"]).itertuples(index=False):
        entry = info.setdefault((cell.sanitizer_label, cell.kind, cell.plugin_label), CellInfo())
        entry.cell_keys[int(cell.seed)] = cell.cell_key
        if pd.notna(cell.wall_time) and math.isfinite(float(cell.wall_time)):
            entry.wall_time[int(cell.seed)] = float(cell.wall_time)
        if cell.status != "ok":
            text = str(cell.error).strip() if isinstance(cell.error, str) and cell.error.strip() else (
                f"{cell.status} (no message recorded)")
            entry.messages.setdefault(f"{cell.status}: {text}", []).append(int(cell.seed))
    # The recorded budget (role "budget") travels with the diagnostics, under its "budget:" names.
    diagnostics = rows[(rows["status"] == "ok") & rows["role"].isin(["diagnostic", "budget"])].sort_values("seed")
    for (sanitizer, kind, plugin, name), values in diagnostics.groupby(
            ["sanitizer_label", "kind", "plugin_label", "metric"], sort=True):
        figure = aggregate_over_seeds(values)
        if figure.status == "ok":
            info.setdefault((sanitizer, kind, plugin), CellInfo()).diagnostics[str(name)] = figure
    return info


def _num_classes(rows: pd.DataFrame) -> int:
    """The sensitive attribute's class count, from the stored balanced-accuracy chance (1/K)."""
    chances = rows.loc[(rows["metric"] == "balanced_accuracy") & rows["chance"].notna(), "chance"]
    return int(round(1.0 / float(chances.iloc[0]))) if len(chances) else 2


def _tidy_table(dataset: str, data: str, task: str, sensitive: str, profile: str, columns: Sequence[Column],
                summaries: Sequence[RowSummary], figures: Mapping[tuple[str, ColumnKey], Figure]) -> pd.DataFrame:
    records = []
    for summary in summaries:
        for column in columns:
            figure = figures[(summary.sanitizer, column.key)]
            if column.key.kind != WORST_CASE:
                plugin = column.key.plugin
            elif column.key.plugin:
                plugin = summary.separate[column.key.plugin].worst_attack
            elif column.key in (DECILE_KEY, EXPOSED_KEY):
                plugin = summary.exposure.attack if summary.exposure is not None else ""
            else:
                plugin = summary.worst_attack
            records.append({
                "dataset": dataset, "data": data, "task": task, "sensitive": sensitive,
                "profile": profile, "position": summary.position, "tier": summary.tier, "sanitizer": summary.sanitizer,
                "column": column.header, "kind": column.key.kind, "plugin": plugin,
                "value": column.key.value, "threat_model": column.threat_model, "role": column.role,
                "better": column.better, "mean": figure.mean, "ci_low": figure.ci_low,
                "ci_high": figure.ci_high, "half_width": figure.half_width,
                "n_seeds": figure.n_seeds, "interval": figure.interval, "status": figure.status,
                "incomplete": summary.incomplete, "leaks": summary.leaks, "pareto": summary.pareto,
                "flag": summary.flag,
            })
    return pd.DataFrame(records, columns=list(TIDY_COLUMNS))
