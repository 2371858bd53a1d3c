"""One cell against a fitted sanitizer: an attack's view, its call (in this process or in the
job's sandbox) and its scoring; a metric's view and call; the stored record of the outcome.

The job runner (:mod:`~ppbench.jobs`) and batch jobs (:mod:`~ppbench.batches`) both run cells
through these functions, so a cell is prepared, scored and stored the same way whichever ran it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .api import HONEST_REFERENCE, Context, MetricValue, MetricView, NotApplicable, PluginContractError
from .cache import FittedSanitizer, SharedModels
from .data import DatasetSplits, ImageSet, copy_image_set
from .guards import error_text, make_plugin, plugin_stage
from .kinds import ViewInputs, attack_kind, resolve_requirements
from .planning import Cell
from .profiling import phase
from .provenance import cell_provenance
from .registry import Registry
from .release import mode_problem, sanitizer_mode
from .reports import JobReport
from .sandbox import ContextSpec, PluginCall, Sandbox
from .scoring import Scored, WithheldTruth, budget_values


def withheld_truth(task: Any, splits: DatasetSplits) -> WithheldTruth:
    """What scoring needs and no plugin sees: the test split's labels and the train prior."""
    return WithheldTruth(task, splits.test,
                         {a: splits.train.class_frequencies(a) for a in splits.train.labels})


def raw_inputs(splits: DatasetSplits) -> list[tuple[str, Any]]:
    others = [("raw other identities", splits.other_identities)] if splits.other_identities is not None else []
    return [(f"raw {name}", split) for name, split in splits.items()] + others


def sanitized_inputs(fitted: FittedSanitizer) -> list[tuple[str, Any]]:
    others = [("sanitized other identities", fitted.other_identities)] if fitted.other_identities is not None else []
    return [("sanitized attack", fitted.attack), ("sanitized test", fitted.test), *others,
            *((f"{split} records", records) for split, records in fitted.records.items())]


@dataclass
class Isolated:
    """Plugin calls of one job in its sandbox (``--isolation process``)."""

    sandbox: Sandbox
    shared: SharedModels
    shared_seed: int

    def call(self, stage: str, kind: str, config: Any, task: Any, ctx: Context, source: str,
             payload: dict[str, Any]) -> Any:
        return self.sandbox.call(PluginCall(stage, kind, config.name, dict(config.kwargs), task,
                                            ContextSpec.of(ctx, self.shared_seed), source, payload),
                                 self.shared)


def commit_result(store: Any, registry: Registry, report: JobReport, cell: Cell, device: str,
                  status: str, scored: Scored | None = None, error: str | None = None,
                  wall: float | None = None, cell_seed: int = 0, notes: tuple[str, ...] = (),
                  extra: dict[str, Any] | None = None) -> None:
    """Commit one finished cell with its provenance and count it in ``report``. ``extra``: more
    provenance (a batched cell's batch)."""
    try:
        provenance = cell_provenance(registry, cell, device, cell_seed)
    except Exception as exc:  # noqa: BLE001 - a plugin gone from the registry must not
        # turn the error handling itself into an exception
        provenance = {"device": device, "seed": cell.seed, "cell_seed": cell_seed,
                      "profile": cell.profile, "data_params": dict(cell.dataset_params),
                      "unavailable": error_text(exc)}
    if notes:
        provenance["notes"] = list(notes)
    provenance.update(extra or {})
    with phase("store"):
        store.commit_cell(cell.record(), status=status, values=scored.values if scored else (),
                          items=scored.items if scored and scored.items else None, error=error,
                          wall_time=wall, device=device, provenance=provenance)
    report.statuses[cell.key] = status
    if error:
        report.errors[cell.key] = error


@dataclass
class PreparedAttack:
    """An attack cell ready to run: the configured attack, its scoring kind, the view it is
    granted and what the harness withholds for scoring."""

    attack: Any
    kind: Any
    view: Any
    withheld: Any
    source: str


