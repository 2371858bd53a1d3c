"""The one training loop every plugin uses, and the mini-batch iterator it is built on.

A learned sanitizer or GAN writes its own step (several optimisers, alternating losses) but reuses
:func:`iterate_minibatches` for shuffling, epochs, progress bars and deadline checks, and
:func:`predict_logits` / :func:`apply_model` for inference; the attack and metric classifiers call
:func:`train_classifier` directly.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Context

Targets = Mapping[str, torch.Tensor] | torch.Tensor
Logits = dict[str, torch.Tensor] | torch.Tensor

_BATCHNORM_STREAM = 104729  # a generator stream of its own for the recalibration subset


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


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    targets: Targets,
    ctx: Context,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    desc: str = "train",
    generator: torch.Generator | None = None,
    history: list[dict[str, float]] | None = None,
    recalibrate: bool = True,
) -> nn.Module:
    """Train ``model`` with Adam to predict ``targets`` from ``images``; return it in eval mode.

    ``targets``: an int64 tensor of N labels (the model returns logits) or ``{attribute: labels}``
    (the model returns a dict with those keys, e.g. a :class:`~ppbench.nn.MultiHead`); the loss is
    the cross-entropy summed over heads. ``epochs`` and ``batch_size`` default to the context's
    profile. Batches are moved to ``ctx.device`` one at a time, so ``images`` may stay on the CPU.

    ``history``, when given, receives one entry per epoch: the mean ``loss`` and the running
    ``accuracy`` (``accuracy:<attribute>`` per head for a dict of targets) over that epoch's
    batches, measured as it trains (free, but taken in train mode while the weights move).
    ``recalibrate`` recomputes BatchNorm statistics with the final weights
    (:func:`recalibrate_batchnorm`), which matters after short runs.
    """
    epochs = ctx.profile.max_epochs if epochs is None else int(epochs)
    batch_size = ctx.profile.batch_size if batch_size is None else int(batch_size)
    n = len(images)
    for name, values in ({"targets": targets} if isinstance(targets, torch.Tensor) else targets).items():
        if len(values) != n:
            raise ValueError(f"{name}: {len(values)} labels for {n} images")
    model.to(ctx.device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    epoch_loss, epoch_items, epoch_correct = 0.0, 0, {}

    def close_epoch(epoch: int) -> None:
        if history is None or epoch_items == 0:
            return
        entry: dict[str, float] = {"epoch": float(epoch), "loss": epoch_loss / epoch_items}
        for head, correct in epoch_correct.items():
            entry[f"accuracy:{head}" if head else "accuracy"] = correct / epoch_items
        history.append(entry)

    current_epoch = 0
    for epoch, index in iterate_minibatches(n, batch_size, ctx, epochs, desc, generator=generator):
        if epoch != current_epoch:
            close_epoch(current_epoch)
            current_epoch, epoch_loss, epoch_items, epoch_correct = epoch, 0.0, 0, {}
        batch = images[index].to(ctx.device, non_blocking=True)
        batch_targets = _select(targets, index, ctx.device)
        outputs = model(batch)
        loss = classification_loss(outputs, batch_targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if history is not None:
            epoch_loss += float(loss.detach()) * len(index)
            epoch_items += len(index)
            with torch.no_grad():
                for head, correct in _count_correct(outputs, batch_targets).items():
                    epoch_correct[head] = epoch_correct.get(head, 0) + correct
    close_epoch(current_epoch)
    if recalibrate:
        recalibrate_batchnorm(model, images, ctx, batch_size=batch_size)
    model.eval()
    return model


def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, ctx: Context, *,
                          batch_size: int | None = None, max_items: int = 4096) -> nn.Module:
    """Recompute BatchNorm running statistics with the final weights ("precise BN").

    BatchNorm's running averages (momentum 0.1) trail the weights: after a short training run,
    as on the quick profile, they still mix statistics of early weights, and the eval-mode model
    is much worse than the train-mode one. One forward pass over up to ``max_items`` training
    items, averaging the batch statistics with equal weights, fixes that for ~1/10 of an
    epoch's cost. Models without BatchNorm are returned untouched.
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
            order = torch.randperm(len(images), generator=ctx.generator(stream=_BATCHNORM_STREAM))
            order = order[:max_items]
            for start, stop in ctx.progress(batch_slices(len(order), batch_size), desc="batchnorm",
                                            unit="batch"):
                model(images[order[start:stop]].to(ctx.device, non_blocking=True))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    return model


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
        return apply_model(model, images, ctx, batch_size)
    finally:
        model.train(was_training)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of items whose arg-max class equals the label."""
    if len(labels) == 0:
        return float("nan")
    return float((logits.argmax(1).cpu() == labels.cpu()).float().mean())
