"""A small DCGAN-style generator and discriminator, and the one training loop of unconditional
GANs (the surrogate-data sanitizer and the black-box LOGAN attacker's local GAN both use it).

Both networks size themselves from the image shape like the zoo's variational pair
(:mod:`~ppbench.nn.generative`): the generator projects a latent code to a 4×4 map and doubles
it to the image size, the discriminator halves the image down to 4×4 with stride-2 convolutions
and LeakyReLU (no BatchNorm: a discriminator's score of one image must not depend on the others
in its batch, or a membership score would). ``loss`` picks the objective: ``dcgan`` (binary
cross-entropy, the non-saturating generator loss) or ``lsgan`` (least squares, Mao et al.).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Context
from .adversarial import Player, adam, train_adversarial
from .generative import ConditionalDecoder, _levels

GAN_LOSSES = ("dcgan", "lsgan")


class DCGANGenerator(nn.Module):
    """``forward(latents) -> images`` in (0, 1), latents N×``latent_dim`` drawn from N(0, I)."""

    def __init__(self, shape: Sequence[int], latent_dim: int = 32, width: int = 32) -> None:
        super().__init__()
        # The zoo's decoder with a single, constant condition is an unconditional generator.
        self.decoder = ConditionalDecoder(shape, 1, code_dim=latent_dim, width=width)
        self.latent_dim = latent_dim

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        condition = torch.zeros(len(latents), dtype=torch.long, device=latents.device)
        return self.decoder(latents, condition)


class DCGANDiscriminator(nn.Module):
    """``forward(images) -> logits`` (N,): how real each image looks."""

    def __init__(self, shape: Sequence[int], width: int = 32) -> None:
        super().__init__()
        channels, height, width_px = (int(s) for s in shape)
        levels = _levels(min(height, width_px))
        layers: list[nn.Module] = []
        previous = channels
        for level in range(levels):
            out = width * 2 ** level
            layers += [nn.Conv2d(previous, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            previous = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(previous * (height >> levels) * (width_px >> levels), 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images).flatten(1)).squeeze(1)


def _real_loss(logits: torch.Tensor, loss: str, target: float) -> torch.Tensor:
    if loss == "lsgan":
        return 0.5 * (logits - target).pow(2).mean()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def train_gan(generator: DCGANGenerator, discriminator: DCGANDiscriminator, images: torch.Tensor,
              ctx: Context, *, loss: str = "dcgan", epochs: int, batch_size: int | None = None,
              lr: float = 2e-4, discriminator_lr: float | None = None, desc: str = "GAN fit",
              ) -> list[dict[str, float]]:
    """Alternate one discriminator and one generator step per mini-batch of ``images`` for
    ``epochs`` passes (Adam, β₁ = 0.5; lr 2e-4: Radford et al.'s settings). ``discriminator_lr``
    (default ``lr``) sets the discriminator's own rate, as in two-time-scale training (Heusel et
    al.). Returns each epoch's mean losses. Both networks are left in eval mode."""
    if loss not in GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {loss!r}; choose one of {GAN_LOSSES}")
    latent_dim = generator.latent_dim

    def fake(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        latents = torch.randn(len(batch["x"]), latent_dim, device=batch["x"].device)
        return generator(latents)

    def discriminator_loss(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return (_real_loss(discriminator(batch["x"]), loss, 1.0)
                + _real_loss(discriminator(fake(batch).detach()), loss, 0.0))

    def generator_loss(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return _real_loss(discriminator(fake(batch)), loss, 1.0)

    players = [Player("discriminator", [discriminator],
                      adam([discriminator], discriminator_lr or lr, (0.5, 0.999)), discriminator_loss),
               Player("generator", [generator], adam([generator], lr, (0.5, 0.999)), generator_loss)]
    return train_adversarial(players, {"x": images}, ctx, epochs=epochs,
                             batch_size=batch_size or ctx.profile.batch_size, desc=desc)


@torch.no_grad()
def generate(generator: nn.Module, latents: torch.Tensor, ctx: Context,
             batch_size: int = 512) -> torch.Tensor:
    """``generator(latents)`` in eval mode, batch by batch, on the CPU."""
    generator.to(ctx.device).eval()
    return torch.cat([generator(latents[i:i + batch_size].to(ctx.device)).cpu()
                      for i in range(0, len(latents), batch_size)]) if len(latents) else latents


@torch.no_grad()
def realness(discriminator: nn.Module, images: torch.Tensor, ctx: Context,
             batch_size: int = 512) -> torch.Tensor:
    """The discriminator's logit per image (N,), in eval mode, on the CPU."""
    discriminator.to(ctx.device).eval()
    return torch.cat([discriminator(images[i:i + batch_size].to(ctx.device)).float().cpu()
                      for i in range(0, len(images), batch_size)])
