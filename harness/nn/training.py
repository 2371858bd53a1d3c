"""The torch training loop of the built-in classifiers, and the mini-batch iterator it is built on.

:func:`fit_classifier` (and its shorthand :func:`train_classifier`) trains the torch classifiers of
the built-in attacks and metrics: the adversarial classifier, and the reference classifiers of the
fixed-classifier attack and the fixed-utility metric. It stops early on a validation split carved
from the data it is given, so that a check is trained until it stops improving rather than for an
arbitrary number of epochs (an under-trained check overstates privacy).

Not every plugin trains through it: the linear probe is scikit-learn's logistic regression, and a
learned sanitizer or GAN (several optimisers, alternating losses) trains through
:func:`ppbench.nn.adversarial.train_adversarial`, which is built on :func:`iterate_minibatches`
for shuffling, epochs, progress bars and deadline checks.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Callable, Iterator, Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Context
from ..profiling import charged_to
from .resident import resident, resident_targets

Targets = Mapping[str, torch.Tensor] | torch.Tensor
Logits = dict[str, torch.Tensor] | torch.Tensor

BATCHNORM_STREAM = 104729  # a generator stream of its own for the recalibration subset
DEFAULT_VALIDATION = 0.2  # fraction of the given data held out for early stopping
MIN_VALIDATION_PER_CLASS = 2  # so that a rare class still counts in the validation figures
MONITORS = ("loss", "accuracy")
# The recipe of the built-in classifiers (Adam's learning rate and the decay of the weight
# average), measured in ppbench.plugins.attacks.adversarial_classifier.
DEFAULT_LR = 2e-3
DEFAULT_AVERAGE = 0.98
# BatchNorm statistics are recomputed on this many training items before each validation: enough
# for stable statistics of the small networks here, at a fraction of an epoch's cost.
RECALIBRATE_ITEMS = 512


def batch_slices(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` bounds covering ``range(n)``; a trailing batch of one item is merged
    into the previous batch, because BatchNorm cannot train on a single item."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def iterate_minibatches(n: int, batch_size: int, ctx: Context, epochs: int, desc: str = "train",
                        *, generator: torch.Generator | None = None, shuffle: bool = True,
                        ) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(epoch, index)`` for every mini-batch of ``epochs`` passes over ``n`` items.

    ``index`` is an int64 CPU tensor of item positions; each epoch is a fresh permutation drawn
    from ``generator`` (default: ``ctx.generator()``, so a run is reproducible). One progress bar
    covers all batches of all epochs, and the context's deadline is checked before each batch.
    """
    if n < 1:
        raise ValueError("cannot iterate over an empty set")
    bounds = batch_slices(n, batch_size)
    generator = generator if generator is not None else ctx.generator()

    def batches() -> Iterator[tuple[int, torch.Tensor]]:
        for epoch in range(epochs):
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            for start, stop in bounds:
                yield epoch, order[start:stop]

    yield from ctx.progress(batches(), desc=desc, total=epochs * len(bounds), unit="batch")


def classification_loss(outputs: Logits, targets: Targets) -> torch.Tensor:
    """Cross-entropy, summed over heads when the model predicts several attributes."""
    if isinstance(outputs, torch.Tensor):
        if not isinstance(targets, torch.Tensor):
            raise TypeError("the model returns one tensor of logits but targets are a dict")
        return F.cross_entropy(outputs, targets)
    if isinstance(targets, torch.Tensor):
        raise TypeError("the model returns a dict of logits but targets are one tensor")
    missing = set(targets) - set(outputs)
    if missing:
        raise KeyError(f"the model has no heads for targets {sorted(missing)}; it has {sorted(outputs)}")
    return sum(F.cross_entropy(outputs[name], target) for name, target in targets.items())


def _select(targets: Targets, index: torch.Tensor, device: torch.device) -> Targets:
    if isinstance(targets, torch.Tensor):
        return targets[index].to(device)
    return {name: values[index].to(device) for name, values in targets.items()}


