"""Contract checks for plugin authors (in the spirit of scikit-learn's ``check_estimator``).

Call them from your plugin's tests::

    from ppbench.testing import check_sanitizer, check_attack
    def test_contract():
        check_sanitizer(MySanitizer(strength=0.5))
        check_attack(MyAttack())

Each raises ``AssertionError`` naming the first rule the plugin breaks (:class:`CheckNotApplicable`,
a ``ValueError``, when the call itself lacks something, such as a handle a white-box attack
requires). They run on a toy data set whose channel brightness encodes the labels, so they take
well under a second.

``check_sanitizer`` and ``check_attack`` compose separately callable checks, one per rule, which
``ppbench check`` (:mod:`ppbench.conformance`) reports row by row: ``check_sanitizer_contract``,
``check_sanitizer_determinism``, ``check_sanitizer_no_inplace``, ``check_sanitizer_device``;
``check_attack_contract``, ``check_attack_determinism``, ``check_attack_no_inplace``,
``check_attack_device``, ``check_attack_threat_model``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .api import (AUX, ORACLE, RAW_TRAIN, SANITIZER_CAPABILITIES, Attack, PluginContractError,
                  AttackResult, AttackView, Context, Sanitized, Sanitizer, Task)
from .data import Attribute, DatasetSplits, ImageSet
from .guards import check_records
from .release import check_release, sanitizer_mode
from .kinds import beyond_threat_model, requirement_alternatives, resolve_requirements
from .pixels import quantize_8bit

if TYPE_CHECKING:
    import torch

TOY_ATTRIBUTES = (Attribute("secret", ("no", "yes")), Attribute("keep", ("no", "yes")))
TOY_TASK = Task("toy", "secret", "secret", ("keep",))


def toy_splits(seed: int = 0, n_train: int = 240, n_test: int = 120, size: int = 8,
               n_attack: int | None = None) -> DatasetSplits:
    """Noise images; channel 0's brightness encodes ``secret`` and channel 1's encodes ``keep``.

    Every image also holds one pure white and one pure black pixel (all channels exactly 1.0 and
    0.0), so that a sanitizer which pushes values out of [0, 1] at either end gets caught. Pixels
    are 8-bit values, as decoded photographs are."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> ImageSet:
        secret = torch.randint(0, 2, (n,), generator=g)
        keep = torch.randint(0, 2, (n,), generator=g)
        images = torch.rand(n, 3, size, size, generator=g) * 0.5
        images[:, 0] += 0.4 * secret.view(-1, 1, 1).float()
        images[:, 1] += 0.4 * keep.view(-1, 1, 1).float()
        images = quantize_8bit(images)
        # The extremes sit in the last row (the first row is what the runner's tests compare) and
        # swap corners between even and odd items: a pixel that is constant over the data set
        # would give a per-pixel standardizing sanitizer a zero variance it never meets in real
        # data. No extra random draws, so the other pixels stay as they were.
        even = torch.arange(n) % 2 == 0
        images[even, :, -1, 0] = images[~even, :, -1, -1] = 1.0
        images[even, :, -1, -1] = images[~even, :, -1, 0] = 0.0
        return ImageSet(images, {"secret": secret, "keep": keep},
                        {a.name: a for a in TOY_ATTRIBUTES})

    return DatasetSplits(train=make(n_train), attack=make(n_train if n_attack is None else n_attack),
                         test=make(n_test), aux=make(n_test))


def _context(seed: int = 0, device: "torch.device | str" = "cpu") -> Context:
    return Context(device=device, profile="quick", seed=seed)


class CheckNotApplicable(ValueError):
    """The check cannot run on what it was given (a white-box attack without the sanitizer handle
    it requires): the caller's to fix, not a rule the plugin broke."""


# --- sanitizers: one separately callable check per rule ------------------------------------------


@dataclass
class SanitizerRun:
    """One fit and transform (or release) of a fresh copy of a sanitizer, its output checked: the
    fitted sanitizer, the output images and the per-item records (empty when there are none)."""

    fitted: Sanitizer
    images: "torch.Tensor"
    records: dict[str, "torch.Tensor"]


def _check_round_trip(plugin: Any) -> None:
    name = type(plugin).__name__
    params = plugin.get_params()
    clone = type(plugin)(**params)
    assert clone.get_params() == params, f"{name}: get_params() does not round-trip through __init__"


