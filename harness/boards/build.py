"""Building leaderboards from the store: one board per (data set, task, profile).

Columns, left to right: each utility metric's primary value, each other metric's primary value
(and a distortion metric's other values), each attack's figures (grouped by threat model; the
scoring kind's primary figure first), and the worst case over attacks. Attack figures are
recomputed from the per-item results the store keeps, so that the worst case, tiers and the floor
are judged with paired statistics on the shared test items (:mod:`.statistics`); the ranking
policy is :mod:`.policy`.

If the store holds two attempts at the same (configuration, plugin, seed), e.g. after a plugin's
version changed the cell key, the most recent one counts and the notes say how many were set aside.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..kinds import ATTACK_KINDS, KNOWLEDGE_LEVELS, THREAT_MODELS, audit_threat_models, separate_threat_models
from ..provenance import collect_provenance
from ..spec import canonical_json
from .board import (ATTACK, DETECTION, LEVEL_PREFIX, MEASURE, TIDY_COLUMNS, UTILITY, WORST_CASE, CellInfo, Column,
                    ColumnKey, Figure, Leaderboard, board_slug, data_label,
                    parse_data_label)
from .notes import footnotes, notes
from .policy import RowSummary, apply_policy
from .exposure import DECILE, EXPOSED, decile_tiers, row_exposure, seed_halves, stored_seed_values
from .statistics import (ALPHA, STUDENT_T, SeedItems, attack_interval, seed_tiers, seed_worst_case,
                         student_t_interval, tiers, worst_case)

FLOOR_FACT = "leakage_floor"
WORST_KEY = ColumnKey(WORST_CASE, "", "advantage")
DECILE_KEY = ColumnKey(WORST_CASE, "", DECILE)
EXPOSED_KEY = ColumnKey(WORST_CASE, "", EXPOSED)
# Column headers of stored values, where the value's name is long.
SHORT_HEADERS = {"advantage": "adv", "accuracy": "acc", "tpr_at_1pct_fpr": "tpr@1%",
                 "canary_tpr_at_1pct_fpr": "canary tpr@1%", "canary_auc": "canary auc",
                 "tar_at_1pct_far": "tar@1%far", "tar_at_0.1pct_far": "tar@0.1%far"}
RECONSTRUCTION_VALUES = ("psnr", "ssim")
CELL_INTERVAL = "the cells' own, combined over seeds"


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


def _combined_status(statuses: Sequence[str]) -> str:
    if not statuses:
        return "missing"
    if "error" in statuses:
        return "error"
    return "ok" if "ok" in statuses else "n/a"


def _columns(rows: pd.DataFrame) -> list[Column]:
    """The value columns, derived from what the plugins stored."""
    ok = rows[(rows["status"] == "ok") & (rows["metric"] != "")]
    utility: list[Column] = []
    measures: list[Column] = []
    for label in sorted(rows.loc[rows["kind"] == "metric", "plugin_label"].unique()):
        mine = ok[(ok["kind"] == "metric") & (ok["plugin_label"] == label)]
        name = str(rows.loc[rows["plugin_label"] == label, "plugin"].iloc[0])
        primary = mine[mine["is_primary"] == 1]
        if primary.empty and mine["metric"].nunique() == 1:
            primary = mine
        if primary.empty:  # every cell failed: one column carries its status
            measures.append(Column(ColumnKey(MEASURE, label, ""), label, name, "", "higher"))
            continue
        first = primary.sort_values("metric").iloc[0]
        role, value = str(first["role"]), str(first["metric"])
        if role == "utility":
            utility.append(Column(ColumnKey(UTILITY, label, value), label, name, role, str(first["better"])))
        else:
            measures.append(Column(ColumnKey(MEASURE, label, value), f"{label} ({value})", name, role,
                                   str(first["better"])))
        # A distortion metric's other figures are all shown; any metric's "reported" ones are.
        shown = {"reported", "distortion"} if role == "distortion" else {"reported"}
        extras = mine[(mine["metric"] != value) & mine["role"].isin(shown)]
        for extra, values in extras.groupby("metric", sort=True):
            measures.append(Column(ColumnKey(MEASURE, label, str(extra)), f"{label} ({extra})",
                                   name, str(values["role"].iloc[0]), str(values["better"].iloc[0])))
    attacks: list[Column] = []
    detections: list[Column] = []
    attack_cells = rows[rows["kind"] == "attack"].drop_duplicates("plugin_label")
    separate = separate_threat_models()
    # Keyless attacks first, grouped by attacker-knowledge level (ignorant first), then each
    # threat model judged apart (the key holder).
    def level_rank(threat_model: str) -> int:
        model = THREAT_MODELS.get(threat_model)
        level = model.knowledge if model is not None else ""
        return KNOWLEDGE_LEVELS.index(level) if level in KNOWLEDGE_LEVELS else len(KNOWLEDGE_LEVELS)

    for cell in sorted(attack_cells.itertuples(index=False),
                       key=lambda c: (c.threat_model in separate, level_rank(c.threat_model),
                                      c.threat_model, c.plugin_label)):
        kind = ATTACK_KINDS.get(cell.scoring or "attribute", ATTACK_KINDS["attribute"])
        if not kind.ranked:
            detections.append(Column(ColumnKey(DETECTION, cell.plugin_label, kind.primary),
                                     f"{cell.plugin_label} {kind.primary}", cell.plugin, "leakage",
                                     "lower", cell.threat_model, kind.name))
            continue
        # Reconstructions (a reconstruction attack's, or a decoded payload's) are shown by their
        # likeness too, when the plugin's cells stored it.
        likeness = [value for value in RECONSTRUCTION_VALUES
                    if ((ok["plugin_label"] == cell.plugin_label) & (ok["metric"] == value)).any()]
        stored_any = (ok["plugin_label"] == cell.plugin_label).any()
        shown = [value for value in kind.board_values if not stored_any
                 or ((ok["plugin_label"] == cell.plugin_label) & (ok["metric"] == value)).any()]
        ranked = [kind.ranked_value] if kind.ranked_value else []
        for value in (kind.primary, *ranked, *shown, *likeness):
            short = SHORT_HEADERS.get(value, value)
            attacks.append(Column(ColumnKey(ATTACK, cell.plugin_label, value),
                                  f"{cell.plugin_label} {short}", cell.plugin, "leakage", "lower",
                                  cell.threat_model, kind.name))
    keyless = [c for c in attacks if c.threat_model not in separate]
    worst = [Column(WORST_KEY, "worst-case adv", "", "leakage", "lower")] if keyless else []
    keyless_labels = {c.key.plugin for c in keyless}
    if ((ok["metric"] == DECILE) & ok["plugin_label"].isin(keyless_labels)).any():
        worst.append(Column(DECILE_KEY, "worst decile", "", "leakage", "lower"))
        worst.append(Column(EXPOSED_KEY, "exposed", "", "leakage", "lower"))
    for model in sorted({c.threat_model for c in attacks} & separate):
        worst.append(Column(separate_worst_key(model), f"{model} worst-case adv", "", "leakage", "lower", model))
    return utility + measures + detections + attacks + worst


def separate_worst_key(threat_model: str) -> ColumnKey:
    """The worst-case column of the attacks of a threat model judged apart (``ThreatModel.separate``)."""
    return ColumnKey(WORST_CASE, threat_model, "advantage")


def _aggregate(values: pd.DataFrame) -> Figure:
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
    columns = _columns(rows)
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
            status = _combined_status(statuses.get((sanitizer, kind, column.key.plugin), []))
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
                    figure = _aggregate(values) if values is not None else Figure(status="missing")
            figures[(sanitizer, column.key)] = figure
        summary = _summarise(sanitizer, attack_labels, primary, figures, per_seed_items,
                             standard_check, paired, seed_values)
        # A threat model judged apart gets its own worst case, kept out of tiers and the ranking.
        summary.separate = {model: _summarise(sanitizer, labels, primary, figures, per_seed_items, None, {})
                            for model, labels in apart.items()}
        for model, judged in summary.separate.items():
            figures[(sanitizer, separate_worst_key(model))] = judged.worst
        summary.by_level = {level: _summarise(sanitizer, labels, primary, figures, per_seed_items, None, {})
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
        tier_of = seed_tiers({s.sanitizer: _seed_worst(s.sanitizer, attack_labels, seed_values)
                              for s in finished}, ALPHA)
        tiers_over_seeds = tier_of is not None
    floor = _floor(rows, facts, dataset, task, profile)
    # Cross-validation noise can put an uninformative floor slightly below 0; nothing is below 0.
    floor_value = max(0.0, floor.mean) if math.isfinite(floor.mean) else 0.0
    if any(c.key == DECILE_KEY for c in columns):
        _add_exposure(summaries, attack_labels, statuses, stored, cell_keys, items, figures,
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
        figure = _aggregate(values)
        if figure.status == "ok":
            info.setdefault((sanitizer, kind, plugin), CellInfo()).diagnostics[str(name)] = figure
    return info


def _num_classes(rows: pd.DataFrame) -> int:
    """The sensitive attribute's class count, from the stored balanced-accuracy chance (1/K)."""
    chances = rows.loc[(rows["metric"] == "balanced_accuracy") & rows["chance"].notna(), "chance"]
    return int(round(1.0 / float(chances.iloc[0]))) if len(chances) else 2


def _add_exposure(summaries: list[RowSummary], attack_labels: Sequence[str],
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
               if _combined_status(statuses.get((sanitizer, "attack", a), [])) == "ok"
               and stored.get((sanitizer, "attack", a, DECILE)) is not None]
        values = {a: stored_seed_values(stored.get((sanitizer, "attack", a, DECILE))) for a in ran}
        combined = {a: _aggregate(stored[(sanitizer, "attack", a, DECILE)]) for a in ran}
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


def _seed_worst(sanitizer: str, attack_labels: Sequence[str],
                seed_values: Callable[[str, str], list[float]]) -> list[float]:
    """A row's worst case per seed: the largest of its attacks' figures on that seed."""
    per_attack = [seed_values(sanitizer, a) for a in attack_labels]
    per_attack = [values for values in per_attack if values]
    if not per_attack or len({len(values) for values in per_attack}) != 1:
        return []
    return [float(v) for v in np.max(np.asarray(per_attack, dtype=float), axis=0)]


def _summarise(sanitizer: str, attack_labels: list[str], primary: dict[str, Column],
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
        worst_status = _combined_status([s for s in status.values() if s != "missing"])
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
