"""What a board says under its table: how to read every figure (footnotes), and what went wrong
or was set aside (notes), one line each."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import pandas as pd

from ..kinds import audit_threat_models, flagging_threat_models
from .board import ATTACK, DETECTION, FLAG, LEAKS, PARETO, TIER, WORST_CASE
from .statistics import ALPHA, N_BOOTSTRAP

if TYPE_CHECKING:
    from .board import Leaderboard

# Error messages in the notes are cut to one line of this many characters.
NOTE_WIDTH = 200


def _one_line(text: Any) -> str:
    lines = text.strip().splitlines() if isinstance(text, str) else []
    line = lines[0] if lines else ""
    return line if len(line) <= NOTE_WIDTH else line[:NOTE_WIDTH - 1] + "…"


def _seed_list(seeds: Iterable[Any]) -> str:
    ordered = sorted({int(s) for s in seeds})
    return ("seed " if len(ordered) == 1 else "seeds ") + ", ".join(str(s) for s in ordered)


def notes(rows: pd.DataFrame, superseded: int) -> list[str]:
    """Failures and set-aside results, one line per (sanitizer, message), grouped over seeds."""
    lines = []
    cells = rows.drop_duplicates("cell_key")
    for status in ("error", "n/a"):
        failed = cells[cells["status"] == status].copy()
        failed["line"] = failed["error"].map(_one_line)
        # A sanitizer that does not apply to a data set is n/a for every plugin: say so once.
        for (sanitizer, line), group in failed.groupby(["sanitizer_label", "line"], sort=True):
            plugins = ", ".join(sorted(group["plugin_label"].unique()))
            lines.append(f"{status}: {sanitizer} × {plugins} ({_seed_list(group['seed'])}): "
                         f"{line or 'no message'}")
    if superseded:
        lines.append(f"{superseded} older attempt(s) of cells that were run again are set aside; "
                     "each (configuration, plugin, seed) counts its latest result.")
    return lines


def _floor_text(board: "Leaderboard") -> str:
    floor = board.floor
    if not math.isfinite(floor.mean):
        return ("leakage floor: unknown (no stored estimate for these seeds); rows are judged "
                "against 0.")
    interval = (f" [{floor.ci_low:.3f}, {floor.ci_high:.3f}]"
                if math.isfinite(floor.ci_low) and math.isfinite(floor.ci_high) else "")
    return (f"leakage floor: {floor.mean:.3f}{interval}, the advantage with which the kept utility "
            "attributes alone predict the sensitive one (cross-validated logistic regression on "
            "the raw train split's labels, scored like an attack). A sanitizer that keeps those "
            "attributes cannot go below it.")


def _has_releases(board: "Leaderboard") -> bool:
    """Whether a row's sanitizer publishes a release (its registered class says so)."""
    from ..registry import get_registry
    from ..release import sanitizer_mode

    try:
        registry = get_registry()
        names = {str(label).split(":")[0].split("(")[0].strip() for label in board.ranking["sanitizer"]}
        return any(sanitizer_mode(registry.sanitizer(name)) == "release"
                   for name in names if name in registry.names("sanitizers"))
    except Exception:  # noqa: BLE001 - a board rendered without the plugins installed
        return False


