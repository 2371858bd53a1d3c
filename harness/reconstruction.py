"""The ``reconstruction`` scoring kind: how much of the raw test images an attacker rebuilds.

A reconstruction attack (e.g. one that learns to invert the sanitizer on public data passed through
it) returns an estimate of every raw test image (:class:`~ppbench.api.ReconstructionResult`); the
raw test images stay with the harness, which scores the estimate in two ways:

- likeness: mean ``psnr`` and ``ssim`` (and ``mse``) against the raw test images, computed by
  :func:`ppbench.image_quality.image_quality`, exactly as the distortion metric computes them;
- re-identification (``advantage``, primary): a fixed classifier of the sensitive attribute trained
  on the raw train split (the reference classifier that the fixed-classifier attack uses) reads the
  reconstructions, and its guesses are scored exactly like an attribute attack's (normalized
  advantage on balanced accuracy, with the same interval and per-item results for the board's
  paired tests). This is the figure that joins the worst case: a reconstruction that looks like
  the face but not like the person leaks nothing the board ranks.

An attribute attack may also hand back reconstructions (``AttackResult.reconstructions``, e.g. the
key holder's decoded copy of the input); :func:`reconstruction_values` scores them the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .api import AttackResult, MetricValue, PluginContractError, ReconstructionResult
from .image_quality import image_quality
from .scoring import Scored, diagnostic_values, score_attribute

if TYPE_CHECKING:
    import torch

    from .api import Context
    from .kinds import ViewInputs
    from .scoring import WithheldTruth

LIKENESS = (("psnr", "lower"), ("ssim", "lower"), ("mse", "higher"))  # better for the sanitizer


@dataclass
class ReconstructionTruth:
    """What the harness keeps back to score reconstructions: a fixed classifier's guess of the
    sensitive attribute for any batch of images (class indices)."""

    reidentify: Callable[["torch.Tensor"], "torch.Tensor"]


def reidentifier(inputs: "ViewInputs", sensitive: str) -> ReconstructionTruth:
    """The fixed raw-trained classifier of ``sensitive`` (shared with the fixed-classifier
    attack through ``ctx.shared``), as a function from images to class indices."""
    from .nn import predict_logits, reference_classifier

    ctx = inputs.ctx
    model = reference_classifier(inputs.raw.train, sensitive, ctx)
    return ReconstructionTruth(lambda images: predict_logits(model, images, ctx).argmax(dim=1))


def check_reconstructions(images: Any, raw: "torch.Tensor", source: str) -> "torch.Tensor":
    import torch

    if not isinstance(images, torch.Tensor):
        raise PluginContractError(f"{source}: reconstructions must be a tensor, got {type(images).__name__}")
    if tuple(images.shape) != tuple(raw.shape):
        raise PluginContractError(f"{source}: reconstructions must have the raw test images' shape "
                                  f"{tuple(raw.shape)} (one per test item, in order), got "
                                  f"{tuple(images.shape)}")
    images = images.detach().cpu().float()
    if not torch.isfinite(images).all():
        raise PluginContractError(f"{source}: the reconstructions contain NaN or inf")
    # Pixels live in [0, 1]; an estimate outside is clipped as any displayed image would be.
    return images.clamp(0.0, 1.0)


def reconstruction_values(images: "torch.Tensor", raw: "torch.Tensor", ctx: "Context | None",
                          prefix: str = "") -> list[MetricValue]:
    """PSNR, SSIM and MSE of reconstructions against the raw images, as leakage figures
    (``better`` is the sanitizer's direction: lower PSNR and SSIM)."""
    from .api import Context

    figures = image_quality(raw, images, ctx or Context(), desc="reconstruction quality")
    return [MetricValue(f"{prefix}{name}", figures[name], better=better, role="leakage")
            for name, better in LIKENESS if math.isfinite(figures[name])]


def score_reconstruction(result: Any, truth: "WithheldTruth", source: str,
                         withheld: ReconstructionTruth) -> Scored:
    """Re-identification (primary, scored as an attribute attack) and likeness (PSNR, SSIM,
    MSE) of the reconstructed test images."""
    if not isinstance(result, ReconstructionResult):
        raise PluginContractError(f"{source}: run() must return a ReconstructionResult, got "
                                  f"{type(result).__name__}")
    raw = truth.test.images
    images = check_reconstructions(result.images, raw, source)
    guesses = withheld.reidentify(images).long()
    scored = score_attribute(AttackResult(predictions=guesses), truth, source)
    scored.values += reconstruction_values(images, raw, None)
    scored.values += diagnostic_values(result.diagnostics, source)
    return scored


def score_attribute_attack(result: Any, truth: "WithheldTruth", source: str, withheld: Any = None) -> Scored:
    """The ``attribute`` kind's scoring: :func:`~ppbench.scoring.score_attribute`, plus the
    likeness of ``AttackResult.reconstructions`` when the attack returned some."""
    scored = score_attribute(result, truth, source, withheld)
    reconstructions = getattr(result, "reconstructions", None)
    if reconstructions is not None:
        images = check_reconstructions(reconstructions, truth.test.images, source)
        scored.values += reconstruction_values(images, truth.test.images, None)
    return scored
