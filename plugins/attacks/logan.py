"""LOGAN (Hayes et al., PETS 2019): membership inference from a GAN's discriminator.

A discriminator that over-fitted its training set judges the images it was trained on more real
than others of the same distribution. Both attacks score every candidate by a discriminator's
logit; the harness calls the highest-scoring half members (Webster et al.'s Algorithm 1).

- ``logan-whitebox`` (requires ``discriminator``): the target's own discriminator, through the
  :class:`~ppbench.handles.RealnessScorer` form of the handle; a handle of another form (a
  sanitizer's attribute discriminator) makes the cell ``n/a``.
- ``logan-blackbox`` (requires ``release``): only the released images. It trains a local GAN of
  the zoo's DCGAN pair on them (:func:`ppbench.nn.gan.train_gan`; its parameters: ``loss``, and
  ``steps`` mini-batches, 1,500 on the quick profile, or ``epochs`` passes over the release) and
  scores with the local discriminator: members shaped the release, so the local discriminator,
  which learned what the release looks like, may find them more real.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

from ppbench import DISCRIMINATOR, RELEASE, Attack, Context, Task, hookimpl
from ppbench.api import NotApplicable, PluginContractError
from ppbench.handles import RealnessScorer
from ppbench.membership import MembershipResult, MembershipView

# Mini-batches of training per profile for the black-box attacker's local GAN (as surrogate-gan:
# a step budget, whatever the release's size).
BLACKBOX_STEPS = {"quick": 1500, "standard": 10000, "paper": 30000}


class LoganWhitebox(Attack):
    """LOGAN, white-box: the target discriminator's logit is the membership score."""

    name = "logan-whitebox"
    version = "1"
    kind = "membership"
    threat_model = "membership"
    description = ("LOGAN white-box membership inference: the target GAN's discriminator scores "
                   "each candidate; members look more real to an over-fitted discriminator.")
    requires = frozenset({DISCRIMINATOR})

    def run(self, view: MembershipView, task: Task, ctx: Context) -> MembershipResult:
        handle = view.handles[DISCRIMINATOR]
        if not isinstance(handle, RealnessScorer):
            raise NotApplicable(f"the discriminator handle ({type(handle).__name__}) has no "
                                "realness(images, ctx): it does not score how real an image is")
        scores = handle.realness(view.candidates, ctx)
        return MembershipResult(scores.detach().cpu().double().reshape(-1))


class LoganBlackbox(Attack):
    """LOGAN, black-box: a local GAN trained on the released images; its discriminator scores."""

    name = "logan-blackbox"
    version = "1"
    kind = "membership"
    threat_model = "membership"
    description = ("LOGAN black-box membership inference: a local GAN trained on the released "
                   "images; its discriminator scores each candidate.")
    requires = frozenset({RELEASE})

    def __init__(self, loss: str = "dcgan", steps: int | None = None, epochs: int | None = None,
                 width: int = 32, latent_dim: int = 32) -> None:
        from ppbench.nn.gan import GAN_LOSSES

        self.loss = loss
        self.steps = steps
        self.epochs = epochs
        self.width = width
        self.latent_dim = latent_dim
        if loss not in GAN_LOSSES:
            raise PluginContractError(f"{self.name}: loss must be one of {GAN_LOSSES}, got {loss!r}")
        for field, value in (("steps", steps), ("epochs", epochs), ("width", width),
                             ("latent_dim", latent_dim)):
            if value is None and field in ("steps", "epochs"):
                continue
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise PluginContractError(f"{self.name}: {field} must be a positive integer, got {value!r}")

    def run(self, view: MembershipView, task: Task, ctx: Context) -> MembershipResult:
        from ppbench.nn.gan import DCGANDiscriminator, DCGANGenerator, realness, train_gan

        released = view.release.images
        steps = self.steps or BLACKBOX_STEPS.get(ctx.profile.name, 100 * ctx.profile.fit_epochs)
        epochs = self.epochs or max(1, math.ceil(steps * ctx.profile.batch_size / max(1, len(released))))
        ctx.seed_everything()
        generator = DCGANGenerator(released.shape[1:], self.latent_dim, self.width)
        discriminator = DCGANDiscriminator(released.shape[1:], self.width)
        history = train_gan(generator, discriminator, released, ctx, loss=self.loss, epochs=epochs,
                            desc=f"{self.name} local GAN")
        scores = realness(discriminator, view.candidates, ctx)
        return MembershipResult(scores.double(), diagnostics={
            "epochs": float(epochs), "final_discriminator_loss": history[-1]["discriminator"]},
            budget={"shadow_models": 1.0, "epochs": float(epochs), "training_items": float(len(released))})


@hookimpl
def ppbench_register_attacks(register: Any) -> None:
    register(LoganWhitebox)
    register(LoganBlackbox)