def _sanitize_once(sanitizer: Sanitizer, splits: DatasetSplits, task: Task,
                   device: "torch.device | str" = "cpu") -> SanitizerRun:
    """A fresh copy of ``sanitizer`` (from its parameters) fitted on ``splits.train`` with seed 7
    and applied to ``splits.test`` on ``device``, its output held to the contract."""
    import torch

    name = type(sanitizer).__name__
    fresh = type(sanitizer)(**sanitizer.get_params())
    ctx = _context(seed=7, device=device)
    ctx.seed_everything()
    fitted = fresh.fit(splits.train, task, ctx) or fresh
    assert isinstance(fitted, Sanitizer), f"{name}: fit() must return the sanitizer (or None)"
    if sanitizer_mode(fitted) == "release":
        try:
            released = check_release(fitted.release(len(splits.train), ctx), task,
                                     splits.train.attributes, splits.train.shape, name)
        except PluginContractError as exc:
            raise AssertionError(str(exc)) from None
        return SanitizerRun(fitted, released.images, dict(released.labels))
    with torch.no_grad():
        out = fitted.transform(splits.test.images.to(ctx.device), ctx)
    records: dict[str, torch.Tensor] = {}
    if isinstance(out, Sanitized):
        try:
            records = check_records(out.records, len(splits.test), name)
        except PluginContractError as exc:
            raise AssertionError(str(exc)) from None
        out = out.images
    assert isinstance(out, torch.Tensor), f"{name}: transform() must return a tensor"
    assert out.shape == splits.test.images.shape, (
        f"{name}: transform() changed the shape {tuple(splits.test.images.shape)} -> {tuple(out.shape)}")
    assert out.dtype.is_floating_point, f"{name}: transform() must return floats"
    assert out.device.type != "meta", (
        f"{name}: transform() returned a tensor on the 'meta' device, which holds no values")
    assert torch.isfinite(out).all(), f"{name}: transform() returned NaN or inf"
    if splits.test.is_image:
        lo, hi = float(out.min()), float(out.max())
        assert lo >= 0 and hi <= 1, (
            f"{name}: transformed images must lie in [0, 1], found values in [{lo:.4g}, {hi:.4g}] "
            f"(clamp the output)")
    return SanitizerRun(fitted, out, records)


def check_sanitizer_contract(sanitizer: Sanitizer, splits: DatasetSplits | None = None,
                             task: Task = TOY_TASK) -> SanitizerRun:
    """Parameters round-trip and capabilities are known; fit on train only returns the sanitizer;
    the output is a same-shape finite float tensor in [0, 1] (a release: a valid labelled set,
    ``ppbench.release.check_release``) with valid records; the fitted sanitizer pickles and its
    ``handles()`` cover the declared capabilities. Returns the run."""
    name = type(sanitizer).__name__
    _check_round_trip(sanitizer)
    unknown = set(type(sanitizer).capabilities) - SANITIZER_CAPABILITIES
    assert not unknown, f"{name}: unknown capabilities {sorted(unknown)}"
    run = _sanitize_once(sanitizer, splits or toy_splits(), task)
    _check_fitted(run.fitted)
    return run


def _check_fitted(fitted: Sanitizer) -> None:
    import torch

    name = type(fitted).__name__
    buffer = io.BytesIO()
    torch.save(fitted, buffer)  # the runner caches fitted sanitizers with torch.save
    missing = set(type(fitted).capabilities) - {"release"} - set(fitted.handles())
    assert not missing, f"{name}: declares {sorted(missing)} but handles() lacks them"


def check_sanitizer_determinism(sanitizer: Sanitizer, splits: DatasetSplits | None = None,
                                task: Task = TOY_TASK, first: SanitizerRun | None = None) -> None:
    """Two fresh copies fitted and applied with the same seed give identical outputs and records
    (``first``: a run already made, e.g. by :func:`check_sanitizer_contract`)."""
    import torch

    name = type(sanitizer).__name__
    splits = splits or toy_splits()
    runs = [first or _sanitize_once(sanitizer, splits, task), _sanitize_once(sanitizer, splits, task)]
    assert torch.equal(runs[0].images, runs[1].images), f"{name}: the same seed gave different outputs"
    recorded = [run.records for run in runs]
    assert recorded[0].keys() == recorded[1].keys() and all(
        torch.equal(recorded[0][key], recorded[1][key]) for key in recorded[0]), (
        f"{name}: the same seed gave different records")


