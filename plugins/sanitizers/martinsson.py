"""Martinsson et al.'s synthetic replacement (2020) and its baselines, as learned sanitizers.

- ``filter-generator``: a filter f(x, z1) removes the sensitive attribute s, then a generator
  g(f(x), s', z2) renders a fresh value s' drawn uniformly over the classes.
- ``gap-filter``: the filter alone (GAP, Huang et al.; the paper's baseline).
- ``generator-only``: g(x, s', z2) applied to the raw input.

Both networks are UNets for images (``ppbench.nn.UNet``: the noise is projected to one bottleneck
channel, and for the generator s' is embedded and projected to another) and MLPs for vector data.
The secret discriminator h_f learns s from the detached f(x); the real/fake discriminator h_g has
K+1 outputs (real → s, generated → the extra "fake" class). Losses, as in the paper's text:

- filter: the negative entropy of h_f(f(x)) (``loss="entropy"``), or cross-entropy toward the
  flipped label 1 − s (``loss="likelihood"``, binary s only), plus λ·max(0, d(f(x), x) − ε)²;
- generator: cross-entropy of h_g(g(·)) toward s', plus the same penalty against the original x;
- d: the mean squared error per pixel on images, the mean elementwise L1 distance on vectors (the
  authors' code uses ``F.l1_loss`` on the 2-D toy problem).

Each batch, the discriminators take ``discriminator_steps`` steps first, then the filter and the
generator one each. After the last epoch, the BatchNorm statistics of the filter and the generator
are recomputed with their final weights ("precise BN"), so that the eval-mode networks keep the
distortion budget that the train-mode ones were held to.

Choices the paper leaves open, stated here: the generator takes the *detached* f(x), so each
network moves only by its own objective; on vector data both networks are plain MLPs, as in the
paper (a residual x + MLP(...) generator passes its input through and keeps the secret:
``ppbench.nn.conditioned``); the noise and label embeddings are smaller than the paper's 1024
and 128 (``noise_dim``, ``embed_dim``), which 16×16 images and 2-D points do not need. Each sanitized item's drawn s' is recorded (``Sanitized.records["replacement"]``): metrics
such as a fool rate read it, attacks never see it. The GAP filter draws nothing and records nothing.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

from ppbench import DISCRIMINATOR, GENERATOR, Context, Sanitized, Sanitizer, hookimpl

if TYPE_CHECKING:
    import torch

LOSSES = ("entropy", "likelihood")
NOISE_STREAM = 7919  # the transform's own generator stream: noise and drawn replacements


def distortion(output: "torch.Tensor", original: "torch.Tensor") -> "torch.Tensor":
    """d(output, original): mean squared error per pixel on images, mean L1 on vectors."""
    difference = output - original
    return (difference ** 2).mean() if output.dim() == 4 else difference.abs().mean()


class _SyntheticReplacement(Sanitizer):
    """The shared machinery; subclasses choose which networks play (``uses_filter``,
    ``uses_generator``)."""

    version = "1"
    uses_filter = True
    uses_generator = True

    def __init__(self, loss: str = "entropy", eps: float = 0.01, lam: float = 1e5,
                 epochs: int | None = None, width: int = 16, depth: int | None = None,
                 discriminator_width: int | None = None, noise_dim: int = 32, embed_dim: int = 16,
                 lr: float = 5e-4, batch_size: int | None = None, discriminator_steps: int = 1) -> None:
        if loss not in LOSSES:
            raise ValueError(f"{self.name}: loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        for key, value in (("eps", eps), ("lam", lam), ("lr", lr)):
            if not isinstance(value, Real) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"{self.name}: {key} must be a non-negative number, got {value!r}")
        if lr <= 0:
            raise ValueError(f"{self.name}: lr must be positive, got {lr!r}")
        for key, value in (("epochs", epochs), ("depth", depth), ("discriminator_width", discriminator_width),
                           ("batch_size", batch_size), ("discriminator_steps", discriminator_steps)):
            if value is not None and (not isinstance(value, Integral) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{self.name}: {key} must be a positive integer or None, got {value!r}")
        for key, value in (("width", width), ("noise_dim", noise_dim), ("embed_dim", embed_dim)):
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{self.name}: {key} must be a positive integer, got {value!r}")
        self.loss = loss
        self.eps = eps
        self.lam = lam
        self.epochs = epochs
        self.width = width
        self.depth = depth
        self.discriminator_width = discriminator_width
        self.noise_dim = noise_dim
        self.embed_dim = embed_dim
        self.lr = lr
        self.batch_size = batch_size
        self.discriminator_steps = discriminator_steps

    # --- fit ---------------------------------------------------------------------------------

    def fit(self, train: Any, task: Any, ctx: Context) -> "_SyntheticReplacement":
        import torch
        import torch.nn.functional as F

        from ppbench.nn import build_classifier, recalibrate_batchnorm
        from ppbench.nn.adversarial import Player, adam, budget_penalty, entropy, train_adversarial
        from ppbench.nn.conditioned import ConditionedNet, unet_depth

        k = train.num_classes(task.sensitive)
        if self.loss == "likelihood" and self.uses_filter and k != 2:
            raise ValueError(f"{self.name}: loss='likelihood' pushes toward the flipped label 1 − s, "
                             f"which needs a binary sensitive attribute; {task.sensitive} has {k} "
                             "classes: use loss='entropy'")
        self.num_classes = k
        shape = tuple(train.images.shape[1:])
        depth = self.depth or unet_depth(shape)
        self.filter_net = (ConditionedNet(shape, 0, self.width, depth, self.noise_dim, self.embed_dim)
                           if self.uses_filter else None)
        self.generator_net = (ConditionedNet(shape, k, self.width, depth, self.noise_dim, self.embed_dim)
                              if self.uses_generator else None)
        kind = "auto"
        self.filter_discriminator = (build_classifier(kind, shape, k, width=self.discriminator_width)
                                     if self.uses_filter else None)
        self.fake_discriminator = (build_classifier(kind, shape, k + 1, width=self.discriminator_width)
                                   if self.uses_generator else None)
        for module in self._modules():
            module.to(ctx.device)
        lam, eps = float(self.lam), float(self.eps)

        def noise(n: int) -> torch.Tensor:
            return torch.randn(n, self.noise_dim, device=ctx.device)

        def filtered(batch: Any) -> torch.Tensor:
            return self.filter_net(batch["x"], noise(len(batch["x"])))

        players = []
        if self.uses_filter:
            def filter_loss(batch: Any) -> torch.Tensor:
                out = filtered(batch)
                logits = self.filter_discriminator(out)
                if self.loss == "entropy":
                    fool = -entropy(logits)
                else:
                    fool = F.cross_entropy(logits, 1 - batch["s"])
                return fool + budget_penalty(distortion(out, batch["x"]), eps, lam)

            def filter_discriminator_loss(batch: Any) -> torch.Tensor:
                with torch.no_grad():
                    out = filtered(batch)
                return F.cross_entropy(self.filter_discriminator(out), batch["s"])

            secret = Player("secret discriminator", [self.filter_discriminator],
                            adam([self.filter_discriminator], self.lr), filter_discriminator_loss)
            players += [secret] * self.discriminator_steps + [
                Player("filter", [self.filter_net], adam([self.filter_net], self.lr), filter_loss)]
        if self.uses_generator:
            # The filter has taken its step for the batch when the generator's players run, so its
            # output is computed once per batch for both (holding x keeps the identity check sound).
            latest: list[Any] = [None, None]

            def generator_source(batch: Any) -> torch.Tensor:
                if not self.uses_filter:
                    return batch["x"]
                if latest[0] is not batch["x"]:
                    with torch.no_grad():
                        latest[:] = [batch["x"], filtered(batch)]
                return latest[1]

            def generated(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
                x = batch["x"]
                source = generator_source(batch)
                drawn = torch.randint(0, k, (len(x),), device=ctx.device)
                return self.generator_net(source, noise(len(x)), drawn), drawn

            def generator_loss(batch: Any) -> torch.Tensor:
                out, drawn = generated(batch)
                fool = F.cross_entropy(self.fake_discriminator(out), drawn)
                return fool + budget_penalty(distortion(out, batch["x"]), eps, lam)

            def fake_discriminator_loss(batch: Any) -> torch.Tensor:
                with torch.no_grad():
                    out, _ = generated(batch)
                fake = torch.full((len(out),), k, dtype=torch.long, device=ctx.device)
                return (F.cross_entropy(self.fake_discriminator(batch["x"]), batch["s"])
                        + F.cross_entropy(self.fake_discriminator(out), fake))

            real_fake = Player("real/fake discriminator", [self.fake_discriminator],
                               adam([self.fake_discriminator], self.lr), fake_discriminator_loss)
            players += [real_fake] * self.discriminator_steps + [
                Player("generator", [self.generator_net], adam([self.generator_net], self.lr),
                       generator_loss)]
        epochs = self.epochs or ctx.profile.fit_epochs
        self.history_ = train_adversarial(players, {"x": train.images, "s": train.labels[task.sensitive]},
                                          ctx, epochs=epochs,
                                          batch_size=self.batch_size or ctx.profile.batch_size,
                                          desc=f"{self.name} fit")
        # "Precise BN" for the networks that transform: their running statistics trail an
        # adversarial game whose inputs keep moving. Measured on synthfaces (smiling, eps 0.05,
        # 10 epochs): the generator's eval-mode output was 0.074 from the input (MSE) against
        # 0.049 in train mode, over its budget; recalibrated, 0.051.
        renderers = torch.nn.ModuleList(m for m in (self.filter_net, self.generator_net) if m is not None)

        def render(x: torch.Tensor) -> torch.Tensor:
            out = filtered({"x": x}) if self.uses_filter else x
            if self.uses_generator:
                out = self.generator_net(out, noise(len(x)), torch.randint(0, k, (len(x),), device=ctx.device))
            return out

        recalibrate_batchnorm(renderers, train.images, ctx, forward=render)
        # The recalibration leaves the (fresh, training-mode) container's networks in train mode.
        for module in self._modules():
            module.eval().cpu()
        return self

    def _modules(self) -> list[Any]:
        return [m for m in (self.filter_net, self.generator_net, self.filter_discriminator,
                            self.fake_discriminator) if m is not None]

    # --- transform ---------------------------------------------------------------------------

    def _draws(self, ctx: Context) -> "torch.Generator":
        """One generator per context seed, continued across the batches of a split."""
        if getattr(self, "_draws_seed", None) != ctx.seed:
            self._draws_seed = ctx.seed
            self._draw_generator = ctx.generator(stream=NOISE_STREAM)
        return self._draw_generator

    def _render(self, images: "torch.Tensor", replacement: "torch.Tensor | None", ctx: Context) -> "torch.Tensor":
        import torch

        draws = self._draws(ctx)
        device = images.device
        with torch.no_grad():
            out = images
            if self.filter_net is not None:
                self.filter_net.to(device)
                out = self.filter_net(out, torch.randn(len(out), self.noise_dim, generator=draws).to(device))
            if self.generator_net is not None:
                self.generator_net.to(device)
                out = self.generator_net(out, torch.randn(len(out), self.noise_dim, generator=draws).to(device),
                                         replacement.to(device))
        return out.clamp(0.0, 1.0) if out.dim() == 4 else out

    def transform(self, images: "torch.Tensor", ctx: Context) -> "torch.Tensor | Sanitized":
        import torch

        if not self.uses_generator:
            return self._render(images, None, ctx)
        replacement = torch.randint(0, self.num_classes, (len(images),), generator=self._draws(ctx))
        return Sanitized(self._render(images, replacement, ctx), {"replacement": replacement})

    def handles(self) -> dict[str, Any]:
        handles: dict[str, Any] = {DISCRIMINATOR: {
            name: module for name, module in (("filter", self.filter_discriminator),
                                              ("generator", self.fake_discriminator))
            if module is not None}}
        if self.uses_generator:
            handles[GENERATOR] = ReplacementRenderer(self)
        return handles


class ReplacementRenderer:
    """The ``generator`` handle: renders the sanitizer's output for a chosen replacement value,
    ``renderer(images, replacement, ctx)`` (replacement: one class index per image)."""

    def __init__(self, sanitizer: _SyntheticReplacement) -> None:
        self.sanitizer = sanitizer

    def __call__(self, images: "torch.Tensor", replacement: "torch.Tensor", ctx: Context) -> "torch.Tensor":
        return self.sanitizer._render(images, replacement, ctx)


class FilterGenerator(_SyntheticReplacement):
    """Martinsson et al.'s filter + generator: remove the sensitive attribute, then render a fresh
    value drawn uniformly."""

    name = "filter-generator"
    description = __doc__
    capabilities = frozenset({GENERATOR, DISCRIMINATOR})


class GapFilter(_SyntheticReplacement):
    """The filter alone (GAP, Huang et al.): Martinsson et al.'s baseline."""

    name = "gap-filter"
    description = __doc__
    capabilities = frozenset({DISCRIMINATOR})
    uses_generator = False


class GeneratorOnly(_SyntheticReplacement):
    """The generator applied to the raw input with a fresh value: no filter, so it can pass the
    input through when the drawn value equals the true one."""

    name = "generator-only"
    description = __doc__
    capabilities = frozenset({GENERATOR, DISCRIMINATOR})
    uses_filter = False


@hookimpl
def ppbench_register_sanitizers(register) -> None:
    for cls in (FilterGenerator, GapFilter, GeneratorOnly):
        register(cls)
