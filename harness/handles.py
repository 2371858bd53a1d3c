"""The forms of white-box handles that attacks written by strangers can rely on.

A sanitizer's ``handles()`` may return any object per capability, and an attack that knows the
sanitizer may use it as it is. Attacks meant for every sanitizer need a common form; these are
the ones ppbench defines (duck-typed: an object has the form when it has these members, checked
with ``isinstance`` on the runtime-checkable protocols). An attack handed a handle of another form
raises :class:`~ppbench.api.NotApplicable`, and its cell is ``n/a``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from .api import Context


@runtime_checkable
class RealnessScorer(Protocol):
    """A ``discriminator`` handle that scores how real images look: ``realness(images, ctx)``
    returns one float per image (N,), higher meaning "judged real" (a GAN discriminator's logit).
    White-box membership attacks (LOGAN) read it: a discriminator that over-fitted its training
    set scores its members higher."""

    def realness(self, images: "torch.Tensor", ctx: "Context") -> "torch.Tensor": ...


@runtime_checkable
class LatentGenerator(Protocol):
    """A ``generator`` handle that synthesises images from latent codes: ``latent_dim`` is the
    code's size, ``sample_latent(n, generator)`` draws n codes from the generator's prior (a
    ``torch.Generator`` on the CPU), and ``generate(latents, ctx)`` renders them (N×C×H×W in
    [0, 1], on the CPU). Latent-recovery attacks read it."""

    latent_dim: int

    def sample_latent(self, n: int, generator: "torch.Generator") -> "torch.Tensor": ...

    def generate(self, latents: "torch.Tensor", ctx: "Context") -> "torch.Tensor": ...
