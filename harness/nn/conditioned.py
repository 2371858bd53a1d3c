"""Networks conditioned on noise and a label: the filters and generators of learned sanitizers.

:class:`ConditionedNet` is Martinsson et al.'s f(x, z) and g(x, z, s'): for images a
:class:`~ppbench.nn.UNet` whose bottleneck receives the noise, projected to one channel, and (for a
generator) the label's embedding, projected to another; for vectors an MLP over the
concatenated input, noise and embedding.

Vector outputs are the MLP's own, not ``x + MLP(...)``: measured on gaussians2d (2-D, eps 2, three
seeds, a fresh gradient-boosted adversary), a residual generator passed its input through and
kept the secret (adversary balanced accuracy .53-.59 with filter + generator, .57-.63 with the
filter alone), while plain MLPs reached .49-.51 and .51-.53. The distortion penalty pulls a plain
network inside its budget within the first few hundred steps.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .networks import MLP, UNet


class ConditionedNet(nn.Module):
    """``forward(x, z, label=None)``: ``x`` N×C×H×W images or N×D vectors, ``z`` N×``noise_dim``
    noise, ``label`` N class indices when ``num_labels`` > 0 (a generator), else ``None``.

    Vector outputs are an MLP's (the paper's networks for its 2-D problem); image outputs are the
    UNet's sigmoid, in (0, 1)."""

    def __init__(self, shape: Sequence[int], num_labels: int = 0, width: int = 16, depth: int = 3,
                 noise_dim: int = 32, embed_dim: int = 16) -> None:
        super().__init__()
        shape = tuple(int(s) for s in shape)
        self.is_image = len(shape) == 3
        self.noise_dim = noise_dim
        self.embed = nn.Embedding(num_labels, embed_dim) if num_labels else None
        if self.is_image:
            channels, height, width_px = shape
            self.body = UNet(channels, channels, base=width, depth=depth,
                             extra_bottleneck_channels=1 + bool(num_labels))
            self.grid = self.body.bottleneck_size(height, width_px)
            cells = self.grid[0] * self.grid[1]
            self.noise_map = nn.Linear(noise_dim, cells)
            self.label_map = nn.Linear(embed_dim, cells) if num_labels else None
        else:
            features = shape[0]
            inputs = features + noise_dim + (embed_dim if num_labels else 0)
            self.body = MLP(inputs, features, hidden=(width, width, width))

    def forward(self, x: torch.Tensor, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if (label is None) != (self.embed is None):
            raise ValueError("ConditionedNet: pass a label exactly when built with num_labels > 0")
        if self.is_image:
            maps = [self.noise_map(z).view(-1, 1, *self.grid)]
            if self.embed is not None:
                maps.append(self.label_map(self.embed(label)).view(-1, 1, *self.grid))
            return self.body(x, torch.cat(maps, dim=1))
        parts = [x, z] + ([self.embed(label)] if self.embed is not None else [])
        return self.body(torch.cat(parts, dim=1))


def unet_depth(shape: Sequence[int], smallest: int = 4, most: int = 4) -> int:
    """UNet levels that leave a bottleneck of at least ``smallest``×``smallest`` (1 for vectors)."""
    if len(shape) != 3:
        return 1
    size, depth = min(int(s) for s in shape[1:]), 0
    while size // 2 >= smallest and depth < most:
        size //= 2
        depth += 1
    return max(1, depth)
