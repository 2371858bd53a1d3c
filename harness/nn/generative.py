"""Encoder and decoder of variational generative sanitizers (PPRL-VGAN and its kin).

:class:`VariationalEncoder` maps an image to the mean and log-variance of a Gaussian code;
:class:`ConditionalDecoder` renders an image from a code and a one-hot condition (the identity
to show). Both are DCGAN-shaped (stride-2 convolutions down, nearest-neighbour upsampling and
3×3 convolutions up) and size themselves from the image shape, so the same classes serve 16×16
on the CPU and 64×64 at the papers' scale. Discriminators are the zoo's classifiers with several
heads (:func:`~ppbench.nn.build_classifier` with a dict of head sizes).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .networks import conv_bn_relu


def _levels(size: int, smallest: int = 4) -> int:
    """How many halvings take ``size`` down to ``smallest`` (at least one)."""
    levels = 0
    while size // 2 >= smallest and size % 2 == 0:
        size //= 2
        levels += 1
    return max(1, levels)


class VariationalEncoder(nn.Module):
    """``forward(x) -> (mean, log_variance)``, each N×``code_dim``: stride-2 conv blocks that
    halve the image down to 4×4, doubling the channels from ``width``, then two linear heads."""

    def __init__(self, shape: Sequence[int], code_dim: int = 64, width: int = 32) -> None:
        super().__init__()
        channels, height, width_px = (int(s) for s in shape)
        levels = _levels(min(height, width_px))
        layers: list[nn.Module] = []
        previous = channels
        for level in range(levels):
            out = width * 2 ** level
            layers += [nn.Conv2d(previous, out, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            previous = out
        self.body = nn.Sequential(*layers)
        features = previous * (height >> levels) * (width_px >> levels)
        self.mean = nn.Linear(features, code_dim)
        self.log_variance = nn.Linear(features, code_dim)
        self.code_dim = code_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x).flatten(1)
        # Clamped so that an early, wild step cannot overflow exp() in the reparameterisation.
        return self.mean(features), self.log_variance(features).clamp(-10.0, 10.0)


def reparameterize(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """A draw z = mean + σ·ε (the VAE's reparameterisation trick)."""
    return mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)


def kl_to_standard_normal(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, σ²) ‖ N(0, I)), summed over the code and averaged over the batch."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1.0 - log_variance).sum(dim=1).mean()


class ConditionalDecoder(nn.Module):
    """``forward(code, condition) -> images`` in (0, 1): [code, one-hot condition] is projected
    to a 4×4 map of ``width·2^(levels-1)`` channels, then each level doubles the size (nearest
    neighbour) and applies a 3×3 conv block, halving the channels, down to ``width``; a 3×3 conv
    and a sigmoid give the image."""

    def __init__(self, shape: Sequence[int], num_conditions: int, code_dim: int = 64,
                 width: int = 32) -> None:
        super().__init__()
        channels, height, width_px = (int(s) for s in shape)
        levels = _levels(min(height, width_px))
        self.num_conditions = num_conditions
        self.start = (height >> levels, width_px >> levels)
        self.start_channels = width * 2 ** (levels - 1)
        self.project = nn.Sequential(
            nn.Linear(code_dim + num_conditions, self.start_channels * self.start[0] * self.start[1]),
            nn.BatchNorm1d(self.start_channels * self.start[0] * self.start[1]), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        previous = self.start_channels
        for level in reversed(range(levels)):
            out = width * 2 ** max(0, level - 1)
            blocks.append(conv_bn_relu(previous, out))
            previous = out
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv2d(previous, channels, 3, padding=1)
        self.size = (height, width_px)

    def forward(self, code: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(condition, self.num_conditions).to(code.dtype)
        out = self.project(torch.cat([code, one_hot], dim=1))
        out = out.view(-1, self.start_channels, *self.start)
        for block in self.blocks:
            out = block(F.interpolate(out, scale_factor=2, mode="nearest"))
        if tuple(out.shape[-2:]) != self.size:
            out = F.interpolate(out, size=self.size, mode="nearest")
        return torch.sigmoid(self.out(out))


def between_class_variance_ratio(codes: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The share of the codes' variance that the class explains: Σ_k n_k‖μ_k − μ‖² / Σ‖z − μ‖².

    0 when every class has the same mean code (nothing linear tells the classes apart), 1 when the
    code is the class. A penalty on it removes the class from a code's first moments, which a
    co-adapting adversary cannot promise: the encoder can fool the adversary of the moment while
    a fresh one still reads the class.
    """
    centred = codes - codes.mean(dim=0, keepdim=True)
    one_hot = torch.nn.functional.one_hot(labels, num_classes).to(codes.dtype)  # N×K
    counts = one_hot.sum(dim=0).clamp(min=1.0)
    class_means = (one_hot.T @ centred) / counts.unsqueeze(1)  # K×D
    between = (counts.unsqueeze(1) * class_means.pow(2)).sum()
    return between / centred.pow(2).sum().clamp(min=1e-8)