def check_sanitizer_no_inplace(sanitizer: Sanitizer, splits: DatasetSplits | None = None,
                               task: Task = TOY_TASK) -> None:
    """``fit`` leaves the train split it is lent as it was (images and labels), ``transform`` its
    input batch, and the output is a new tensor, not the input or a view of it (the harness lends
    the raw splits to every cell that follows; it would then check and store the caller's own
    tensor)."""
    import torch

    name = type(sanitizer).__name__
    splits = splits or toy_splits()
    fresh = type(sanitizer)(**sanitizer.get_params())
    ctx = _context(seed=7)
    ctx.seed_everything()
    before = _snapshot(splits.train)
    fitted = fresh.fit(splits.train, task, ctx) or fresh
    _assert_unchanged(name, "fit()", "train split", splits.train, before)
    if sanitizer_mode(fitted) == "release":
        fitted.release(len(splits.train), ctx)
        _assert_unchanged(name, "release()", "train split", splits.train, before)
        return
    batch = splits.test.images.clone()
    with torch.no_grad():
        out = fitted.transform(batch, ctx)
    assert torch.equal(batch, splits.test.images), (
        f"{name}: transform() modified the images it was given; copy them first "
        f"(x = images.clone())")
    out = out.images if isinstance(out, Sanitized) else out
    if isinstance(out, torch.Tensor) and out.device == batch.device:
        assert out.untyped_storage().data_ptr() != batch.untyped_storage().data_ptr(), (
            f"{name}: transform() returned its input (or a view of it); return a new tensor "
            f"(images.clone())")


def check_sanitizer_device(sanitizer: Sanitizer, device: "torch.device | str" = "cpu",
                           splits: DatasetSplits | None = None, task: Task = TOY_TASK) -> SanitizerRun:
    """Fitted with ``ctx.device = device`` (the train split on the CPU, as the harness lends it)
    and handed its batch on ``device``, the sanitizer returns what the harness accepts
    (``ppbench.guards.check_sanitized``): a float tensor that holds values (not on the 'meta'
    device), on any device, in any float precision (the harness converts to float32 on the CPU
    and notes another precision in the provenance). Returns the run, for its dtype and device."""
    return _sanitize_once(sanitizer, splits or toy_splits(), task, device=device)


def _snapshot(data: ImageSet) -> tuple["torch.Tensor", dict[str, "torch.Tensor"]]:
    return data.images.clone(), {key: value.clone() for key, value in data.labels.items()}


def _assert_unchanged(name: str, call: str, what: str, data: ImageSet,
                      before: tuple["torch.Tensor", dict[str, "torch.Tensor"]]) -> None:
    import torch

    images, labels = before
    assert torch.equal(data.images, images), (
        f"{name}: {call} modified the images of the {what} it was lent; copy before changing "
        f"anything (x = images.clone())")
    changed = sorted(key for key in labels if key not in data.labels
                     or not torch.equal(data.labels[key], labels[key]))
    assert not changed and data.labels.keys() == labels.keys(), (
        f"{name}: {call} modified the labels of the {what} it was lent "
        f"({', '.join(changed) or 'added or removed keys'})")


def check_sanitizer(sanitizer: Sanitizer, splits: DatasetSplits | None = None, task: Task = TOY_TASK) -> None:
    """Parameters round-trip, fit on train only, same-shape finite output in [0, 1] (for a
    release-mode sanitizer: a valid labelled release, ``ppbench.release.check_release``), the same
    output for the same seed, picklable fitted state, and handles for declared capabilities."""
    splits = splits or toy_splits()
    first = check_sanitizer_contract(sanitizer, splits, task)
    check_sanitizer_determinism(sanitizer, splits, task, first=first)


# --- attacks -------------------------------------------------------------------------------------

# How often an honest attack whose predictions vary between two runs with the same seed may fail
# the withheld-label check (at most); one whose predictions do not vary never fails it.
_CANARY_ALPHA = 0.001
_CANARY_DRAWS = 999  # so that the smallest p-value the permutation test can give, 1/1000, is alpha


def check_attack_contract(attack: Attack, splits: DatasetSplits | None = None,
                          task: Task = TOY_TASK, handles: dict[str, Any] | None = None) -> AttackResult:
    """Parameters round-trip; the requirements are valid and can be met; one run on a view
    without test labels returns one finite, in-range prediction per test item. Returns the
    result, in the order of ``splits.test``."""
    import torch

    _check_round_trip(attack)
    splits = splits or toy_splits()
    granted, grants = _granted(attack, splits, handles)
    n, k = len(splits.test), splits.test.num_classes(task.sensitive)
    order = torch.arange(n)
    result = _run_with_withheld_labels(attack, splits, task, granted, grants, order, relabel=None)
    _check_result(type(attack).__name__, result, n, k)
    return result


