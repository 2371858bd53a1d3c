"""The ranking policy: who is listed first, who leaks, who is on the front, who is flagged.

Every decision is made on intervals, never on point estimates alone:

- **tiers**: rows whose worst cases are not significantly different (paired bootstrap over the
  shared test items, :func:`~ppbench.boards.statistics.tiers`) share a tier; tiers are listed from
  most to least private and, within a tier, rows are ordered by utility. A rank inside a tier
  would be noise, so none is shown;
- **leaks**: the lower end of the row's simultaneous worst-case interval lies above the leakage
  floor (what the kept utility attributes alone reveal, which no sanitizer that keeps them can
  remove), or that of its worst decile (the most exposed tenth of the identities,
  :mod:`ppbench.boards.exposure`) does, or it exposes someone (a person whose own leakage is
  significantly above the floor, in a majority of seeds);
- **Pareto**: "front" when no other row possibly dominates the row, "possible" when none certainly
  does (:func:`~ppbench.boards.statistics.pareto_marks`);
- **flag**: an audit, the standard check named by the benchmark spec or a naive audit (an attack
  of a threat model marked ``audit``: a classifier trained on raw images, what many sanitizers'
  authors report as their only check), is consistent with the floor (its interval reaches down to
  it), while another attack's simultaneous interval lies wholly above it, or the worst case of a
  threat model judged apart (the key holder of a subverted sanitizer) does; or that worst case
  lies wholly above the keyless worst case's interval, whatever the audits say (the subverted
  PP-GAN's audit shows its honest model's small leak, its key holder reads everything). That is
  the case ppbench exists for: a sanitizer that passes the usual audit and leaks;
- a threat model judged apart (``ThreatModel.separate``: the key holder) has its own worst case;
  it is not merged into the keyless worst case, so tiers, leaks and the front are the keyless
  ones, and the flag says what the key holder recovers;
- a row on which an attack failed or has not run is **incomplete**: its worst case covers only the
  attacks that ran, so it is listed after every complete row, has no tier and is never on the
  front. A sanitizer never looks more private because an attack crashed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..kinds import flagging_threat_models
from .board import Figure
from .statistics import Interval, pareto_marks


@dataclass
class RowSummary:
    sanitizer: str
    worst: Figure  # simultaneous over the row's attacks
    worst_attack: str
    per_attack: dict[str, Figure]  # each attack's interval, simultaneous over the row's attacks
    # The audits that ran on the row (the standard check first, then the naive audits), each with
    # its own marginal figure, keyed by attack label.
    audits: dict[str, Figure]
    standard: str | None  # the label of the standard check's column, when it ran
    utility: Figure
    incomplete: bool
    tier: int | None = None
    position: int = 0
    leaks: bool | None = None
    pareto: str = ""
    flag: str = ""
    notes: list[str] = field(default_factory=list)
    # Threat models judged apart (the key holder): each one's own summary over its attacks.
    separate: dict[str, "RowSummary"] = field(default_factory=dict)
    # The keyless worst case per attacker-knowledge level (ignorant, semi-informed...), when the
    # board's attacks span several: who passes the standard check but falls to a stronger one.
    by_level: dict[str, "RowSummary"] = field(default_factory=dict)
    # The most exposed individuals (ppbench.boards.exposure.RowExposure), when the cells measured
    # them, and the row's tier on its worst decile.
    exposure: Any = None
    decile_tier: int | None = None


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def _flag(row: RowSummary, floor: float) -> str:
    """Why the usual audit understates the row's leakage, or ''.

    An audit (the spec's standard check, or a naive audit: a raw-trained classifier, which is
    what many sanitizers' authors report as their only check) passes, its interval reaching down
    to the floor, while another keyless attack, or a threat model judged apart, lies wholly above
    the floor; or a threat model judged apart lies wholly above the keyless worst case, whatever
    the audits say: a vendor's build whose keyless audit shows the honest model's small leak while
    the key holder reads everything is the case ppbench exists for, and its honest model's own
    leak does not excuse it.
    """
    passed = [a for a, f in row.audits.items() if _finite(f.ci_low) and f.ci_low <= floor]
    reasons = []
    if passed:
        above = [a for a, f in row.per_attack.items()
                 if a not in passed and _finite(f.ci_low) and f.ci_low > floor]
        if above:
            strongest = max(above, key=lambda a: (row.per_attack[a].mean, a))
            reasons.append(f"leaks to {strongest} ({row.per_attack[strongest].mean:.2f})")
    for model, judged in sorted(row.separate.items()):
        if model not in flagging_threat_models():
            continue  # membership answers another question than the attribute audit
        if not (_finite(judged.worst.ci_low) and judged.worst.ci_low > floor):
            continue
        over_audit = _finite(row.worst.ci_high) and judged.worst.ci_low > row.worst.ci_high
        if passed or over_audit:
            reasons.append(f"the {model.replace('-', ' ')} recovers the secret ({judged.worst_attack}, "
                           f"{judged.worst.mean:.2f})")
    if not reasons:
        return ""
    if passed:
        audit = passed[0]
        what = "the standard check" if audit == row.standard else "the naive audit"
        return f"passes {what} ({audit}, {row.audits[audit].mean:.2f}); " + "; ".join(reasons)
    return (f"keyless attacks read at most {row.worst.mean:.2f} ({row.worst_attack}); "
            + "; ".join(reasons))


def _interval(figure: Figure, sign: float = 1.0) -> Interval:
    low, high = sign * figure.ci_low, sign * figure.ci_high
    return Interval(sign * figure.mean, min(low, high), max(low, high), figure.interval)


def apply_policy(rows: list[RowSummary], tiers: dict[str, int] | None, floor: float,
                 utility_sign: float) -> list[RowSummary]:
    """Decide tiers, order, leaks, Pareto marks and flags; return the rows in board order.

    ``utility_sign`` is +1 when higher utility is better, −1 when lower is.
    """
    complete = [r for r in rows if not r.incomplete and _finite(r.worst.mean)]
    for row in rows:
        row.tier = tiers.get(row.sanitizer) if tiers and row in complete else None
        if _finite(row.worst.ci_low):
            row.leaks = row.worst.ci_low > floor
        elif _finite(row.worst.mean):
            row.leaks = None  # no interval: the board cannot say
        # A row that hides most people and exposes a few is not private: its worst decile counts.
        decile = row.exposure.decile if row.exposure is not None else None
        if decile is not None and _finite(decile.ci_low) and decile.ci_low > floor:
            row.leaks = True
        if row.exposure is not None and row.exposure.exposes_someone:
            row.leaks = True
        row.flag = _flag(row, floor)

    eligible = {r.sanitizer: (_interval(r.worst), _interval(r.utility, utility_sign))
                for r in complete if _finite(r.utility.mean)}
    marks = pareto_marks(eligible) if eligible else {}
    for row in rows:
        row.pareto = marks.get(row.sanitizer, "")

    def order(row: RowSummary) -> tuple:
        utility = utility_sign * row.utility.mean
        utility_key = -utility if _finite(utility) else math.inf
        worst = row.worst.mean if _finite(row.worst.mean) else math.inf
        if row.tier is not None:
            return (0, row.tier, utility_key, worst, row.sanitizer)
        # Without a tier (incomplete, or no per-item results to test with): after every tiered
        # row, complete before incomplete, the most private first.
        return (1, row.incomplete, worst, utility_key, row.sanitizer)

    ordered = sorted(rows, key=order)
    for position, row in enumerate(ordered, start=1):
        row.position = position
    return ordered
