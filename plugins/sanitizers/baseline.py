"""Baseline sanitizers: the reference points every learned sanitizer is compared against.

``identity`` is the leakage ceiling (nothing removed), ``blackout`` the floor (nothing kept);
``blur``, ``pixelate`` and ``noise`` are the classic hand-made obfuscations, each with one knob.
"""

from __future__ import annotations

import hashlib
import math
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

from ppbench import IMAGE, Context, Sanitizer, hookimpl

if TYPE_CHECKING:
    import torch


def _positive_real(sanitizer: str, parameter: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"sanitizer {sanitizer!r}: parameter {parameter!r} must be {bound}, "
                         f"got {value!r}")


def _require_images(sanitizer: str, images: "torch.Tensor") -> None:
    if images.dim() != 4:
        raise ValueError(f"sanitizer {sanitizer!r} works on N×C×H×W images, got a tensor of shape "
                         f"{tuple(images.shape)}")


class Identity(Sanitizer):
    """Returns the images unchanged: the leakage ceiling every attack is measured against."""

    name = "identity"
    version = "1"
    description = "No-op: images pass through unchanged (the leakage ceiling)."

    def transform(self, images: "torch.Tensor", ctx: Context) -> "torch.Tensor":
        return images.clone()  # a copy, so that no caller can alias the raw split


class Blackout(Sanitizer):
    """Replaces every image (or vector) by zeros: the floor, where nothing leaks and nothing is kept."""

    name = "blackout"
    version = "1"
    description = "Replaces every item by zeros (the floor: no leakage, no utility)."

    def transform(self, images: "torch.Tensor", ctx: Context) -> "torch.Tensor":
        import torch

        return torch.zeros_like(images)


def gaussian_kernel1d(sigma: float, radius: int) -> "torch.Tensor":
    """Normalised 1-D Gaussian of ``2·radius + 1`` taps."""
    import torch

    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def reflect_blur_matrix(size: int, sigma: float, radius: int) -> "torch.Tensor":
    """The ``size``×``size`` matrix of a 1-D Gaussian convolution with reflect padding.

    Row ``i`` holds the kernel taps centred on ``i``, with taps that fall outside folded back
    as reflect padding does (``-1 → 1``, ``size → size − 2``); requires ``radius < size``.
    """
    import torch

    kernel = gaussian_kernel1d(sigma, radius)
    rows = torch.arange(size).view(-1, 1).expand(size, 2 * radius + 1)
    cols = rows + torch.arange(-radius, radius + 1).view(1, -1)
    cols = torch.where(cols < 0, -cols, cols)
    cols = torch.where(cols >= size, 2 * (size - 1) - cols, cols)
    matrix = torch.zeros(size, size)
    matrix.index_put_((rows.reshape(-1), cols.reshape(-1)), kernel.repeat(size), accumulate=True)
    return matrix


def gaussian_blur(images: "torch.Tensor", sigma: float) -> "torch.Tensor":
    """Separable Gaussian blur with reflect padding, truncated at 3σ.

    Each 1-D pass is a product with a (reflect-padded, banded) convolution matrix: on small
    images that is several times faster on a CPU than a depthwise ``conv2d``, with the same
    result. Reflect padding cannot exceed the image size, so the kernel is also truncated at the
    image's smaller side minus one: a σ far larger than the image approaches a row/column mean.
    """
    height, width = images.shape[-2:]
    radius = min(int(math.ceil(3.0 * sigma)), height - 1, width - 1)
    if radius < 1:
        return images.clone()
    vertical = reflect_blur_matrix(height, sigma, radius).to(images.device, images.dtype)
    horizontal = reflect_blur_matrix(width, sigma, radius).to(images.device, images.dtype)
    out = vertical @ images @ horizontal.T
    return out.clamp(0.0, 1.0)  # a convex combination of [0, 1] values, up to round-off


class Blur(Sanitizer):
    """Gaussian blur of standard deviation ``sigma`` pixels (images only)."""

    name = "blur"
    version = "1"
    description = "Gaussian blur (separable, reflect padding) with standard deviation `sigma` pixels."
    inputs = frozenset({IMAGE})

    def __init__(self, sigma: float = 2.0) -> None:
        _positive_real(self.name, "sigma", sigma)
        self.sigma = sigma

    def transform(self, images: "torch.Tensor", ctx: Context) -> "torch.Tensor":
        _require_images(self.name, images)
        return gaussian_blur(images, float(self.sigma))


def pixelate(images: "torch.Tensor", block: int) -> "torch.Tensor":
    """Average over ``block``×``block`` cells, then repeat each mean over its cell.

    When the size is not a multiple of ``block`` the last row/column of cells is smaller, and
    averages only the pixels it covers (``ceil_mode`` pooling counts no padding).
    """
    import torch.nn.functional as F

    height, width = images.shape[-2:]
    means = F.avg_pool2d(images, block, stride=block, ceil_mode=True)
    out = means.repeat_interleave(block, dim=-2).repeat_interleave(block, dim=-1)
    return out[..., :height, :width].contiguous()


class Pixelate(Sanitizer):
    """Mosaic: each ``block``×``block`` cell takes its mean colour (images only)."""

    name = "pixelate"
    version = "1"
    description = "Mosaic: replaces each `block`×`block` cell by its mean colour."
    inputs = frozenset({IMAGE})

    def __init__(self, block: int = 4) -> None:
        if not isinstance(block, Integral) or isinstance(block, bool) or block < 1:
            raise ValueError(f"sanitizer 'pixelate': parameter 'block' must be an integer >= 1, "
                             f"got {block!r}")
        self.block = block

    def transform(self, images: "torch.Tensor", ctx: Context) -> "torch.Tensor":
        _require_images(self.name, images)
        if self.block == 1:
            return images.clone()
        return pixelate(images, int(self.block))


class Noise(Sanitizer):
    """Additive Gaussian noise of standard deviation ``std``; clamped to [0, 1] for images.

    The noise of each item is drawn from a generator seeded by the context's seed and the item's
    own bytes. So the output is reproducible whatever the batching, call order or process, and
    querying the same item twice returns the same output (an oracle attacker cannot average the
    noise away by repeating a query; different items get independent noise).
    """

    name = "noise"
    version = "1"
    description = "Additive Gaussian noise with standard deviation `std` (clamped to [0, 1] on images)."

    def __init__(self, std: float = 0.1) -> None:
        _positive_real(self.name, "std", std, allow_zero=True)
        self.std = std

    def transform(self, images: "torch.Tensor", ctx: Context) -> "torch.Tensor":
        import torch

        if self.std == 0:
            return images.clone()
        flat = images.detach().to("cpu", torch.float32).contiguous().view(len(images), -1).numpy()
        salt = (ctx.seed % 2**64).to_bytes(8, "little")
        noise = torch.empty(flat.shape, dtype=torch.float32)
        generator = torch.Generator()
        for row, item in enumerate(flat):
            digest = hashlib.blake2b(item.tobytes(), digest_size=8, key=salt).digest()
            generator.manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
            noise[row] = torch.randn(flat.shape[1], generator=generator)
        out = images + float(self.std) * noise.view(images.shape).to(images.device, images.dtype)
        return out.clamp(0.0, 1.0) if images.dim() == 4 else out


BASELINE_SANITIZERS = (Identity, Blackout, Blur, Pixelate, Noise)


@hookimpl
def ppbench_register_sanitizers(register) -> None:
    for sanitizer in BASELINE_SANITIZERS:
        register(sanitizer)
