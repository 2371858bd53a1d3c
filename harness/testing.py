"""Contract checks for plugin authors (in the spirit of scikit-learn's ``check_estimator``).

Call them from your plugin's tests::

    from ppbench.testing import check_sanitizer, check_attack
    def test_contract():
        check_sanitizer(MySanitizer(strength=0.5))
        check_attack(MyAttack())

Each raises ``AssertionError`` naming the first rule the plugin breaks (``ValueError`` when the
call itself lacks something, such as a handle a white-box attack requires). They run on a toy data
set whose channel brightness encodes the labels, so they take well under a second.
"""

from __future__ import annotations

import io
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .api import (AUX, ORACLE, RAW_TRAIN, SANITIZER_CAPABILITIES, Attack, PluginContractError,
                  AttackResult, AttackView, Context, Sanitized, Sanitizer, Task)
from .data import Attribute, DatasetSplits, ImageSet
from .guards import check_records
from .release import check_release, sanitizer_mode
from .kinds import requirement_alternatives, resolve_requirements
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


def _context(seed: int = 0) -> Context:
    return Context(device="cpu", profile="quick", seed=seed)


def check_sanitizer(sanitizer: Sanitizer, splits: DatasetSplits | None = None, task: Task = TOY_TASK) -> None:
    """Parameters round-trip, fit on train only, same-shape finite output in [0, 1] (for a
    release-mode sanitizer: a valid labelled release, ``ppbench.release.check_release``), the same
    output for the same seed, picklable fitted state, and handles for declared capabilities."""
    import torch

    name = type(sanitizer).__name__
    params = sanitizer.get_params()
    clone = type(sanitizer)(**params)
    assert clone.get_params() == params, f"{name}: get_params() does not round-trip through __init__"
    unknown = set(type(sanitizer).capabilities) - SANITIZER_CAPABILITIES
    assert not unknown, f"{name}: unknown capabilities {sorted(unknown)}"

    splits = splits or toy_splits()
    outputs, recorded = [], []
    for _ in range(2):
        fresh = type(sanitizer)(**params)
        ctx = _context(seed=7)
        ctx.seed_everything()
        fitted = fresh.fit(splits.train, task, ctx) or fresh
        assert isinstance(fitted, Sanitizer), f"{name}: fit() must return the sanitizer (or None)"
        if sanitizer_mode(fitted) == "release":
            try:
                released = check_release(fitted.release(len(splits.train), ctx), task,
                                         splits.train.attributes, splits.train.shape, name)
            except PluginContractError as exc:
                raise AssertionError(str(exc)) from None
            outputs.append(released.images)
            recorded.append(released.labels)
            continue
        with torch.no_grad():
            out = fitted.transform(splits.test.images, ctx)
        if isinstance(out, Sanitized):
            try:
                recorded.append(check_records(out.records, len(splits.test), name))
            except PluginContractError as exc:
                raise AssertionError(str(exc)) from None
            out = out.images
        assert isinstance(out, torch.Tensor), f"{name}: transform() must return a tensor"
        assert out.shape == splits.test.images.shape, (
            f"{name}: transform() changed the shape {tuple(splits.test.images.shape)} -> {tuple(out.shape)}")
        assert out.dtype.is_floating_point, f"{name}: transform() must return floats"
        assert torch.isfinite(out).all(), f"{name}: transform() returned NaN or inf"
        if splits.test.is_image:
            lo, hi = float(out.min()), float(out.max())
            assert lo >= 0 and hi <= 1, (
                f"{name}: transformed images must lie in [0, 1], found values in [{lo:.4g}, {hi:.4g}] "
                f"(clamp the output)")
        outputs.append(out)
    assert torch.equal(outputs[0], outputs[1]), f"{name}: the same seed gave different outputs"
    if recorded:
        assert len(recorded) == 2 and recorded[0].keys() == recorded[1].keys() and all(
            torch.equal(recorded[0][key], recorded[1][key]) for key in recorded[0]), (
            f"{name}: the same seed gave different records")
    buffer = io.BytesIO()
    torch.save(fitted, buffer)  # the runner caches fitted sanitizers with torch.save
    missing = set(type(fitted).capabilities) - {"release"} - set(fitted.handles())
    assert not missing, f"{name}: declares {sorted(missing)} but handles() lacks them"


# How often an honest attack whose predictions vary between two runs with the same seed may fail
# the withheld-label check (at most); one whose predictions do not vary never fails it.
_CANARY_ALPHA = 0.001
_CANARY_DRAWS = 999  # so that the smallest p-value the permutation test can give, 1/1000, is alpha


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
    import torch

    name = type(attack).__name__
    params = attack.get_params()
    assert type(attack)(**params).get_params() == params, f"{name}: get_params() does not round-trip"
    splits = splits or toy_splits()
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
            raise ValueError(
                f"{name} requires the sanitizer handle(s) {missing}, which check_attack cannot make "
                f"up: pass them as check_attack(attack, handles={{{missing[0]!r}: ...}}), e.g. "
                f"handles=fitted_sanitizer.handles() from a sanitizer that declares {missing}")
        raise ValueError(f"{name}: {resolution.unmet} (in the splits passed to check_attack)")
    # As in the runner, a view carries only the handles granted.
    return ({key: value for key, value in given.items() if key in resolution.granted},
            resolution.granted)


def _run_with_withheld_labels(attack: Attack, splits: DatasetSplits, task: Task,
                              handles: dict[str, Any], grants: frozenset[str],
                              order: "torch.Tensor", relabel: "torch.Tensor | None") -> AttackResult:
    """One run on ``splits.test`` taken in ``order``; the labelled copy kept beside the view (as
    the runner keeps one to score) holds the true labels, or, with ``relabel``, the labels of
    other items: the attack cannot tell the two runs apart without reading them."""
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
    ctx = _context()
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
