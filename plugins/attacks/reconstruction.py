"""reconstruction: learn to undo the sanitizer, then rebuild the raw test images.

The attacker holds public raw images (``aux``) and may query the fitted sanitizer (``oracle``):
it passes the aux images through the oracle, trains a UNet to map each sanitized image back to its
raw original (mean squared error, early stopping on a held-out part:
:func:`ppbench.nn.fit_regressor`), and applies it to the sanitized test images. It returns the
estimates (:class:`~ppbench.ReconstructionResult`); the harness, which alone holds the raw test
images, scores them by PSNR and SSIM and by how often a fixed classifier trained on raw images
re-identifies the sensitive attribute in them (the ``reconstruction`` scoring kind).

A sanitizer that is a deterministic, invertible function of its input (a blur, a pixelation, a
mild noise) is undone in good part; one that draws a fresh identity per image and renders only
the code the identity is independent of (an honest PP-GAN) leaves nothing to invert, so the
re-identification stays at chance however sharp the reconstructions are. The oracle is
queried with every aux image once more per pass (``queries_per_image``, default 1): a sanitizer
that draws per call (a random replacement identity, noise) then teaches the regressor that its
draws carry no information about the input.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

from ppbench import AUX, ORACLE, Attack, AttackView, Context, ReconstructionResult, Task, hookimpl

NAME = "reconstruction"


class Reconstruction(Attack):
    """Trains a UNet from oracle outputs of public aux images back to the images, and applies it
    to the sanitized test split. ``base``: the UNet's first width; ``queries_per_image``: oracle
    passes over the aux images (each a fresh draw of a randomised sanitizer); ``max_epochs`` and
    ``patience`` default to the profile's."""

    name = NAME
    version = "1"
    kind = "reconstruction"
    description = ("Learns the inverse map from sanitized to raw on public aux images passed "
                   "through the sanitizer (oracle), then rebuilds the test images; scored by "
                   "PSNR/SSIM and a fixed raw-trained classifier's re-identification.")
    requires = frozenset({ORACLE, AUX})
    threat_model = "query-access"

    def __init__(self, base: int = 16, queries_per_image: int = 1, max_epochs: int | None = None,
                 patience: int | None = None, lr: float = 2e-3) -> None:
        for key, value in (("base", base), ("queries_per_image", queries_per_image)):
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"attack {NAME!r}: parameter {key!r} must be an integer >= 1, got {value!r}")
        for key, value in (("max_epochs", max_epochs), ("patience", patience)):
            if value is not None and (not isinstance(value, Integral) or isinstance(value, bool) or value < 1):
                raise ValueError(f"attack {NAME!r}: parameter {key!r} must be None or an integer >= 1, "
                                 f"got {value!r}")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"attack {NAME!r}: parameter 'lr' must be a number > 0, got {lr!r}")
        self.base = base
        self.queries_per_image = queries_per_image
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr = lr

    def run(self, view: AttackView, task: Task, ctx: Context) -> ReconstructionResult:
        import torch

        from ppbench.nn import UNet, apply_model, fit_regressor, seeded, unet_depth

        if view.aux is None or view.oracle is None:
            raise ValueError(f"attack {NAME!r} needs public aux images and the sanitizer's oracle")
        raw = view.aux.images
        if raw.dim() != 4:
            raise ValueError(f"attack {NAME!r} rebuilds images; this data set holds items of shape "
                             f"{tuple(raw.shape[1:])}")
        sanitized = torch.cat([apply_model(view.oracle, raw, ctx, desc="oracle queries").float()
                               for _ in range(self.queries_per_image)])
        originals = raw.float().repeat(self.queries_per_image, 1, 1, 1)
        channels = raw.shape[1]
        with seeded(ctx.seed):
            model = UNet(channels, channels, base=self.base, depth=unet_depth(raw.shape[1:]))
        fit = fit_regressor(model, sanitized, originals, ctx, max_epochs=self.max_epochs,
                            patience=self.patience, lr=self.lr, desc=f"{NAME}: inverse map",
                            generator=ctx.generator(stream=5))
        estimates = apply_model(lambda batch: fit.model(batch), view.test.images.float(), ctx,
                                desc="reconstruct")
        diagnostics: dict[str, Any] = {"val_mse": fit.val_mse, "epochs": float(fit.epochs),
                                       "best_epoch": float(fit.best_epoch + 1)}
        return ReconstructionResult(images=estimates.clamp(0.0, 1.0),
                                    diagnostics={k: v for k, v in diagnostics.items() if math.isfinite(v)},
                                    budget={"epochs": float(fit.epochs), "queries": float(len(sanitized)),
                                            "training_items": float(len(sanitized))})


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(Reconstruction)
