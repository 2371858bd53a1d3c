"""Several small classifiers trained at once, as one grouped-convolution network.

In one (task, seed) the same attack trains one small classifier per sanitizer configuration, and
these trainings are independent. On a GPU each of them alone is launch-bound: a SmallCNN at batch
64 leaves an H100 half idle. :func:`fit_classifiers` folds K SmallCNNs of one shape into one
network whose convolutions have ``groups=K`` (model k's channels are the k-th block of every
layer), its BatchNorm and pooling act per channel, and its heads are one batched product.
Each step feeds every model its own mini-batch, and the loss is the sum of the models' losses.
The parameters are disjoint, so each model's gradient, Adam state and weight average are exactly
those it would have alone.

Every model keeps its own data, validation split, shuffling, BatchNorm recalibration items and
early stopping (drawn from its own generators, as :func:`~ppbench.nn.fit_classifier` draws
them). The results therefore equal K separate fits up to the rounding of the grouped kernels: the
tests compare them. Training goes on until every model has stopped, and each model is restored
to its own best epoch, so a model that stopped early is not changed by the later epochs.
Models that cannot be folded (another architecture, sets of different sizes) are fitted one
after the other with :func:`~ppbench.nn.fit_classifier`.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Context
from ..profiling import charged_to
from .networks import SmallCNN
from .resident import resident
from .training import (DEFAULT_AVERAGE, DEFAULT_LR, DEFAULT_VALIDATION, RECALIBRATE_ITEMS,
                       BATCHNORM_STREAM, FitResult, average_step, batch_slices, epoch_improved,
                       evaluate_classifier, fit_classifier, mean_over_heads, recalibrate_batchnorm,
                       stratified_split, to_device)


class StackedSmallCNN(nn.Module):
    """K :class:`~ppbench.nn.SmallCNN` of one shape as one network: input N×(K·C)×H×W (model k's
    batch in channels k·C … (k+1)·C), output N×K×classes."""

    def __init__(self, models: Sequence[SmallCNN]) -> None:
        super().__init__()
        self.k = len(models)
        self.grid = models[0].grid
        layers: list[nn.Module] = []
        for index, layer in enumerate(models[0].body):
            if isinstance(layer, nn.MaxPool2d):
                layers.append(nn.MaxPool2d(layer.kernel_size))
                continue
            conv, norm = layer[0], layer[1]
            grouped = nn.Conv2d(self.k * conv.in_channels, self.k * conv.out_channels,
                                conv.kernel_size, padding=conv.padding, bias=False, groups=self.k)
            stacked_norm = nn.BatchNorm2d(self.k * norm.num_features, eps=norm.eps,
                                          momentum=norm.momentum)
            with torch.no_grad():
                grouped.weight.copy_(torch.cat([m.body[index][0].weight for m in models]))
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(stacked_norm, name).copy_(
                        torch.cat([getattr(m.body[index][1], name) for m in models]))
            layers.append(nn.Sequential(grouped, stacked_norm, nn.ReLU(inplace=True)))
        self.body = nn.Sequential(*layers)
        self.head_weight = nn.Parameter(torch.stack([m.head.weight.detach() for m in models]))
        self.head_bias = nn.Parameter(torch.stack([m.head.bias.detach() for m in models]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.adaptive_avg_pool2d(self.body(x), self.grid)
        features = features.reshape(len(x), self.k, -1)  # model k's channels, flattened as alone
        return torch.einsum("nkf,kof->nko", features, self.head_weight) + self.head_bias

    def unstack_into(self, models: Sequence[SmallCNN]) -> None:
        """Copy model k's share of the weights (and BatchNorm statistics) into ``models[k]``."""
        with torch.no_grad():
            for index, layer in enumerate(self.body):
                if isinstance(layer, nn.MaxPool2d):
                    continue
                weights = layer[0].weight.chunk(self.k)
                norms = {name: getattr(layer[1], name).chunk(self.k)
                         for name in ("weight", "bias", "running_mean", "running_var")}
                for k, model in enumerate(models):
                    model.body[index][0].weight.copy_(weights[k])
                    for name, parts in norms.items():
                        getattr(model.body[index][1], name).copy_(parts[k])
            for k, model in enumerate(models):
                model.head.weight.copy_(self.head_weight[k])
                model.head.bias.copy_(self.head_bias[k])


def can_stack(models: Sequence[nn.Module]) -> bool:
    """Whether :class:`StackedSmallCNN` can fold these models: SmallCNNs with a linear head and
    identical parameter shapes."""
    if len(models) < 2 or not all(type(m) is SmallCNN and isinstance(m.head, nn.Linear)
                                  for m in models):
        return False
    shapes = [[tuple(p.shape) for p in m.parameters()] + [m.grid] for m in models]
    return all(shape == shapes[0] for shape in shapes)