def _count_correct(outputs: Logits, targets: Targets) -> dict[str, int]:
    if isinstance(outputs, torch.Tensor):
        return {"": int((outputs.argmax(1) == targets).sum())}
    return {name: int((outputs[name].argmax(1) == target).sum()) for name, target in targets.items()}


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def stratified_split(labels: torch.Tensor, fraction: float, generator: torch.Generator,
                     min_per_class: int = MIN_VALIDATION_PER_CLASS) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train_index, validation_index)``: a random ``fraction`` of each class held out.

    Each class with at least two items gives ``round(fraction · n_c)`` items, but at least
    ``min(min_per_class, n_c // 2)`` and at most ``n_c − 1``, so a rare class is present in both
    parts where possible; a class with a single item stays in the training part. Both index
    tensors are sorted (int64, CPU).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    labels = labels.detach().cpu()
    held_out, kept = [], []
    for value in torch.unique(labels):  # sorted, so the draw order is reproducible
        members = (labels == value).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_c = len(members)
        k = 0 if n_c < 2 else min(n_c - 1, max(round(fraction * n_c), min(min_per_class, n_c // 2)))
        held_out.append(members[:k])
        kept.append(members[k:])
    empty = torch.zeros(0, dtype=torch.long)
    train_index = torch.cat(kept).sort().values if kept else empty
    val_index = torch.cat(held_out).sort().values if held_out else empty
    return train_index, val_index


def evaluate_classifier(model: nn.Module, images: torch.Tensor, targets: Targets,
                        index: torch.Tensor, ctx: Context,
                        batch_size: int) -> tuple[float, dict[str, float]]:
    """Eval-mode mean loss and accuracy per head (``""`` for a single head) over the items at
    ``index`` (positions in ``images`` and ``targets``), without copying them all at once."""
    model.eval()
    total_loss, correct = 0.0, {}
    n = len(index)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            ctx.check_deadline()
            positions = index[start:start + batch_size]
            batch_targets = _select(targets, positions, ctx.device)
            outputs = model(to_device(images[positions], ctx))
            total_loss += float(classification_loss(outputs, batch_targets)) * len(positions)
            for head, count in _count_correct(outputs, batch_targets).items():
                correct[head] = correct.get(head, 0) + count
    return total_loss / max(1, n), {head: count / max(1, n) for head, count in correct.items()}


def mean_over_heads(accuracies: Mapping[str, float]) -> float:
    return sum(accuracies.values()) / len(accuracies) if accuracies else math.nan


@dataclass
class FitResult:
    """What :func:`fit_classifier` did.

    ``model`` is the trained model in eval mode (the best epoch's weights when validating).
    ``history`` has one entry per epoch run (see :func:`fit_classifier`). ``epochs`` is the
    number of epochs run, ``best_epoch`` the (0-based) epoch whose weights were kept.
    ``train_accuracy`` / ``val_accuracy`` / ``val_loss`` are measured at the end, in eval mode,
    with the returned weights (after BatchNorm recalibration), on the training part and the
    validation part: the mean over heads for a multi-head model; NaN without validation.
    ``train_index`` / ``val_index`` are the positions of the two parts in the given data.
    """

    model: nn.Module
    history: list[dict[str, float]]
    epochs: int
    best_epoch: int
    stopped_early: bool
    train_accuracy: float
    val_accuracy: float
    val_loss: float
    train_index: torch.Tensor
    val_index: torch.Tensor
    val_accuracies: dict[str, float] = field(default_factory=dict)


def to_device(batch: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Move a batch to ``ctx.device``; image batches (N×C×H×W) in channels-last layout.

    Convolutions of the small networks here run 1.6-1.8× faster on the CPU in channels-last
    layout (oneDNN; measured on SmallCNN, one thread), and models trained by
    :func:`fit_classifier` are converted to it.
    """
    batch = batch.to(ctx.device, non_blocking=True)
    return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def average_step(mean_params: list[torch.Tensor], live_params: list[torch.Tensor], steps: int,
                 decay: float) -> None:
    """Move the weight average towards the live weights after step ``steps`` (1-based), with
    TensorFlow's ramp: early steps use a smaller decay, so the average soon forgets the random
    initial weights."""
    weight = 1.0 - min(decay, (1.0 + steps) / (10.0 + steps))
    with torch.no_grad():
        for mean_param, param in zip(mean_params, live_params):
            mean_param.lerp_(param, weight)


def epoch_improved(entry: Mapping[str, float], best: Mapping[str, float] | None,
                   monitor: str, min_delta: float) -> bool:
    """Whether an epoch's validation figures (``val_loss``, ``val_accuracy``) beat the best so far.

    A loss must beat the best by more than ``min_delta`` (on a separable problem it creeps
    towards 0 for ever); an accuracy tie counts when the loss improved, since accuracy on a small
    validation split moves in steps."""
    if best is None:
        return True
    if monitor == "loss":
        return entry["val_loss"] < best["val_loss"] - min_delta
    accuracy_now, accuracy_best = entry["val_accuracy"], best["val_accuracy"]
    return accuracy_now > accuracy_best + 1e-9 or (
        accuracy_now >= accuracy_best - 1e-9 and entry["val_loss"] < best["val_loss"] - min_delta)


@charged_to("train")
def fit_classifier(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    ctx: Context,
    *,
    max_epochs: int | None = None,
    patience: int | None = None,
    validation: float | None = DEFAULT_VALIDATION,
    monitor: Literal["loss", "accuracy"] = "loss",
    batch_size: int | None = None,
    lr: float = DEFAULT_LR,
    weight_decay: float = 0.0,
    average: float | None = DEFAULT_AVERAGE,
    min_delta: float = 1e-3,
    desc: str = "train",
    generator: torch.Generator | None = None,
    recalibrate: bool = True,
    recalibrate_items: int = RECALIBRATE_ITEMS,
    measure_train: bool = True,
    loss: Callable[[Logits, Targets], torch.Tensor] | None = None,
) -> FitResult:
    """Train ``model`` with Adam to predict ``targets`` from ``images``, stopping early.

    ``targets``: an int64 tensor of N labels (the model returns logits) or ``{attribute: labels}``
    (the model returns a dict with those keys, e.g. a :class:`~ppbench.nn.MultiHead`); the loss is
    the cross-entropy summed over heads. ``images`` may stay on the CPU: on an accelerator they
    are moved there once for the whole fit, as uint8 where that is exact
    (:mod:`~ppbench.nn.resident`).

    Early stopping: a stratified ``validation`` fraction of the given items (stratified on the
    labels, or on the first attribute in sorted order for a dict) is held out, drawn from
    ``generator`` (default ``ctx.generator()``, which also shuffles the batches, so a run is
    reproducible). After every epoch the model is evaluated there in eval mode; training stops
    after ``patience`` epochs in a row without a better validation figure (``monitor``: the loss,
    lower by more than ``min_delta``; or the accuracy, with ties broken by the loss) or after
    ``max_epochs``, and the best epoch's weights are restored. ``max_epochs``, ``patience`` and
    ``batch_size`` default to the context's profile. ``validation=None`` (or 0) trains on
    everything for exactly ``max_epochs``: for callers that need a fixed number of epochs.

    ``lr`` is Adam's learning rate. ``average``: when set (default 0.98; None turns it off), the
    model that is validated and returned is an exponential moving average of the weights with
    this decay per step (Polyak averaging; the decay ramps up
    over the first steps so that the initial weights are soon forgotten). It smooths the noise of
    small-batch Adam, so validation figures rise steadily and early stopping does not stop on a
    bad epoch.

    BatchNorm: before each validation, and once at the end without validation, the statistics
    are recomputed (:func:`recalibrate_batchnorm`) on the same ``recalibrate_items`` items of the
    training part, never on validation items, with the weights being evaluated: the running
    averages kept during training trail the weights, and validation with them swings by several
    points from epoch to epoch. The best epoch's weights are saved with their recalibrated
    statistics, so the returned model is exactly the one whose validation figures are recorded.
    ``recalibrate=False`` keeps the running averages (for tests of the mechanism).

    Each history entry holds ``epoch`` (0-based), the mean training ``loss`` and running
    ``accuracy`` over that epoch's batches (free, but taken in train mode while the weights move;
    ``accuracy:<attribute>`` per head for a dict of targets), and, when validating, ``val_loss``
    and ``val_accuracy`` (``val_accuracy:<attribute>`` per head) of the evaluated weights.
    ``measure_train`` measures the returned model's ``train_accuracy`` in eval mode on the
    training part at the end (one forward pass).

    ``loss(outputs, targets)``: the training loss, by default the cross-entropy; a margin-based
    softmax (:func:`ppbench.nn.embedding.cosface_loss`) changes only what is optimised. Validation
    and early stopping always use the plain cross-entropy of the model's outputs.
    """
    training_loss = classification_loss if loss is None else loss
    max_epochs = ctx.profile.max_epochs if max_epochs is None else max_epochs
    patience = ctx.profile.patience if patience is None else patience
    batch_size = ctx.profile.batch_size if batch_size is None else batch_size
    if not _is_int(max_epochs) or max_epochs < 1:
        raise ValueError(f"max_epochs must be an integer >= 1, got {max_epochs!r}")
    if not _is_int(patience) or patience < 1:
        raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if validation is not None and (not isinstance(validation, Real) or isinstance(validation, bool)
                                   or not 0.0 <= float(validation) < 1.0):
        raise ValueError(f"validation must be None or a fraction in [0, 1), got {validation!r}")
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
    if not isinstance(lr, Real) or isinstance(lr, bool) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    if average is not None and (not isinstance(average, Real) or isinstance(average, bool)
                                or not 0.0 <= float(average) < 1.0):
        raise ValueError(f"average must be None or a decay in [0, 1), got {average!r}")
    if not isinstance(min_delta, Real) or isinstance(min_delta, bool) or not min_delta >= 0:
        raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
    if not _is_int(recalibrate_items) or recalibrate_items < 2:
        raise ValueError(f"recalibrate_items must be an integer >= 2, got {recalibrate_items!r}")
    n = len(images)
    for name, values in ({"targets": targets} if isinstance(targets, torch.Tensor) else targets).items():
        if len(values) != n:
            raise ValueError(f"{name}: {len(values)} labels for {n} images")
    if n < 1:
        raise ValueError("cannot train on an empty set")
    generator = generator if generator is not None else ctx.generator()

    all_items = torch.arange(n)
    train_index, val_index = all_items, all_items[:0]
    if validation:
        if isinstance(targets, torch.Tensor):
            strata = targets
        else:
            strata = targets[sorted(targets)[0]] if targets else torch.zeros(n, dtype=torch.long)
        train_index, val_index = stratified_split(strata, float(validation), generator)
    validating = len(val_index) > 0
    # On an accelerator the whole set moves once, compactly (ppbench.nn.resident).
    images = resident(images, ctx.device)
    targets = resident_targets(targets, ctx.device)
    recalibrating = recalibrate and _has_batchnorm(model)
    # BatchNorm is always recalibrated on the same training items (a fixed random subset), so
    # that the statistics saved with the best epoch are those a final recalibration would give.
    order = torch.randperm(len(train_index), generator=ctx.generator(stream=BATCHNORM_STREAM))
    recalibration_images = images[train_index[order[:recalibrate_items]]] if recalibrating else None

    model.to(ctx.device)
    if images.dim() == 4:
        model.to(memory_format=torch.channels_last)  # see to_device
    optimizer = torch.optim.Adam(model.parameters(), lr=float(lr), weight_decay=float(weight_decay))
    averaged = copy.deepcopy(model) if average else None
    evaluated = averaged if averaged is not None else model  # the weights validated and returned
    live_params = list(model.parameters())
    average_params = list(averaged.parameters()) if averaged is not None else []
    steps = 0
    history: list[dict[str, float]] = []
    best: dict[str, float] | None = None  # the best epoch's history entry
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, since_best, stopped_early = max_epochs - 1, 0, False
    epoch_loss, epoch_items, epoch_correct = 0.0, 0, {}

    def borrow_buffers() -> None:
        """Without recalibration the average has no BatchNorm statistics of its own: it borrows
        the running ones of the trained weights."""
        if averaged is not None:
            with torch.no_grad():
                for mean_buffer, buffer in zip(averaged.buffers(), model.buffers()):
                    mean_buffer.copy_(buffer)

    def close_epoch(epoch: int) -> bool:
        """Record the epoch; True when training should stop."""
        nonlocal best, best_state, best_epoch, since_best
        entry: dict[str, float] = {"epoch": float(epoch), "loss": epoch_loss / max(1, epoch_items)}
        for head, correct in epoch_correct.items():
            entry[f"accuracy:{head}" if head else "accuracy"] = correct / max(1, epoch_items)
        if not validating:
            history.append(entry)
            best_epoch = epoch
            return False
        if recalibrating:
            recalibrate_batchnorm(evaluated, recalibration_images, ctx, batch_size=batch_size)
        else:
            borrow_buffers()
        val_loss, val_acc = evaluate_classifier(evaluated, images, targets, val_index, ctx,
                                                4 * batch_size)
        model.train()
        entry["val_loss"] = val_loss
        entry["val_accuracy"] = mean_over_heads(val_acc)
        if len(val_acc) > 1:
            entry.update({f"val_accuracy:{head}": value for head, value in val_acc.items()})
        history.append(entry)
        if epoch_improved(entry, best, monitor, min_delta):
            best, best_epoch, since_best = entry, epoch, 0
            best_state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
            return False
        since_best += 1
        return since_best >= patience

    model.train()
    current_epoch = 0
    for epoch, index in iterate_minibatches(len(train_index), batch_size, ctx, max_epochs, desc,
                                            generator=generator):
        if epoch != current_epoch:
            if close_epoch(current_epoch):
                stopped_early = True
                break
            current_epoch, epoch_loss, epoch_items, epoch_correct = epoch, 0.0, 0, {}
        positions = train_index[index]
        batch = to_device(images[positions], ctx)
        batch_targets = _select(targets, positions, ctx.device)
        outputs = model(batch)
        batch_loss = training_loss(outputs, batch_targets)
        optimizer.zero_grad(set_to_none=True)
        batch_loss.backward()
        optimizer.step()
        if averaged is not None:
            steps += 1
            average_step(average_params, live_params, steps, float(average))
        epoch_loss += float(batch_loss.detach()) * len(index)
        epoch_items += len(index)
        with torch.no_grad():
            for head, correct in _count_correct(outputs, batch_targets).items():
                epoch_correct[head] = epoch_correct.get(head, 0) + correct
    else:
        close_epoch(current_epoch)

    if best_state is not None:
        # Saved with statistics recalibrated for these very weights (when recalibrating).
        model.load_state_dict(best_state)
    else:
        if averaged is not None:
            if not recalibrating:
                borrow_buffers()
            model.load_state_dict(averaged.state_dict())
        if recalibrating:
            recalibrate_batchnorm(model, recalibration_images, ctx, batch_size=batch_size)
    model.eval()
    val_loss, val_acc = math.nan, {}
    if validating:
        val_loss, val_acc = evaluate_classifier(model, images, targets, val_index, ctx,
                                                4 * batch_size)
    train_accuracy = math.nan
    if measure_train:
        train_accuracy = mean_over_heads(evaluate_classifier(
            model, images, targets, train_index, ctx, 4 * batch_size)[1])
    model.eval()
    return FitResult(model=model, history=history, epochs=len(history), best_epoch=best_epoch,
                     stopped_early=stopped_early, train_accuracy=train_accuracy,
                     val_accuracy=mean_over_heads(val_acc), val_loss=val_loss,
                     train_index=train_index,
                     val_index=val_index, val_accuracies=val_acc)


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    ctx: Context,
    *,
    history: list[dict[str, float]] | None = None,
    **options: Any,
) -> nn.Module:
    """:func:`fit_classifier` returning only the model (in eval mode); ``history``, when given,
    receives the per-epoch entries. ``options`` are :func:`fit_classifier`'s keyword arguments."""
    result = fit_classifier(model, images, targets, ctx, **options)
    if history is not None:
        history.extend(result.history)
    return result.model


def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, ctx: Context, *,
                          batch_size: int | None = None, max_items: int = 4096,
                          forward: Callable[[torch.Tensor], Any] | None = None) -> nn.Module:
    """Recompute BatchNorm running statistics with the final weights ("precise BN").

    BatchNorm's running averages (momentum 0.1) trail the weights: after a short training run
    they still mix statistics of early weights, and the eval-mode model is much worse than the
    train-mode one; after early stopping restores an earlier epoch's weights, the saved
    statistics belong to them only approximately. One forward pass over up to ``max_items``
    training items, averaging the batch statistics with equal weights, fixes that for about a
    third of an epoch's cost (a forward pass without gradients). Models without BatchNorm are
    returned untouched.

    ``forward``: how a batch of images goes through ``model`` when not as ``model(images)``, e.g.
    a filter and a generator in turn, with their noise (every BatchNorm in ``model`` is reset).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or len(images) < 2:
        return model
    batch_size = batch_size or ctx.profile.batch_size
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # None: a cumulative average over the batches seen
    was_training = model.training
    model.train()
    try:
        with torch.no_grad():
            # A random subset in random order: a split sorted by class would otherwise give
            # batches of one class, whose variances understate the data's.
            order = torch.randperm(len(images), generator=ctx.generator(stream=BATCHNORM_STREAM))
            order = order[:max_items]
            for start, stop in ctx.progress(batch_slices(len(order), batch_size), desc="batchnorm",
                                            unit="batch"):
                (forward or model)(to_device(images[order[start:stop]], ctx))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    return model


@charged_to("predict")
def apply_model(function: Callable[[torch.Tensor], Any], images: torch.Tensor, ctx: Context,
                batch_size: int | None = None, desc: str = "predict") -> Any:
    """Apply ``function`` batch by batch under ``no_grad`` on ``ctx.device``; concatenate the
    outputs on the CPU (tensors, or dicts of tensors with the same keys)."""
    batch_size = batch_size or 4 * ctx.profile.batch_size  # no activations kept: larger is fine
    outputs: list[Any] = []
    bounds = [(start, min(start + batch_size, len(images))) for start in range(0, len(images), batch_size)]
    with torch.no_grad():
        for start, stop in ctx.progress(bounds, desc=desc, total=len(bounds), unit="batch"):
            out = function(images[start:stop].to(ctx.device, non_blocking=True))
            if isinstance(out, torch.Tensor):
                outputs.append(out.cpu())
            else:
                outputs.append({name: value.cpu() for name, value in out.items()})
    if not outputs:
        raise ValueError("cannot apply a model to an empty set")
    if isinstance(outputs[0], torch.Tensor):
        return torch.cat(outputs)
    return {name: torch.cat([o[name] for o in outputs]) for name in outputs[0]}


def predict_logits(model: nn.Module, images: torch.Tensor, ctx: Context,
                   batch_size: int | None = None) -> Logits:
    """The model's outputs for ``images`` in eval mode, on the CPU: a tensor, or a dict of
    tensors for a multi-head model. The model is moved to ``ctx.device`` and its train/eval mode
    is restored afterwards."""
    was_training = model.training
    model.to(ctx.device)
    model.eval()
    try:
        # Image batches in channels-last layout, as the model was trained (see to_device).
        return apply_model(lambda batch: model(to_device(batch, ctx)), images, ctx, batch_size)
    finally:
        model.train(was_training)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of items whose arg-max class equals the label."""
    if len(labels) == 0:
        return float("nan")
    return float((logits.argmax(1).cpu() == labels.cpu()).float().mean())