def check_attack_determinism(attack: Attack, splits: DatasetSplits | None = None,
                             task: Task = TOY_TASK, handles: dict[str, Any] | None = None) -> None:
    """Two runs with the same seed on the same view give identical predictions and diagnostics.
    (:func:`check_attack` allows an honest attack whose runs differ; a published board does not:
    the same command must give the same numbers.)"""
    import torch

    name = type(attack).__name__
    splits = splits or toy_splits()
    granted, grants = _granted(attack, splits, handles)
    order = torch.arange(len(splits.test))
    runs = [_run_with_withheld_labels(attack, splits, task, granted, grants, order, relabel=None)
            for _ in range(2)]
    first, second = (run.predictions for run in runs)
    assert first.shape == second.shape and first.dtype == second.dtype and torch.equal(first, second), (
        f"{name}: the same seed gave different predictions; draw every random number from "
        f"ctx.generator() or after ctx.seed_everything()")
    assert runs[0].diagnostics.keys() == runs[1].diagnostics.keys() and all(
        _same_number(runs[0].diagnostics[key], runs[1].diagnostics[key]) for key in runs[0].diagnostics), (
        f"{name}: the same seed gave different diagnostics")


def check_attack_device(attack: Attack, device: "torch.device | str" = "cpu",
                        splits: DatasetSplits | None = None, task: Task = TOY_TASK,
                        handles: dict[str, Any] | None = None) -> AttackResult:
    """Run with ``ctx.device = device`` on a view lent on the CPU (as the runner lends it), the
    attack returns what the harness scores (``ppbench.scoring``): integer class indices (N,) or
    float class scores (N×K), not booleans, on any device that holds values (the harness moves
    them to the CPU). Returns the result."""
    import torch

    name = type(attack).__name__
    splits = splits or toy_splits()
    granted, grants = _granted(attack, splits, handles)
    order = torch.arange(len(splits.test))
    result = _run_with_withheld_labels(attack, splits, task, granted, grants, order,
                                       relabel=None, device=device)
    _check_result(name, result, len(splits.test), splits.test.num_classes(task.sensitive))
    predictions = result.predictions
    assert predictions.device.type != "meta", (
        f"{name}: predictions are on the 'meta' device, which holds no values")
    assert predictions.dtype != torch.bool and not predictions.is_complex(), (
        f"{name}: predictions are {str(predictions.dtype).removeprefix('torch.')}; return int64 "
        "class indices or float class scores")
    return result


def _same_number(a: Any, b: Any) -> bool:
    a, b = float(a), float(b)
    return a == b or (math.isnan(a) and math.isnan(b))


def check_attack_no_inplace(attack: Attack, splits: DatasetSplits | None = None,
                            task: Task = TOY_TASK, handles: dict[str, Any] | None = None) -> None:
    """``run`` leaves every split of its view as it was: the attack split's images and labels, the
    test images, and the raw train and aux splits when granted (the harness lends them to every
    cell that follows)."""
    import torch

    name = type(attack).__name__
    splits = splits or toy_splits()
    granted, grants = _granted(attack, splits, handles)
    lent = {"attack split": splits.attack, "raw train split": splits.train, "aux split": splits.aux}
    before = {what: _snapshot(data) for what, data in lent.items() if data is not None}
    seen: dict[str, AttackView] = {}
    order = torch.arange(len(splits.test))
    _run_with_withheld_labels(attack, splits, task, granted, grants, order, relabel=None, seen=seen)
    test_before = splits.test.images
    assert torch.equal(seen["view"].test.images, test_before), (
        f"{name}: run() modified the test images it was lent; copy before changing anything "
        f"(x = view.test.images.clone())")
    for what, snapshot in before.items():
        _assert_unchanged(name, "run()", what, lent[what], snapshot)


def check_attack_threat_model(attack: Attack, splits: DatasetSplits | None = None,
                              task: Task = TOY_TASK, handles: dict[str, Any] | None = None) -> None:
    """The attack asks for no more than its declared threat model holds (every alternative of
    ``requires`` is among ``ThreatModel.grants``), and its predictions do not follow the test
    labels the harness withholds (see :func:`check_attack`)."""
    check_requirements_within_threat_model(attack)
    _check_withheld_labels(attack, splits or toy_splits(), task, handles)