class _Member:
    """One model's own part of a joint fit: its data, split, average, and early stopping."""

    def __init__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, ctx: Context,
                 generator: torch.Generator, validation: float | None, recalibrate_items: int,
                 average: float | None) -> None:
        self.model, self.ctx, self.generator = model, ctx, generator
        n = len(images)
        all_items = torch.arange(n)
        self.train_index, self.val_index = all_items, all_items[:0]
        if validation:
            self.train_index, self.val_index = stratified_split(labels, float(validation), generator)
        self.validating = len(self.val_index) > 0
        order = torch.randperm(len(self.train_index), generator=ctx.generator(stream=BATCHNORM_STREAM))
        self.images = resident(images, ctx.device)
        self.labels = labels.to(ctx.device)
        self.recalibration = self.images[self.train_index[order[:recalibrate_items]]]
        model.to(ctx.device).to(memory_format=torch.channels_last)
        self.averaged = copy.deepcopy(model) if average else None
        self.evaluated = self.averaged if self.averaged is not None else model
        self.history: list[dict[str, float]] = []
        self.best: dict[str, float] | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch, self.since_best, self.stopped = -1, 0, False
        self.stopped_early = False
        self.epoch_loss, self.epoch_items, self.epoch_correct = 0.0, 0, 0

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions = self.train_index[index]
        return self.images[positions], self.labels[positions.to(self.labels.device)]


@charged_to("train")
def fit_classifiers(models: Sequence[nn.Module], images: Sequence[torch.Tensor],
                    labels: Sequence[torch.Tensor], contexts: Sequence[Context], *,
                    generators: Sequence[torch.Generator] | None = None,
                    max_epochs: int | None = None, patience: int | None = None,
                    validation: float | None = DEFAULT_VALIDATION, lr: float = DEFAULT_LR,
                    average: float | None = DEFAULT_AVERAGE, min_delta: float = 1e-3,
                    batch_size: int | None = None, desc: str = "train",
                    recalibrate_items: int = RECALIBRATE_ITEMS) -> list[FitResult]:
    """:func:`~ppbench.nn.fit_classifier` for each (model, images, labels, context) — the
    classifiers of several cells — trained together when they fold into one network (see the
    module's docstring), else one after the other. ``generators[k]`` is model k's (default:
    ``contexts[k].generator()``); the options are fit_classifier's, shared by all models, with
    loss monitoring. Every context must name the same device and profile."""
    generators = list(generators) if generators is not None else [c.generator() for c in contexts]
    options = {"max_epochs": max_epochs, "patience": patience, "validation": validation, "lr": lr,
               "average": average, "min_delta": min_delta, "batch_size": batch_size,
               "recalibrate_items": recalibrate_items, "desc": desc}
    sizes = {len(x) for x in images}
    shapes = {tuple(x.shape[1:]) for x in images}
    if not can_stack(models) or len(sizes) != 1 or len(shapes) != 1 or \
            len({str(c.device) for c in contexts}) != 1:
        return [fit_classifier(m, x, y, c, generator=g, **options)
                for m, x, y, c, g in zip(models, images, labels, contexts, generators)]
    lead = contexts[0]
    max_epochs = lead.profile.max_epochs if max_epochs is None else max_epochs
    patience = lead.profile.patience if patience is None else patience
    batch_size = lead.profile.batch_size if batch_size is None else batch_size
    members = [_Member(m, x, y, c, g, validation, recalibrate_items, average)
               for m, x, y, c, g in zip(models, images, labels, contexts, generators)]
    if len({len(member.train_index) for member in members}) != 1:  # strata of other sizes
        return [fit_classifier(m, x, y, c, generator=g, **options)
                for m, x, y, c, g in zip(models, images, labels, contexts, generators)]
    device = lead.device
    active = list(members)
    stacked, averaged, optimizer = _stack(active, None, float(lr), average, device)
    bounds = batch_slices(len(members[0].train_index), batch_size)
    steps = 0
    for epoch in lead.progress(range(max_epochs), desc=desc, total=max_epochs, unit="epoch"):
        stacked.train()
        live, mean = list(stacked.parameters()), list(averaged.parameters()) if averaged else []
        orders = [torch.randperm(len(member.train_index), generator=member.generator)
                  for member in active]
        for start, stop in bounds:
            for member in active:
                member.ctx.check_deadline()
            parts = [member.batch(order[start:stop]) for member, order in zip(active, orders)]
            batch = torch.cat([to_device(x, lead) for x, _ in parts], dim=1)
            outputs = stacked(batch.contiguous(memory_format=torch.channels_last))
            losses = [F.cross_entropy(outputs[:, k], y) for k, (_, y) in enumerate(parts)]
            optimizer.zero_grad(set_to_none=True)
            sum(losses).backward()
            optimizer.step()
            if averaged is not None:
                steps += 1
                average_step(mean, live, steps, float(average))
            with torch.no_grad():
                for k, (member, (_, y)) in enumerate(zip(active, parts)):
                    member.epoch_loss += float(losses[k].detach()) * len(y)
                    member.epoch_items += len(y)
                    member.epoch_correct += int((outputs[:, k].argmax(1) == y).sum())
        # Each model's weights of this epoch go back to it, to be validated on its own.
        stacked.unstack_into([member.model for member in active])
        if averaged is not None:
            averaged.unstack_into([member.averaged for member in active])
            # The average borrows the trained weights' BatchNorm statistics until recalibrated.
            for member in active:
                with torch.no_grad():
                    for mean_buffer, buffer in zip(member.averaged.buffers(), member.model.buffers()):
                        mean_buffer.copy_(buffer)
        for member in active:
            _close_epoch(member, epoch, batch_size, patience, min_delta,
                         last=epoch == max_epochs - 1)
        still = [member for member in active if not member.stopped]
        if not still:
            break
        if len(still) < len(active):
            # A model that stopped leaves the network: the others go on with their own weights,
            # averages and Adam moments, as they would alone.
            stacked, averaged, optimizer = _stack(still, (active, stacked, optimizer), float(lr),
                                                  average, device)
            active = still
    return [_finish(member, batch_size) for member in members]