def footnotes(board: "Leaderboard", seeds: Sequence[int], tiered: bool, over_seeds: bool = False) -> list[str]:
    level = f"{100 * (1 - ALPHA):g}%"
    n = len(seeds)
    if n >= 3:
        spread = f"{n} seeds: ± is the half-width of the {level} Student-t interval over seeds."
    else:
        spread = (f"{n} seed{'s' if n != 1 else ''}: ± is the larger side of a {level} percentile "
                  f"bootstrap interval over the test items ({N_BOOTSTRAP} replicates; accuracy: "
                  "Wilson; a figure other than an attack's first: each seed's own interval, "
                  "combined as for independent estimates). Attack training noise across seeds "
                  "is not in it: publish ≥ 3 seeds.")
    lines = [f"Cells are means over seeds; {spread}"]
    if not board.has_attacks:
        lines.append("No attack has results here, so there is nothing to rank on.")
        return lines
    lines.append(
        "adv is the normalized advantage (bacc − 1/K) / (1 − 1/K) on balanced accuracy (the mean "
        "per-class recall, chance exactly 1/K whatever the class balance): 0 at chance, 1 for a "
        "perfect attack. On a binary attribute a classifier below chance leaks too: each half of "
        "the test items is flipped when the other half scores below chance (cross-fitting, so "
        "chance stays exactly 0). acc is plain accuracy, chance = the largest class frequency of "
        "the train split (the known prior).")
    lines.append(
        f"{WORST_CASE}: the largest mean advantage over the attacks that ran on the row; its ± is "
        f"a {level} interval simultaneous over those attacks (max-t over a paired bootstrap of the "
        "test items, or Bonferroni Student-t with ≥ 3 seeds), so choosing the worst attack after "
        "the fact does not make a row look leakier or safer than it is.")
    key_holder = [c.header for c in board.columns
                  if c.key.kind == WORST_CASE and c.key.plugin in flagging_threat_models()]
    membership = [c.header for c in board.columns
                  if c.key.kind == WORST_CASE and c.key.plugin == "membership"]
    if key_holder:
        lines.append(
            f"{', '.join(key_holder)}: the worst case over the attacks of a threat model no auditor "
            "holds (the key holder: the vendor's own extractor of a payload hidden in the outputs), "
            "with the same simultaneous interval. It is kept out of the keyless worst case, so "
            "tiers, leaks and the front are what a keyless auditor can establish; the flag says "
            "when the key holder recovers the secret from a row that passes the standard check.")
    if membership:
        lines.append(
            f"Membership group ({', '.join(membership)}): who was in the sanitizer's fit split. Each "
            "attack scores the same candidates, real people, half of them a random subset of the fit "
            "split and half as many test items no sanitizer fitted on, shuffled and unlabelled. acc "
            "is Webster et al.'s Algorithm-1 accuracy (the half with the highest scores called "
            "members; chance exactly 0.5); adv = 2·acc − 1, TPR − FPR at that threshold, with the "
            "same cross-fitted orientation as a binary attribute; tpr@1% is the TPR at 1% FPR "
            "(chance 0.01; at 0.1% only with ≥ 1,000 non-members, in the CSV/JSON). Its worst case "
            "is kept apart from the attribute worst case: it answers another question, and tiers, "
            "leaks and the front stay the attribute's.")
        if any(c.key.value.startswith("canary_") for c in board.columns):
            lines.append(
                "canary tpr@1%: the TPR at 1% FPR over the canaries alone (atypical records "
                "inserted into the private fit set, half of them members, the way privacy audits "
                "plant them; the FPR is over the canary non-members; chance 0.01). The average "
                "case can hide what an attacker reads of its most atypical people.")
    verification = sorted({c.plugin_name for c in board.columns if c.scoring == "verification"})
    if verification:
        lines.append(
            f"Re-identification ({', '.join(verification)}): a recognizer trained on people no "
            "split shows embeds a gallery of the test identities and every sanitized test face; "
            "tar@1%far is the share of genuine comparisons accepted at the threshold that accepts "
            "1% of impostor ones (chance 0.01; tar@0.1%far, in the CSV/JSON, only with ≥ 10,000 "
            "impostor comparisons from ≥ 1,000 identity pairs), rank1 the share of faces whose "
            "best match is their own (chance 1/identities), eer the equal error rate (chance 0.5). "
            "adv = (TAR − 0.01) / 0.99 joins the worst case. Intervals resample identities, not "
            "images. Its threat model is the attacker's knowledge: raw-enrolled (ignorant: raw "
            "gallery), lazy-enrolled (the gallery sanitized too), sanitized-recognizer "
            "(semi-informed: retrained on sanitized faces).")
    if any(c.key.value == "worst_decile" and c.key.kind == WORST_CASE for c in board.columns):
        lines.append(
            "worst decile: the most exposed tenth of the test identities (or subgroups of the kept "
            "attributes when the data has no identities), over the keyless attacks: each identity's "
            "own leakage (its advantage on its own items), ranked on one half of its items and read "
            "on the other (cross-fitted, so chance reads 0), the largest over the attacks; ± as "
            "the worst case's. exposed: the share of identities whose own leakage to that attack is "
            "significantly above the floor (one-sided, Benjamini–Hochberg at 5%). A row leaks also "
            "when its worst decile's interval lies above the floor or it exposes someone in a "
            "majority of its seeds: hiding most people does not make a sanitizer private.")
    if _has_releases(board):
        lines.append(
            "Release rows (a sanitizer that publishes a labelled surrogate data set instead of "
            "transforming images): an attribute attack trains on the release with its released "
            "labels and predicts the real test split, so its figure says how well the sensitive "
            "attribute of real people can be inferred from what was released. Attacks and metrics "
            "of transformed images (a raw-trained classifier, the oracle, distortion) are n/a there.")
    detectors = [c.header for c in board.columns if c.key.kind == DETECTION and c.scoring != "reference-detector"]
    against_reference = [c.header for c in board.columns
                         if c.key.kind == DETECTION and c.scoring == "reference-detector"]
    if against_reference:
        lines.append(
            f"{', '.join(against_reference)}: a detector's AUC at telling the sanitizer's test "
            "outputs from those of the honest model it declares itself a variant of (the same "
            "family without a payload, fitted and applied with the same seeds; disjoint halves of "
            "the test split, shuffled; chance 0.5). It says whether a vendor's build adds anything "
            "the honest model does not, not whether an attacker without the key reads it, so it is "
            "shown beside the ranking; n/a for sanitizers that declare no honest reference.")
    if detectors:
        lines.append(
            f"{', '.join(detectors)}: a detector's AUC at telling sanitized test items from raw ones "
            "(disjoint halves of the test split, shuffled; chance 0.5, 1 when every output is "
            f"recognisable; for one seed, a {level} stratified bootstrap interval over the "
            "candidates). It says whether outputs pass for real data, not whether the secret "
            "leaks, so it is shown beside the ranking and is not part of the worst case.")
    lines.append(_floor_text(board))
    exposure = any(c.key.value == "worst_decile" and c.key.kind == WORST_CASE for c in board.columns)
    lines.append(f"{LEAKS}: yes when the lower end of the worst-case interval lies above the floor"
                 + (", or that of the worst decile does, or someone is exposed in a majority of "
                    "seeds." if exposure else "."))
    if tiered and over_seeds:
        lines.append(
            f"{TIER}: an attack here stores no per-item results (a recognizer's figures), so rows are "
            f"paired over seeds instead of test items: a row starts a new tier when a one-sided "
            f"paired t-test of its per-seed worst case against its tier's most private row's says "
            f"it is worse (α = {ALPHA:g}); the worst case's ± is Bonferroni Student-t over seeds. "
            f"Within a tier, rows are ordered by "
            f"{board.utility_column.header if board.utility_column else 'worst case'}.")
    elif tiered:
        lines.append(
            f"{TIER}: rows whose worst cases do not differ significantly (one-sided paired bootstrap "
            f"over the shared test items, α = {ALPHA:g}, each row against its tier's most private "
            f"row) share a tier; within a tier, rows are ordered by "
            f"{board.utility_column.header if board.utility_column else 'worst case'}. "
            "A rank inside a tier would be noise.")
    else:
        lines.append(f"{TIER}: — (the rows lack per-item results to test on; they are listed by "
                     "worst case, which may rank noise).")
    if board.utility_column is not None:
        lines.append(f"{PARETO}: ✓ on the privacy–utility front for sure (no other row possibly "
                     "dominates it, given both intervals); (✓) possibly on it (no row certainly "
                     "dominates it).")
    audits = sorted({c.plugin_name for c in board.columns
                     if c.key.kind == ATTACK and c.threat_model in audit_threat_models()})
    if board.standard_check or audits:
        named = ([f"the standard check ({board.standard_check})"] if board.standard_check else []) + (
            [f"a naive audit ({', '.join(audits)})"] if audits else [])
        lines.append(f"⚠ {FLAG}: an audit, {' or '.join(named)}, is consistent with the floor (its "
                     "interval reaches down to it) while another attack's simultaneous interval "
                     "lies wholly above it, or the key holder's worst case does (membership does "
                     "not flag); or the key holder's worst case lies wholly above the keyless worst "
                     "case's interval (what a keyless audit reads understates the leak): the row "
                     "passes the usual audit and leaks.")
    if board.ranking["incomplete"].any():
        lines.append("* incomplete: an attack failed (or has not run) on this row, so its worst case "
                     "covers only the attacks that ran and is a lower bound. Such rows come after "
                     "the tiers and are never on the front.")
    statuses = set(board.table["status"])
    legend = [text for key, text in (("error", "error: a seed of the cell failed (see notes)"),
                                     ("n/a", "n/a: the attack's requirements are not met"),
                                     ("missing", "—: not in the store (not run yet)"))
              if key in statuses]
    if legend:
        lines.append("; ".join(legend) + ".")
    return lines
