"""surrogate-gan: Webster et al.'s private data surrogates (ICPR 2020), a release-mode sanitizer.

Instead of transforming images, it trains a GAN G on the private fit split and a labeller C on the
same split, and **releases** D' = {(G(z), C(G(z)))}: synthetic faces labelled with every attribute
of the task (:mod:`ppbench.release`). Its utility is how well a classifier trained on D' does on
real people (the ``surrogate-utility`` metric); its privacy is whether anyone can tell who was in
the fit split (the membership attacks).

- ``arch``: ``dcgan`` (binary cross-entropy) or ``lsgan`` (least squares); the networks are the
  zoo's small DCGAN-style pair (:mod:`ppbench.nn.gan`), the same for both, so that the loss is the
  only difference, as in the paper's DCGAN/LSGAN comparison.
- C is one reference classifier per attribute (:func:`ppbench.nn.reference_classifier`): trained
  on the fit split to convergence, and the very model the utility metric compares C' with.
- ``steps``: the training budget in mini-batches (one discriminator and one generator step each),
  by default 3,000 batches of 64 on the quick profile: 384 epochs of a 500-image fit split, 96 of
  a 2,000-image one. The budget, not the number of passes, is held fixed, as when a GAN is trained
  for a set number of iterations whatever its data: a fit split four times smaller is seen four
  times as often, and its discriminator, with four times fewer images to remember, over-fits them.
  That over-fit is what makes a small fit set leak membership (Webster et al.: 99.4% with 5k
  images, 62.9% with 26k). ``epochs`` instead fixes the number of passes.
- ``discriminator_lr`` (by default 1e-3 for ``dcgan``, 5e-4 for ``lsgan``, against the
  generator's 2e-4) and ``discriminator_width`` (64, twice the generator's): a discriminator that
  learns faster than its generator memorises the fit split within the quick profile's budget.
  Measured on synthfaces (quick profile, white-box LOGAN Algorithm-1 accuracy, one CPU thread,
  about 3 minutes per fit of 3,000 batches; seed 0 unless stated):

  ======  =========  =======  ===================  ========================
  arch    n_train    batches  D lr, width          accuracy (AUC)
  ======  =========  =======  ===================  ========================
  lsgan   500        600      1e-3, 64             0.58 (0.63)
  lsgan   500        1,500    1e-3, 64             0.74 (0.81)
  lsgan   500        3,000    1e-3, 64             0.56 (0.58), collapsed
  lsgan   500        3,000    2e-4, 64             0.71 (0.79)
  lsgan   500        3,000    2e-4, 128            0.83 (0.88), twice the time
  lsgan   500        3,000    5e-4, 64             0.84 (0.90); seed 1: 0.80 (0.87)
  lsgan   2,000      3,000    5e-4, 64             0.56 (0.59)
  dcgan   500        3,000    1e-3, 64             0.80 (0.85)
  dcgan   500        6,000    1e-3, 64             0.88 (0.91), twice the time
  dcgan   2,000      3,000    1e-3, 64             0.56 (0.58)
  ======  =========  =======  ===================  ========================

  At 1e-3 the least-squares game collapses onto a few faces (its discriminator then remembers
  nothing); at 5e-4 it over-fits a small fit split steadily, like the DCGAN loss at 1e-3.
- Handles: ``discriminator`` (a :class:`~ppbench.handles.RealnessScorer`) and ``generator`` (a
  :class:`~ppbench.handles.LatentGenerator`), for white-box attacks.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from ppbench import DISCRIMINATOR, GENERATOR, IMAGE, RELEASE, Context, ImageSet, Sanitizer, Task, hookimpl
from ppbench.api import PluginContractError

NAME = "surrogate-gan"
ARCHS = ("dcgan", "lsgan")
# Mini-batches of training per profile: enough on the quick profile for the discriminator to
# over-fit a 500-image fit split (see the module doc).
DEFAULT_STEPS = {"quick": 3000, "standard": 20000, "paper": 60000}
# The discriminator's learning rate per loss (the generator's is 2e-4): the least-squares game
# collapses at 1e-3 (see the module doc's table).
DEFAULT_DISCRIMINATOR_LR = {"dcgan": 1e-3, "lsgan": 5e-4}
_RELEASE_STREAM = 4099


class GANDiscriminator:
    """The ``discriminator`` handle: ``realness(images, ctx)``, the discriminator's logit."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def realness(self, images: "Any", ctx: Context) -> "Any":
        from ppbench.nn.gan import realness

        return realness(self.module, images, ctx)


