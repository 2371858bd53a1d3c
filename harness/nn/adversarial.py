"""The training loop of adversarial games: several networks, each with its own optimiser and loss,
taking turns on every mini-batch (a filter against its secret discriminator, a generator against
its real/fake discriminator, ...).

The loop owns what every such game needs and nothing a method decides: data resident on
``ctx.device`` for the whole fit, reproducible shuffling, one progress bar, deadline checks, and
per-epoch mean losses for diagnostics. Each :class:`Player`'s ``loss`` computes its own forward
passes from the batch, so a method states its losses (and what it detaches) in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from ..api import Context
from .training import iterate_minibatches

Batch = Mapping[str, torch.Tensor]


@dataclass
class Player:
    """One side of the game: the ``modules`` its ``optimizer`` steps, and the ``loss`` it
    minimises on a batch (a dict of tensors on ``ctx.device``, e.g. ``{"x": ..., "s": ...}``)."""

    name: str
    modules: Sequence[nn.Module]
    optimizer: torch.optim.Optimizer
    loss: Callable[[Batch], torch.Tensor]


def adam(modules: Sequence[nn.Module], lr: float = 5e-4, betas: tuple[float, float] = (0.9, 0.999)
         ) -> torch.optim.Adam:
    """Adam over the parameters of ``modules`` (Martinsson et al.'s settings by default)."""
    return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=lr, betas=betas)


def train_adversarial(players: Sequence[Player], data: Mapping[str, torch.Tensor], ctx: Context, *,
                      epochs: int, batch_size: int, desc: str = "adversarial fit",
                      ) -> list[dict[str, float]]:
    """Alternating gradient steps: on every mini-batch each player, in the order given, takes one
    step on its loss (a player listed k times takes k steps). Returns each epoch's mean loss per
    player and step.

    ``data``: tensors with one row per item (moved to ``ctx.device`` once). Gradients a loss leaves
    on another player's parameters are cleared before that player's own step, so no player is
    moved by an opponent's objective.
    """
    if not players:
        raise ValueError("train_adversarial needs at least one player")
    sizes = {len(values) for values in data.values()}
    if len(sizes) != 1:
        raise ValueError(f"train_adversarial: data tensors differ in length: {sorted(sizes)}")
    resident = {name: values.to(ctx.device) for name, values in data.items()}
    # A player may appear several times (e.g. k discriminator steps per generator step).
    every_module = list({id(m): m for player in players for m in player.modules}.values())
    steps = {name: sum(p.name == name for p in players) for name in {p.name for p in players}}
    for module in every_module:
        module.to(ctx.device).train()
    history: list[dict[str, float]] = []
    totals = {player.name: 0.0 for player in players}
    count = 0
    current = 0
    for epoch, index in iterate_minibatches(sizes.pop(), batch_size, ctx, epochs, desc):
        if epoch != current:
            history.append({name: total / max(1, count * steps[name]) for name, total in totals.items()})
            totals, count, current = {player.name: 0.0 for player in players}, 0, epoch
        index = index.to(ctx.device)
        batch = {name: values[index] for name, values in resident.items()}
        for player in players:
            for module in every_module:
                module.zero_grad(set_to_none=True)
            loss = player.loss(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: the {player.name} loss became {float(loss)}")
            loss.backward()
            player.optimizer.step()
            totals[player.name] += float(loss.detach())
        count += 1
    if count:
        history.append({name: total / (count * steps[name]) for name, total in totals.items()})
    for module in every_module:
        module.eval()
    return history


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the softmax distributions in ``logits`` (N×K)."""
    log_p = torch.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def budget_penalty(distortion: torch.Tensor, eps: float, lam: float) -> torch.Tensor:
    """Martinsson et al.'s distortion constraint as a penalty: λ·max(0, distortion − ε)²."""
    return lam * torch.clamp(distortion - eps, min=0.0) ** 2