def prepare_attack(registry: Registry, cell: Cell, fitted: FittedSanitizer, splits: DatasetSplits,
                   ctx: Context, secret_seed: int = 0,
                   honest_fit: Callable[[], FittedSanitizer] | None = None,
                   honest_problem: str | None = None,
                   membership_seed: int = 0, canaries: Any = None) -> PreparedAttack | str:
    """The attack's view for this cell, or why the cell is ``n/a``. ``canaries``: the run's
    membership canaries (:class:`~ppbench.membership.Canaries`), for membership views only."""
    attack_cls = registry.attack(cell.plugin.name)
    kind = attack_kind(attack_cls)
    sanitizer = fitted.sanitizer
    source = f"attack {cell.plugin_label}"
    # The configured instance first: its requirements may depend on its parameters (an attack
    # that sets self.requires in __init__). Constructors only store configuration, so building
    # one here, even when the run happens in a sandbox, costs nothing.
    attack = make_plugin(attack_cls, cell.plugin.kwargs, source)
    mode = sanitizer_mode(sanitizer)
    # Membership attacks ask who was in the fit set, a question for either mode.
    wrong_mode = None if kind.name == "membership" else mode_problem(
        attack, source, cell.sanitizer.name, mode)
    if wrong_mode is not None:
        return wrong_mode
    resolution = resolve_requirements(attack.requires, has_aux=splits.aux is not None,
                                      capabilities=type(sanitizer).capabilities,
                                      attack=cell.plugin_label, sanitizer=cell.sanitizer.name,
                                      dataset=cell.dataset, has_reference=honest_fit is not None,
                                      reference_problem=honest_problem, mode=mode)
    if resolution.unmet is not None:
        return resolution.unmet
    reference = honest_fit() if HONEST_REFERENCE in resolution.granted and honest_fit else None
    with phase("view"):
        try:
            view, withheld = kind.build_view(ViewInputs(
                attack, sanitizer, splits, fitted.attack, fitted.test, ctx, resolution.granted,
                secret_seed, cell.task, reference, fitted.release, membership_seed,
                canaries=canaries if kind.name == "membership" else None,
                sanitized_other_identities=fitted.other_identities))
        except NotApplicable as reason:
            return f"{source}: {reason}"
    return PreparedAttack(attack, kind, view, withheld, source)


def score_attack(prepared: PreparedAttack, result: Any, truth: WithheldTruth) -> Scored:
    """Check an attack's result against its kind's contract and score it."""
    if not isinstance(result, prepared.kind.result_type):
        raise PluginContractError(f"{prepared.source}: run() must return a "
                                  f"{prepared.kind.result_type.__name__}, got {type(result).__name__}")
    with phase("scoring"):
        scored = prepared.kind.score(result, truth, prepared.source, prepared.withheld)
    # Every kind's result may record its budget; it is stored beside the figures it produced.
    scored.values += budget_values(getattr(result, "budget", None) or {}, prepared.source)
    return scored


def run_attack(registry: Registry, cell: Cell, fitted: FittedSanitizer, splits: DatasetSplits,
                truth: WithheldTruth, ctx: Context, isolated: Isolated | None = None,
                secret_seed: int = 0, honest_fit: Callable[[], FittedSanitizer] | None = None,
                honest_problem: str | None = None, membership_seed: int = 0,
                canaries: Any = None) -> Scored | str:
    prepared = prepare_attack(registry, cell, fitted, splits, ctx, secret_seed, honest_fit,
                              honest_problem, membership_seed, canaries)
    if isinstance(prepared, str):
        return prepared
    view, source = prepared.view, prepared.source
    if isolated is None:
        with plugin_stage(source, "run"), phase("plugin"):
            try:
                result = prepared.attack.run(view, cell.task, ctx)
            except NotApplicable as reason:
                return f"{source}: {reason}"
    else:
        # The sandbox gets copies of what the view grants; it rebuilds the oracle and the handles
        # from the fitted sanitizer, which travels only when one of them is granted.
        oracle, handles = getattr(view, "oracle", None), getattr(view, "handles", None) or {}
        payload: dict[str, Any] = {"view": prepared.kind.lend(view), "oracle": oracle is not None,
                                   "handles": sorted(handles)}
        if payload["oracle"] or payload["handles"]:
            payload["sanitizer"] = fitted.sanitizer
        try:
            with phase("sandbox"):
                result = isolated.call("attack", "attacks", cell.plugin, cell.task, ctx, source,
                                       payload)
        except NotApplicable as reason:
            return f"{source}: {reason}"
    return score_attack(prepared, result, truth)