def check_requirements_within_threat_model(attack: Attack) -> None:
    """Each grant ``requires`` may obtain is one the declared threat model holds. A threat model
    that declares no ``grants`` (a plugin's own ``ThreatModel`` without them) is not limited."""
    try:
        problem = beyond_threat_model(attack)
    except (PluginContractError, ValueError) as exc:
        raise AssertionError(str(exc)) from None
    assert not problem, problem


def check_attack(attack: Attack, splits: DatasetSplits | None = None, task: Task = TOY_TASK,
                 handles: dict[str, Any] | None = None) -> AttackResult:
    """Runs on a view without test labels; predictions are one per test item, finite, in range,
    and do not depend on the test labels the harness withholds. Returns the result (predictions in
    the order of ``splits.test``) so a test can also assert how well the attack did.

    ``handles`` stands in for the fitted sanitizer's ``handles()``: an attack that requires a
    sanitizer capability (``discriminator``...) needs it, e.g. ``handles=sanitizer.handles()``.

    The attack runs twice, with the same seed, on the same unlabelled test images in a shuffled
    order. The labelled copy that check_attack keeps beside the view holds the true labels in one
    run and a random relabelling (a decoy) in the other; if the attack's guesses follow the decoy,
    it read labels it was never handed (e.g. by scanning ``gc.get_objects()``).
    """
    _check_round_trip(attack)
    return _check_withheld_labels(attack, splits or toy_splits(), task, handles)


def _check_withheld_labels(attack: Attack, splits: DatasetSplits, task: Task,
                           handles: dict[str, Any] | None) -> AttackResult:
    """The decoy test of :func:`check_attack`; returns the true run's result in the caller's
    order."""
    import torch

    name = type(attack).__name__
    granted, grants = _granted(attack, splits, handles)
    n, k = len(splits.test), splits.test.num_classes(task.sensitive)

    # The caller's own labelled splits.test lives in this process too; in a shuffled order, its
    # images no longer match the ones the attack is handed, so finding it gains nothing.
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(n, generator=g)
    decoy = torch.randperm(n, generator=g)
    # The decoy run goes first: an attack that memorises what it found in one run and replays it
    # in the next then replays the decoy, and the result returned to the caller gains nothing.
    decoy_result = _run_with_withheld_labels(attack, splits, task, granted, grants, order,
                                             relabel=decoy)
    _check_result(name, decoy_result, n, k)
    result = _run_with_withheld_labels(attack, splits, task, granted, grants, order, relabel=None)
    _check_result(name, result, n, k)

    labels = splits.test.labels[task.sensitive][order]
    p = _decoy_p_value(_guesses(decoy_result), _guesses(result), labels[decoy])
    assert p > _CANARY_ALPHA, (
        f"{name}: the attack's output depends on the withheld test labels: run twice with the same "
        f"seed on the same unlabelled test images, its predictions followed the labels the harness "
        f"kept to score, which differed between the runs (permutation test, p = {p:.2g}). An attack "
        f"must predict from what its view grants; view.test carries no labels")
    return replace(result, predictions=result.predictions[torch.argsort(order)])


def _granted(attack: Attack, splits: DatasetSplits,
             handles: dict[str, Any] | None) -> tuple[dict[str, Any], frozenset[str]]:
    """The handles the view carries and every grant, resolved from the instance's ``requires``
    as the runner resolves them (alternatives included). A requirement check_attack cannot meet
    is the caller's to fix, so it is a ValueError saying how, not a KeyError inside the attack."""
    name = type(attack).__name__
    given = dict(handles or {})
    try:
        entries = requirement_alternatives(attack.requires, name)
    except PluginContractError as exc:
        raise AssertionError(str(exc)) from None
    resolution = resolve_requirements(attack.requires, has_aux=splits.aux is not None,
                                      capabilities=set(given), attack=name)
    if resolution.unmet is not None:
        wanted = {alt for entry in entries for alt in entry}
        missing = sorted((wanted & SANITIZER_CAPABILITIES) - set(given))
        if missing:
            raise CheckNotApplicable(
                f"{name} requires the sanitizer handle(s) {missing}, which check_attack cannot make "
                f"up: pass them as check_attack(attack, handles={{{missing[0]!r}: ...}}), e.g. "
                f"handles=fitted_sanitizer.handles() from a sanitizer that declares {missing}")
        raise CheckNotApplicable(f"{name}: {resolution.unmet} (in the splits passed to check_attack)")
    # As in the runner, a view carries only the handles granted.
    return ({key: value for key, value in given.items() if key in resolution.granted},
            resolution.granted)


