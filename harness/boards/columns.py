"""Which columns a board has, derived from what the plugins stored: utility metrics first, then
other metrics, then each attack's figures grouped by attacker-knowledge level, then the worst
cases (over the keyless attacks, their worst decile and exposed share, and one per threat model
judged apart)."""

from __future__ import annotations

import pandas as pd

from ..kinds import ATTACK_KINDS, KNOWLEDGE_LEVELS, THREAT_MODELS, separate_threat_models
from .board import ATTACK, DETECTION, MEASURE, UTILITY, WORST_CASE, Column, ColumnKey
from .exposure import DECILE, EXPOSED

WORST_KEY = ColumnKey(WORST_CASE, "", "advantage")
DECILE_KEY = ColumnKey(WORST_CASE, "", DECILE)
EXPOSED_KEY = ColumnKey(WORST_CASE, "", EXPOSED)
# Column headers of stored values, where the value's name is long.
SHORT_HEADERS = {"advantage": "adv", "accuracy": "acc", "tpr_at_1pct_fpr": "tpr@1%",
                 "canary_tpr_at_1pct_fpr": "canary tpr@1%", "canary_auc": "canary auc",
                 "tar_at_1pct_far": "tar@1%far", "tar_at_0.1pct_far": "tar@0.1%far"}
RECONSTRUCTION_VALUES = ("psnr", "ssim")


def board_columns(rows: pd.DataFrame) -> list[Column]:
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


