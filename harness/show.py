"""``ppbench show CELL``: one stored cell in full, for a reader who doubts a figure.

A cell is named by its key (any unique prefix of it: boards' JSON and CSV carry the keys' owners,
``ppbench show --sanitizer LABEL --plugin LABEL`` finds them) and shown with everything the store
holds about it: the configuration, the status and its message, every figure with its interval
and role, what the plugin recorded besides (its diagnostics: epochs trained, the epoch kept...),
the budget the figure was produced with (the profile's split sizes and training caps, and the
plugin's own budget parameters), and its provenance.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import pandas as pd

from .api import get_profile
from .spec import SpecError

# Plugin parameters that bound what an attack or metric may spend (a None means the profile's).
BUDGET_PARAMS = ("max_epochs", "epochs", "steps", "patience", "queries", "width", "depth",
                 "n_shadow", "shadow_models", "n_reference", "embedding_dim", "batch_size", "lr")


def find_cells(frame: pd.DataFrame, prefix: str | None = None, *, sanitizer: str | None = None,
               plugin: str | None = None, seed: int | None = None, task: str | None = None) -> list[str]:
    """The keys of the stored cells that match, in store order."""
    rows = frame
    if prefix:
        rows = rows[rows["cell_key"].str.startswith(prefix)]
    for column, wanted in (("sanitizer_label", sanitizer), ("plugin_label", plugin), ("task", task)):
        if wanted is not None:
            rows = rows[rows[column] == wanted]
    if seed is not None:
        rows = rows[rows["seed"] == seed]
    return list(dict.fromkeys(rows["cell_key"]))


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    value = float(value)
    return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}".rstrip("0").rstrip(".")


def describe_cell(frame: pd.DataFrame, key: str) -> list[str]:
    """Every line ``ppbench show`` prints for the cell ``key``."""
    rows = frame[frame["cell_key"] == key]
    first = rows.iloc[0]
    kind = first["kind"]
    lines = [f"cell {key}: {kind} {first['plugin_label']} on {first['sanitizer_label']}, "
             f"{first['dataset']} / {first['task']} (sensitive: {first['sensitive']}), seed "
             f"{first['seed']}, profile {first['profile']}"]
    wall = first["wall_time"]
    when = f"{_number(wall)} s" if wall is not None and pd.notna(wall) else "time not recorded"
    lines.append(f"status: {first['status']} ({when} on {first['device'] or '?'}, stored {first['created_at']})")
    if first["error"]:
        lines.append("message:")
        lines += [f"  {line}" for line in str(first["error"]).splitlines()]
    if kind == "attack":
        from .kinds import THREAT_MODELS

        model = THREAT_MODELS.get(first["threat_model"])
        knowledge = f" ({model.knowledge})" if model is not None else ""
        lines.append(f"threat model: {first['threat_model']}{knowledge}; scoring: {first['scoring']}")
    params = json.loads(first["plugin_params"] or "{}")
    sanitizer_params = json.loads(first["sanitizer_params"] or "{}")
    lines.append(f"{first['plugin']} parameters: " + (", ".join(f"{k}={v!r}" for k, v in params.items()) or "none"))
    lines.append(f"{first['sanitizer']} parameters: "
                 + (", ".join(f"{k}={v!r}" for k, v in sanitizer_params.items()) or "none"))

    figures = rows[rows["metric"].notna() & ~rows["role"].isin(["diagnostic", "budget"])]
    if len(figures):
        lines.append("figures:")
        width = max(len(str(m)) for m in figures["metric"])
        for row in figures.itertuples(index=False):
            interval = (f" [{_number(row.ci_low)}, {_number(row.ci_high)}]"
                        if pd.notna(row.ci_low) and pd.notna(row.ci_high) else "")
            chance = f", chance {_number(row.chance)}" if pd.notna(row.chance) else ""
            tags = ", ".join(t for t in (row.role, "primary" if row.is_primary else "",
                                         f"{row.better} is better" if row.better else "") if t)
            lines.append(f"  {str(row.metric):<{width}}  {_number(row.value)}{interval}  ({tags}{chance})")
    diagnostics = rows[rows["role"] == "diagnostic"]
    lines += budget_lines(first, params, diagnostics, rows[rows["role"] == "budget"])
    lines.append("provenance:")
    provenance = json.loads(first["provenance"] or "{}")
    for name, value in sorted(provenance.items()):
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        lines.append(f"  {name}: {value}")
    return lines


def budget_lines(first: pd.Series, params: dict[str, Any], diagnostics: pd.DataFrame,
                 recorded: pd.DataFrame | None = None) -> list[str]:
    """What the figure was produced with: the budget the plugin recorded with its figures
    (epochs, models, embedding dimension: ``budget:<name>``), the profile's sizes and caps, the
    plugin's budget parameters (None: the profile's), and its diagnostics."""
    lines = ["budget:"]
    if recorded is not None and len(recorded):
        lines.append("  recorded with the figures: " + ", ".join(
            f"{str(m).removeprefix('budget:')} {_number(v)}"
            for m, v in zip(recorded["metric"], recorded["value"])))
    else:
        lines.append("  recorded with the figures: nothing (the plugin records no budget)")
    try:
        profile = get_profile(str(first["profile"]))
    except ValueError:
        profile = None
    if profile is not None:
        lines.append(f"  profile {profile.name}: {profile.image_size}×{profile.image_size} images; "
                     f"splits train {profile.n_train}, attack {profile.n_attack}, test "
                     f"{profile.n_test}, aux {profile.n_aux} (a data set may set its own); training "
                     f"capped at {profile.max_epochs} epochs, patience {profile.patience}, batch "
                     f"{profile.batch_size}")
    own = {k: v for k, v in params.items() if k in BUDGET_PARAMS}
    if own:
        lines.append("  plugin: " + ", ".join(
            f"{k}={'the profile' + chr(39) + 's' if v is None else repr(v)}" for k, v in own.items()))
    if len(diagnostics):
        spent = ", ".join(f"{str(m).removeprefix('diag:')} {_number(v)}"
                          for m, v in zip(diagnostics["metric"], diagnostics["value"]))
        lines.append(f"  spent (the plugin's diagnostics): {spent}")
    else:
        lines.append("  spent: the plugin recorded no diagnostics")
    return lines


def show(frame: pd.DataFrame, prefix: str | None, *, sanitizer: str | None = None,
         plugin: str | None = None, seed: int | None = None, task: str | None = None,
         store: str = "") -> list[str]:
    """The lines for every cell that matches; one clear error when none does, or when a bare key
    prefix is ambiguous."""
    if not (prefix or sanitizer or plugin):
        raise SpecError("ppbench show: name a cell (its key, or a unique prefix of it) or filter with "
                        "--sanitizer/--plugin (labels as on the board)")
    keys = find_cells(frame, prefix, sanitizer=sanitizer, plugin=plugin, seed=seed, task=task)
    if not keys:
        raise SpecError(f"{store}: no stored cell matches {_what(prefix, sanitizer, plugin, seed, task)}")
    if prefix and not (sanitizer or plugin) and len(keys) > 1:
        shown = ", ".join(keys[:5]) + (" …" if len(keys) > 5 else "")
        raise SpecError(f"{store}: {len(keys)} cells start with {prefix!r} ({shown}); give more of the key")
    out: list[str] = []
    for key in keys:
        if out:
            out.append("")
        out += describe_cell(frame, key)
    return out


def _what(prefix: str | None, sanitizer: str | None, plugin: str | None, seed: int | None,
          task: str | None) -> str:
    parts: Sequence[str] = [f"key {prefix}*" if prefix else "", f"sanitizer {sanitizer}" if sanitizer else "",
                            f"plugin {plugin}" if plugin else "", f"seed {seed}" if seed is not None else "",
                            f"task {task}" if task else ""]
    return ", ".join(p for p in parts if p)
