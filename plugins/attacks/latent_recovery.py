"""latent-recovery: membership inference by how well the target generator can reproduce a face.

Webster et al.'s recovery attack. A generator that over-fitted its training set reproduces its
members more closely than other faces. The attacker trains an encoder E **only on generated
samples**: pairs (G(z), z) with z drawn from the generator's prior, so E learns to invert G. A
candidate x is then scored by minus its reconstruction loss, −‖φ(G(E(x))) − φ(x)‖², where φ is

- ``phi="pixels"``: the identity (the loss is the pixel MSE);
- ``phi="features"``: a feature network trained on public aux data (the penultimate features of a
  multi-head classifier of the task's attributes), which compares faces by what they show rather
  than pixel by pixel. The attack then requires ``aux`` as well.

It needs the :class:`~ppbench.handles.LatentGenerator` form of the ``generator`` handle; a
generator that renders from images (a transform's) makes the cell ``n/a``. The paper found these
attacks near chance (50-58%) where the discriminator attack was not.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

from ppbench import AUX, GENERATOR, Attack, Context, Task, hookimpl
from ppbench.api import NotApplicable, PluginContractError
from ppbench.handles import LatentGenerator
from ppbench.membership import MembershipResult, MembershipView

PHIS = ("pixels", "features")
_LATENT_STREAM = 6007


class LatentRecovery(Attack):
    """An encoder trained on generated samples inverts the generator; membership score = minus the
    reconstruction loss of each candidate (pixels, or aux-trained features)."""

    name = "latent-recovery"
    version = "1"
    kind = "membership"
    threat_model = "membership"
    description = ("Latent recovery (Webster et al.): an encoder trained on generated samples "
                   "inverts G; candidates the generator reproduces closely are called members.")

    def __init__(self, phi: str = "pixels", n_samples: int | None = None, width: int = 32) -> None:
        self.phi = phi
        self.n_samples = n_samples
        self.width = width
        if phi not in PHIS:
            raise PluginContractError(f"{self.name}: phi must be one of {PHIS}, got {phi!r}")
        for field, value in (("n_samples", n_samples), ("width", width)):
            if value is None and field == "n_samples":
                continue
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 2:
                raise PluginContractError(f"{self.name}: {field} must be an integer ≥ 2, got {value!r}")
        self.requires = frozenset({GENERATOR, AUX}) if phi == "features" else frozenset({GENERATOR})

    def _feature_map(self, view: MembershipView, task: Task, ctx: Context) -> Any:
        """φ: identity on pixels, or the penultimate features of a classifier trained on aux."""
        import torch

        if self.phi == "pixels":
            return lambda images: images.flatten(1)
        from ppbench.nn import MultiHead, build_classifier, fit_classifier

        aux = view.aux
        attributes = [a for a in (task.sensitive, *task.utility) if a in aux.labels]
        model = build_classifier("cnn", aux.shape, {a: aux.num_classes(a) for a in attributes},
                                 width=self.width, seed=ctx.seed)
        fit_classifier(model, aux.images, {a: aux.labels[a] for a in attributes}, ctx,
                       desc=f"{self.name} feature network")
        model.eval().to(ctx.device)
        trunk = model.trunk if isinstance(model, MultiHead) else model

        @torch.no_grad()
        def features(images: "torch.Tensor") -> "torch.Tensor":
            return torch.cat([trunk.features(images[i:i + 512].to(ctx.device)).cpu()
                              for i in range(0, len(images), 512)])
        return features

    def run(self, view: MembershipView, task: Task, ctx: Context) -> MembershipResult:
        from ppbench.nn import build_classifier, fit_regressor, predict_logits

        generator = view.handles[GENERATOR]
        if not isinstance(generator, LatentGenerator):
            raise NotApplicable(f"the generator handle ({type(generator).__name__}) does not render "
                                "from latent codes (no latent_dim, sample_latent, generate)")
        n = int(self.n_samples or 4 * ctx.profile.n_train)
        latents = generator.sample_latent(n, ctx.generator(_LATENT_STREAM)).float()
        samples = generator.generate(latents, ctx).float()
        encoder = build_classifier("cnn", samples.shape[1:], generator.latent_dim,
                                   width=self.width, seed=ctx.seed)
        fit = fit_regressor(encoder, samples, latents, ctx, desc=f"{self.name} encoder")
        recovered = predict_logits(fit.model, view.candidates, ctx)
        rebuilt = generator.generate(recovered, ctx).float()
        phi = self._feature_map(view, task, ctx)
        loss = (phi(rebuilt) - phi(view.candidates)).pow(2).mean(dim=1)
        return MembershipResult(-loss.double(), diagnostics={
            "encoder_val_mse": float(fit.val_mse), "median_loss": float(loss.median())},
            budget={"epochs": float(fit.epochs), "training_items": float(len(samples))})


@hookimpl
def ppbench_register_attacks(register: Any) -> None:
    register(LatentRecovery)
