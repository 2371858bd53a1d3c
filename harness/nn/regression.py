"""The training loop of image-to-image regressors: an attacker that learns to undo a sanitizer.

:func:`fit_regressor` trains a network (a :class:`~ppbench.nn.UNet`, say) to map ``inputs`` to
``targets`` by mean squared error, with the same discipline as :func:`~ppbench.nn.fit_classifier`:
a random ``validation`` fraction held out, early stopping after ``patience`` epochs without a
better validation MSE, the best epoch's weights restored, BatchNorm statistics recomputed for the
weights being evaluated. A reconstruction attack trained for a fixed number of epochs would
understate what an attacker rebuilds, as an under-trained classifier understates leakage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Context
from .training import apply_model, iterate_minibatches, recalibrate_batchnorm, to_device


@dataclass
class RegressionFit:
    """The trained model (eval mode, best epoch's weights) and how training went."""

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    epochs: int = 0
    best_epoch: int = 0
    stopped_early: bool = False
    val_mse: float = math.nan


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _mse(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, index: torch.Tensor,
         ctx: Context, batch_size: int) -> float:
    model.eval()
    outputs = apply_model(lambda batch: model(to_device(batch, ctx)), inputs[index], ctx, batch_size,
                          desc="validate")
    return float(F.mse_loss(outputs.float(), targets[index].float()))


def fit_regressor(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, ctx: Context, *,
                  max_epochs: int | None = None, patience: int | None = None,
                  validation: float = 0.2, batch_size: int | None = None, lr: float = 1e-3,
                  min_delta: float = 1e-5, desc: str = "regress",
                  generator: torch.Generator | None = None) -> RegressionFit:
    """Train ``model`` with Adam to map ``inputs`` to ``targets`` (same leading dimension) by MSE,
    stopping early on a held-out ``validation`` fraction (``min_delta``: the least improvement of
    the validation MSE that counts). ``max_epochs``, ``patience`` and ``batch_size`` default to the
    context's profile."""
    max_epochs = _positive_int("max_epochs", ctx.profile.max_epochs if max_epochs is None else max_epochs)
    patience = _positive_int("patience", ctx.profile.patience if patience is None else patience)
    batch_size = _positive_int("batch_size", ctx.profile.batch_size if batch_size is None else batch_size)
    if not isinstance(validation, Real) or isinstance(validation, bool) or not 0.0 < validation < 1.0:
        raise ValueError(f"validation must be a fraction in (0, 1), got {validation!r}")
    if not isinstance(lr, Real) or isinstance(lr, bool) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} inputs for {len(targets)} targets")
    n = len(inputs)
    n_val = max(1, int(round(n * float(validation))))
    if n - n_val < 1:
        raise ValueError(f"cannot hold out a validation part of {n} items")
    generator = generator if generator is not None else ctx.generator()
    order = torch.randperm(n, generator=generator)
    val_index, train_index = order[:n_val], order[n_val:]
    calibration = inputs[train_index[:512]]

    model.to(ctx.device)
    if inputs.dim() == 4:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(lr))
    history: list[dict[str, float]] = []
    best_mse, best_epoch, since_best, stopped_early = math.inf, 0, 0, False
    best_state: dict[str, torch.Tensor] | None = None
    epoch_loss, epoch_items, current = 0.0, 0, 0

    def close_epoch(epoch: int) -> bool:
        nonlocal best_mse, best_epoch, since_best, best_state
        recalibrate_batchnorm(model, calibration, ctx, batch_size=batch_size)
        val_mse = _mse(model, inputs, targets, val_index, ctx, 4 * batch_size)
        model.train()
        history.append({"epoch": float(epoch), "loss": epoch_loss / max(1, epoch_items), "val_mse": val_mse})
        if val_mse < best_mse - min_delta:
            best_mse, best_epoch, since_best = val_mse, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        since_best += 1
        return since_best >= patience

    model.train()
    for epoch, index in iterate_minibatches(len(train_index), batch_size, ctx, max_epochs, desc,
                                            generator=generator):
        if epoch != current:
            if close_epoch(current):
                stopped_early = True
                break
            current, epoch_loss, epoch_items = epoch, 0.0, 0
        positions = train_index[index]
        batch = to_device(inputs[positions], ctx)
        goal = to_device(targets[positions], ctx)
        loss = F.mse_loss(model(batch), goal)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        epoch_loss += float(loss.detach()) * len(index)
        epoch_items += len(index)
    else:
        close_epoch(current)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return RegressionFit(model=model, history=history, epochs=len(history), best_epoch=best_epoch,
                         stopped_early=stopped_early, val_mse=best_mse)
