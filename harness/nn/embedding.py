"""Face-recognition embeddings trained with a margin-based softmax (CosFace), on the network zoo.

A recognizer for open-set re-identification must place images of people it never saw in training
near each other: it is trained to classify the identities it has, but what is kept is the
L2-normalised feature before the classifier, compared by cosine similarity. CosFace (Wang et al.,
2018, "large margin cosine loss") makes those features discriminative by classifying with cosine
logits ``s·cos θ_j`` and subtracting a margin ``m`` from the true class's cosine during training,
so that an identity's features must be closer to their own class centre than the margin demands.

:class:`MarginEmbedder` wraps any trunk of :func:`~ppbench.nn.build_classifier` (whose head then
outputs the embedding); it trains through the shared loop (:func:`~ppbench.nn.fit_classifier`
with ``loss=cosface_loss(...)``), which validates and stops early on the margin-free cosine logits.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..api import Context
from .networks import build_classifier, seeded
from .training import apply_model, to_device

# Wang et al.'s choices for face recognition: s = 30 (their 64 needs far more classes than a
# benchmark has), m = 0.35.
DEFAULT_SCALE = 30.0
DEFAULT_MARGIN = 0.35


class MarginEmbedder(nn.Module):
    """``trunk`` maps images to ``embedding_dim`` features; the module returns ``scale``·cosine
    logits against one learned centre per training identity. :meth:`embed` gives the normalised
    features, which is what a recognizer compares."""

    def __init__(self, trunk: nn.Module, embedding_dim: int, num_identities: int,
                 scale: float = DEFAULT_SCALE) -> None:
        super().__init__()
        if embedding_dim < 2 or num_identities < 2:
            raise ValueError(f"MarginEmbedder needs embedding_dim >= 2 and num_identities >= 2, "
                             f"got {embedding_dim} and {num_identities}")
        self.trunk = trunk
        self.scale = float(scale)
        self.centres = nn.Parameter(torch.randn(num_identities, embedding_dim) / embedding_dim ** 0.5)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.trunk(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.embed(x) @ F.normalize(self.centres, dim=1).t()


def cosface_loss(margin: float = DEFAULT_MARGIN, scale: float = DEFAULT_SCALE
                 ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The large-margin cosine loss on ``scale``·cosine logits: cross-entropy after subtracting
    ``scale``·``margin`` from each item's true-class logit."""
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        penalty = F.one_hot(targets, logits.shape[1]).to(logits.dtype) * (scale * margin)
        return F.cross_entropy(logits - penalty, targets)
    return loss


def build_embedder(input_shape: Sequence[int], num_identities: int, *, embedding_dim: int = 64,
                   kind: str = "cnn", width: int | None = None, scale: float = DEFAULT_SCALE,
                   seed: int | None = None) -> MarginEmbedder:
    """A :class:`MarginEmbedder` on a zoo trunk (``kind`` as :func:`build_classifier` takes)."""
    trunk = build_classifier(kind, input_shape, embedding_dim, width=width, seed=seed)
    with seeded(seed):
        return MarginEmbedder(trunk, embedding_dim, num_identities, scale)


def embed_images(model: MarginEmbedder, images: torch.Tensor, ctx: Context,
                 batch_size: int | None = None) -> torch.Tensor:
    """Normalised embeddings of ``images`` (N×D, on the CPU), in eval mode on ``ctx.device``."""
    model.to(ctx.device)
    model.eval()
    return apply_model(lambda batch: model.embed(to_device(batch, ctx)), images, ctx,
                       batch_size, desc="embed")