def _run_with_withheld_labels(attack: Attack, splits: DatasetSplits, task: Task,
                              handles: dict[str, Any], grants: frozenset[str],
                              order: "torch.Tensor", relabel: "torch.Tensor | None",
                              seen: dict[str, AttackView] | None = None,
                              device: "torch.device | str" = "cpu") -> AttackResult:
    """One run on ``splits.test`` taken in ``order``; the labelled copy kept beside the view (as
    the runner keeps one to score) holds the true labels, or, with ``relabel``, the labels of
    other items: the attack cannot tell the two runs apart without reading them. ``seen`` gets
    the view under ``"view"``; ``device`` is the context's (the view stays on the CPU, as the
    runner lends it)."""
    images = splits.test.images[order]
    labels = {key: values[order] for key, values in splits.test.labels.items()}
    if relabel is not None:
        labels = {key: values[relabel] for key, values in labels.items()}
    # Built inside this call so that it is gone once the run returns: the other run finds no copy.
    withheld = ImageSet(images, labels, dict(splits.test.attributes))
    view = AttackView(
        attack=splits.attack,
        # A copy: nothing handed to the attack shares memory with the labelled set.
        test=ImageSet(withheld.images.clone()),
        raw_train=splits.train if RAW_TRAIN in grants else None,
        aux=splits.aux if AUX in grants else None,
        oracle=(lambda x: x) if ORACLE in grants else None,
        handles=dict(handles),
    )
    if seen is not None:
        seen["view"] = view
    ctx = _context(device=device)
    ctx.seed_everything()
    return attack.run(view, task, ctx)


def _check_result(name: str, result: Any, n: int, k: int) -> None:
    import torch

    assert isinstance(result, AttackResult), f"{name}: run() must return an AttackResult"
    predictions = result.predictions
    assert isinstance(predictions, torch.Tensor), f"{name}: predictions must be a tensor"
    if predictions.dim() == 2:
        assert tuple(predictions.shape) == (n, k), f"{name}: class scores must be ({n}, {k})"
        assert torch.isfinite(predictions).all(), f"{name}: class scores contain NaN or inf"
    else:
        assert tuple(predictions.shape) == (n,), f"{name}: need {n} predicted labels"
        assert not predictions.dtype.is_floating_point, f"{name}: predicted labels must be integers"
        assert int(predictions.min()) >= 0 and int(predictions.max()) < k, f"{name}: labels out of range"
    for key, value in result.diagnostics.items():
        assert math.isfinite(float(value)), f"{name}: diagnostic {key!r} is not finite"


def _guesses(result: AttackResult) -> "torch.Tensor":
    predictions = result.predictions
    return predictions.argmax(dim=1) if predictions.dim() == 2 else predictions


def _decoy_p_value(decoy_run: "torch.Tensor", true_run: "torch.Tensor", decoy: "torch.Tensor",
                   draws: int = _CANARY_DRAWS, chunk: int = 111) -> float:
    """One-sided p-value that the decoy run's guesses agree with the decoy labels more than the
    true run's guesses do.

    The decoy is a random permutation of the labels, drawn independently of all an honest attack
    sees; so for an honest attack the observed difference is distributed like the difference for
    any other random permutation, whatever randomness the attack has of its own (that randomness
    cannot know the decoy either). Identical runs give a difference of 0 and p = 1.
    """
    import torch

    def agreement_gap(labels: "torch.Tensor") -> "torch.Tensor":
        return (decoy_run == labels).double().mean(-1) - (true_run == labels).double().mean(-1)

    if torch.equal(decoy_run, true_run):
        return 1.0
    observed = agreement_gap(decoy)
    g = torch.Generator().manual_seed(1)
    at_least = 0
    for start in range(0, draws, chunk):  # in chunks: draws x N indices may not fit in memory
        rows = min(chunk, draws - start)
        shuffled = decoy[torch.rand(rows, len(decoy), generator=g).argsort(dim=1)]
        at_least += int((agreement_gap(shuffled) >= observed).sum())
    return (1 + at_least) / (draws + 1)