def _stack(members: list[_Member], previous: tuple[list[_Member], StackedSmallCNN, Any] | None,
           lr: float, average: float | None, device: torch.device) -> tuple[StackedSmallCNN, StackedSmallCNN | None, Any]:
    """The network of ``members``' models (their current weights), its average, and Adam; when
    ``previous`` (the members before, their network and its optimizer) is given, each kept
    model's Adam moments carry over from it."""
    stacked = StackedSmallCNN([member.model for member in members]).to(device)
    stacked = stacked.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(stacked.parameters(), lr=lr)
    averaged = None
    if average:
        averaged = StackedSmallCNN([member.averaged for member in members]).to(device)
        averaged = averaged.to(memory_format=torch.channels_last)
    if previous is not None:
        before, old_network, old_optimizer = previous
        kept = [before.index(member) for member in members]
        for old, new in zip(old_network.parameters(), stacked.parameters()):
            state = old_optimizer.state.get(old)
            if not state:
                continue
            optimizer.state[new] = {
                name: (value if name == "step" else
                       torch.cat([chunk for k, chunk in enumerate(value.chunk(len(before)))
                                  if k in kept]).contiguous())
                for name, value in state.items()}
    return stacked, averaged, optimizer


def _close_epoch(member: _Member, epoch: int, batch_size: int, patience: int,
                 min_delta: float, last: bool) -> None:
    """Record the epoch and decide on stopping, as fit_classifier does (which does not call the
    end of its last epoch a stop)."""
    entry: dict[str, float] = {"epoch": float(epoch),
                               "loss": member.epoch_loss / max(1, member.epoch_items),
                               "accuracy": member.epoch_correct / max(1, member.epoch_items)}
    member.epoch_loss, member.epoch_items, member.epoch_correct = 0.0, 0, 0
    if not member.validating:
        member.history.append(entry)
        member.best_epoch = epoch
        return
    recalibrate_batchnorm(member.evaluated, member.recalibration, member.ctx, batch_size=batch_size)
    val_loss, val_acc = evaluate_classifier(member.evaluated, member.images, member.labels, member.val_index,
                                  member.ctx, 4 * batch_size)
    entry["val_loss"], entry["val_accuracy"] = val_loss, mean_over_heads(val_acc)
    member.history.append(entry)
    if epoch_improved(entry, member.best, "loss", min_delta):
        member.best, member.best_epoch, member.since_best = entry, epoch, 0
        member.best_state = {k: v.detach().clone() for k, v in member.evaluated.state_dict().items()}
        return
    member.since_best += 1
    if member.since_best >= patience:
        member.stopped, member.stopped_early = True, not last


def _finish(member: _Member, batch_size: int) -> FitResult:
    model = member.model
    if member.best_state is not None:
        model.load_state_dict(member.best_state)
    else:
        if member.averaged is not None:
            model.load_state_dict(member.averaged.state_dict())
        recalibrate_batchnorm(model, member.recalibration, member.ctx, batch_size=batch_size)
    model.eval()
    val_loss, val_acc = math.nan, {}
    if member.validating:
        val_loss, val_acc = evaluate_classifier(model, member.images, member.labels, member.val_index,
                                      member.ctx, 4 * batch_size)
    train_accuracy = mean_over_heads(evaluate_classifier(model, member.images, member.labels, member.train_index,
                                     member.ctx, 4 * batch_size)[1])
    return FitResult(model=model, history=member.history, epochs=len(member.history),
                     best_epoch=member.best_epoch, stopped_early=member.stopped_early,
                     train_accuracy=train_accuracy, val_accuracy=mean_over_heads(val_acc), val_loss=val_loss,
                     train_index=member.train_index, val_index=member.val_index,
                     val_accuracies=val_acc)