def metric_view(splits: DatasetSplits, fitted: FittedSanitizer, task: Any, copy: bool) -> MetricView:
    """A metric's view. Its test splits carry the kept attributes' labels, never the sensitive
    one: a utility metric has no use for it, and a metric must not be a way around the attacks'
    threat model (it could leave it in a shared model)."""
    def test_split(split: Any) -> Any:
        return ImageSet(split.images.clone() if copy else split.images,
                        {name: (values.clone() if copy else values)
                         for name, values in split.labels.items() if name != task.sensitive},
                        dict(split.attributes))

    lend = copy_image_set if copy else (lambda split: split)
    records = {split: {name: (values.clone() if copy else values) for name, values in named.items()}
               for split, named in fitted.records.items()}
    return MetricView(raw_train=lend(splits.train), raw_attack=lend(splits.attack),
                      raw_test=test_split(splits.test), sanitized_attack=lend(fitted.attack),
                      sanitized_test=test_split(fitted.test), records=records,
                      release=lend(fitted.release) if fitted.release is not None else None)


def run_metric(registry: Registry, cell: Cell, fitted: FittedSanitizer, splits: DatasetSplits,
                ctx: Context, isolated: Isolated | None = None) -> Scored | str:
    source = f"metric {cell.plugin_label}"
    wrong_mode = mode_problem(registry.metric(cell.plugin.name), source, cell.sanitizer.name,
                              sanitizer_mode(fitted.sanitizer))
    if wrong_mode is not None:
        return wrong_mode
    needed = set(getattr(registry.metric(cell.plugin.name), "requires_records", ()))
    missing = sorted(needed - set(fitted.records.get("test", {})))
    if missing:
        return (f"sanitizer {cell.sanitizer_label} records no {', '.join(missing)} per item "
                f"(see Sanitized), which {source} reads")
    if isolated is not None:
        try:
            with phase("view"):
                view = metric_view(splits, fitted, cell.task, copy=True)
            with phase("sandbox"):
                values = isolated.call("metric", "metrics", cell.plugin, cell.task, ctx, source,
                                       {"view": view})
        except NotApplicable as reason:
            return f"{source}: {reason}"
    else:
        metric = make_plugin(registry.metric(cell.plugin.name), cell.plugin.kwargs, source)
        with plugin_stage(source, "run"), phase("plugin"):
            try:
                values = metric.run(metric_view(splits, fitted, cell.task, copy=False), cell.task, ctx)
            except NotApplicable as reason:
                return f"{source}: {reason}"
    if not isinstance(values, list) or not values or not all(isinstance(v, MetricValue) for v in values):
        raise PluginContractError(f"{source}: run() must return a non-empty list of MetricValue")
    for v in values:
        if not math.isfinite(float(v.value)):
            raise PluginContractError(f"{source}: value {v.name!r} is not finite ({v.value})")
    primaries = [v for v in values if v.primary]
    if len(primaries) > 1:
        raise PluginContractError(f"{source}: {len(primaries)} values are marked primary; mark one")
    if not primaries and len(values) == 1:
        values = [MetricValue(**{**values[0].__dict__, "primary": True})]
    return Scored(values)
