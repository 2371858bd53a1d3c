"""``fd-ppbench``: a Fréchet distance between sanitized and real images, in the feature space of
an encoder that ppbench trains itself. It is not FID: FID's features come from an Inception
network trained on ImageNet, whose weights ppbench never downloads, so the numbers are on another
scale and must not be compared with published FIDs.

The encoder is the reference classifier (:func:`ppbench.nn.reference_fit`: trained to
convergence on the RAW train split, cached per data set and seed) of ``attribute`` (default: the
data set's attribute with the most classes, identity on synthfaces: the richest features), cut
before its head and globally average-pooled (a SmallCNN's last block: 4·width features, few
enough for a covariance estimated from a thousand images). The distance compares the sanitized
test split with the raw one (a release: the released surrogate set with the raw test split),
``‖μ_s − μ_r‖² + Tr(Σ_s + Σ_r − 2 (Σ_r^½ Σ_s Σ_r^½)^½)``, so an untouched image scores exactly 0.
The figures:

- ``fd`` (primary, lower is better): with a 95% percentile bootstrap interval over test items
  (resampled together for a transform, each set on its own for a release);
- ``fd_raw`` (diagnostic): the distance between two raw samples (the raw attack and test
  splits), the finite-sample scale below which a difference means nothing.

Vector data sets are compared on their coordinates directly (no encoder).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ppbench import Context, MetricValue, MetricView, Task, UtilityMetric, hookimpl

if TYPE_CHECKING:
    import numpy as np
    import torch

NAME = "fd-ppbench"
N_BOOTSTRAP = 200
_BOOTSTRAP_STREAM = 4127
_BATCH = 256


class FrechetDistance(UtilityMetric):
    """Fréchet distance between sanitized and real images in a ppbench-trained encoder's features
    (not FID: see the module documentation)."""

    name = NAME
    version = "1"
    description = ("Fréchet distance between sanitized and real images in the features of a "
                   "ppbench-trained encoder (the raw-trained reference classifier); not FID.")

    def __init__(self, attribute: str | None = None) -> None:
        if attribute is not None and (not isinstance(attribute, str) or not attribute):
            raise ValueError(f"metric {NAME!r}: parameter 'attribute' must be an attribute name, "
                             f"got {attribute!r}")
        self.attribute = attribute

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        import numpy as np

        real = self._features(view, view.raw_test.images, ctx)
        released = view.release is not None
        sanitized = self._features(view, (view.release if released else view.sanitized_test).images, ctx)
        floor = self._features(view, view.raw_attack.images, ctx)
        fd = frechet_distance(sanitized, real)
        rng = np.random.default_rng([ctx.seed % 2**63, _BOOTSTRAP_STREAM])
        draws = []
        for _ in range(N_BOOTSTRAP):
            pick = rng.integers(0, len(real), len(real))
            # A transform's outputs pair with their inputs: resampled together.
            other = rng.integers(0, len(sanitized), len(sanitized)) if released else pick
            draws.append(frechet_distance(sanitized[other], real[pick]))
        low, high = np.percentile(draws, [2.5, 97.5])
        return [MetricValue("fd", fd, better="lower", role="distortion", primary=True,
                            ci_low=float(low), ci_high=float(high)),
                MetricValue("fd_raw", frechet_distance(floor, real), better="lower", role="diagnostic"),
                # The encoder: the raw-trained reference classifier.
                MetricValue.budget("reference_models", 1),
                MetricValue.budget("training_items", len(view.raw_train))]

    def _features(self, view: MetricView, images: "torch.Tensor", ctx: Context) -> "np.ndarray":
        import torch
        import torch.nn.functional as F

        if images.dim() != 4:  # vector data: the coordinates are the features
            return images.double().cpu().numpy()
        from ppbench.nn import reference_fit

        attribute = self.attribute or max(view.raw_train.labels, key=lambda a: (view.raw_train.num_classes(a), a))
        if attribute not in view.raw_train.labels:
            raise ValueError(f"metric {NAME!r}: the data set has no attribute {attribute!r} (it has "
                             f"{', '.join(sorted(view.raw_train.labels))})")
        encoder = reference_fit(view.raw_train, attribute, ctx).model.to(ctx.device).eval()
        body = getattr(encoder, "body", None)
        out = []
        with torch.no_grad():
            for start in range(0, len(images), _BATCH):
                batch = images[start:start + _BATCH].to(ctx.device, torch.float32)
                if body is not None:  # pooled last block: compact, position-free features
                    feats = F.adaptive_avg_pool2d(body(batch), 1).flatten(1)
                else:
                    feats = encoder.features(batch)
                out.append(feats.double().cpu())
        return torch.cat(out).numpy()


def frechet_distance(a: "np.ndarray", b: "np.ndarray") -> float:
    """The Fréchet distance between Gaussians fitted to the rows of ``a`` and of ``b``."""
    import numpy as np

    if len(a) < 2 or len(b) < 2:
        return math.nan
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # Tr((Σ_b^½ Σ_a Σ_b^½)^½) through symmetric eigendecompositions: stable for PSD matrices.
    values, vectors = np.linalg.eigh(cov_b)
    root_b = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root_b @ cov_a @ root_b
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)
    return max(distance, 0.0)


@hookimpl
def ppbench_register_metrics(register) -> None:
    register(FrechetDistance)