class GANGenerator:
    """The ``generator`` handle: latent codes from N(0, I), rendered by G."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.latent_dim = int(module.latent_dim)

    def sample_latent(self, n: int, generator: "Any") -> "Any":
        import torch

        return torch.randn(int(n), self.latent_dim, generator=generator)

    def generate(self, latents: "Any", ctx: Context) -> "Any":
        from ppbench.nn.gan import generate

        return generate(self.module, latents, ctx)


class SurrogateGAN(Sanitizer):
    """Webster et al.'s private data surrogates: a GAN and a labeller trained on the fit split
    release D' = {(G(z), C(G(z)))} instead of transformed images."""

    name = NAME
    version = "2"
    description = ("Private data surrogates (Webster et al.): a DCGAN or LSGAN and a labeller "
                   "trained on the fit split release a labelled synthetic data set.")
    capabilities = frozenset({RELEASE, GENERATOR, DISCRIMINATOR})
    inputs = frozenset({IMAGE})

    def __init__(self, arch: str = "lsgan", n_release: int | None = None, steps: int | None = None,
                 epochs: int | None = None, latent_dim: int = 32, width: int = 32,
                 discriminator_width: int = 64, discriminator_lr: float | None = None) -> None:
        self.arch = arch
        self.n_release = n_release
        self.steps = steps
        self.epochs = epochs
        self.latent_dim = latent_dim
        self.width = width
        self.discriminator_width = discriminator_width
        self.discriminator_lr = discriminator_lr
        if arch not in ARCHS:
            raise PluginContractError(f"{NAME}: arch must be one of {ARCHS}, got {arch!r}")
        for field, value, optional in (("n_release", n_release, True), ("steps", steps, True),
                                       ("epochs", epochs, True), ("latent_dim", latent_dim, False),
                                       ("width", width, False),
                                       ("discriminator_width", discriminator_width, False)):
            if value is None and optional:
                continue
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise PluginContractError(f"{NAME}: {field} must be a positive integer, got {value!r}")
        if discriminator_lr is not None and (isinstance(discriminator_lr, bool)
                                             or not isinstance(discriminator_lr, Real)
                                             or not 0 < discriminator_lr < 1):
            raise PluginContractError(f"{NAME}: discriminator_lr must be a number in (0, 1), got {discriminator_lr!r}")

    def fit_epochs(self, n_fit: int, ctx: Context) -> int:
        """Passes over a fit split of ``n_fit`` items: ``epochs`` when set, else the step budget."""
        if self.epochs is not None:
            return int(self.epochs)
        steps = self.steps or DEFAULT_STEPS.get(ctx.profile.name, 100 * ctx.profile.fit_epochs)
        return max(1, math.ceil(steps * ctx.profile.batch_size / max(1, n_fit)))

    def fit(self, train: ImageSet, task: Task, ctx: Context) -> "SurrogateGAN":
        from ppbench.nn import reference_classifiers
        from ppbench.nn.gan import DCGANDiscriminator, DCGANGenerator, train_gan

        ctx.seed_everything()
        generator = DCGANGenerator(train.shape, self.latent_dim, self.width)
        discriminator = DCGANDiscriminator(train.shape, self.discriminator_width)
        self.fit_passes = self.fit_epochs(len(train), ctx)
        self.history = train_gan(generator, discriminator, train.images, ctx, loss=self.arch,
                                 epochs=self.fit_passes,
                                 discriminator_lr=self.discriminator_lr or DEFAULT_DISCRIMINATOR_LR[self.arch],
                                 desc=f"{NAME} ({self.arch}) fit")
        self.generator, self.discriminator = generator.cpu(), discriminator.cpu()
        self.attributes = (task.sensitive, *task.utility)
        # C: trained on the fit split, per attribute; shared with the surrogate-utility metric.
        self.labeller = reference_classifiers(train, self.attributes, ctx)
        return self

    def release(self, n: int, ctx: Context) -> ImageSet:
        from ppbench.nn import predict_logits
        from ppbench.nn.gan import generate

        size = int(self.n_release or n)
        handle = GANGenerator(self.generator)
        images = generate(self.generator, handle.sample_latent(size, ctx.generator(_RELEASE_STREAM)), ctx)
        labels = {name: predict_logits(model, images, ctx).argmax(dim=1)
                  for name, model in self.labeller.items()}
        return ImageSet(images, labels)

    def handles(self) -> dict[str, Any]:
        return {DISCRIMINATOR: GANDiscriminator(self.discriminator),
                GENERATOR: GANGenerator(self.generator)}


@hookimpl
def ppbench_register_sanitizers(register) -> None:
    register(SurrogateGAN)
