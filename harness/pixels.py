"""How sanitized images are stored: in 8 bits where that loses nothing, in half precision otherwise.

A cached fit holds the sanitized attack and test splits, which dominate the cache's size. Images
(N×C×H×W in [0, 1]) whose every pixel is a multiple of 1/255, as decoded 8-bit photographs and
synthfaces are, and as an identity or blackout sanitizer leaves them, are stored as ``uint8``:
exactly. Other images (a blur, a learned filter) are stored as ``float16``, which moves no pixel by
more than :data:`HALF_PRECISION_TOLERANCE` (2⁻¹², a sixteenth of an 8-bit step). Vector data are
kept as float32.

Attacks and metrics always receive the stored pixels, never the sanitizer's unrounded output, so a
cell scored right after a fit and the same cell scored from the cache see identical inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: The storage rule's identity: part of every fit and cell key, so that changing the rule
#: recomputes what was computed under the old one.
STORAGE_FORMAT = "uint8-exact-else-float16/1"

#: The largest change half precision makes to a value in [0, 1] (half an ulp at 1: 2⁻¹¹ / 2).
HALF_PRECISION_TOLERANCE = 2.0 ** -12

_STORED_DTYPES = ("torch.uint8", "torch.float16", "torch.float32")


def quantize_8bit(images: "torch.Tensor") -> "torch.Tensor":
    """``images`` in [0, 1] rounded to the nearest multiple of 1/255, as float32: what encoding them
    as 8-bit pixels and decoding them again gives. For data-set loaders that render images."""
    import torch

    return (images.clamp(0.0, 1.0) * 255).round().to(torch.float32) / 255


def is_8bit(images: "torch.Tensor") -> bool:
    """Whether every value is exactly k/255 for an integer k in 0..255, as float32 holds it."""
    import torch

    return images.dtype == torch.float32 and bool(torch.equal(quantize_8bit(images), images))


def compact(values: "torch.Tensor") -> "torch.Tensor":
    """The stored form of checked sanitizer output (float32, on the CPU)."""
    import torch

    if values.dim() != 4:  # vector data: any range, full precision
        return values.to(torch.float32)
    if is_8bit(values):
        return (values * 255).round().to(torch.uint8)
    return values.to(torch.float16)


def expand(stored: "torch.Tensor") -> "torch.Tensor":
    """float32 values of a stored tensor."""
    import torch

    if stored.dtype == torch.uint8:
        return stored.to(torch.float32) / 255
    return stored.to(torch.float32)


def as_stored(values: "torch.Tensor") -> "torch.Tensor":
    """``values`` exactly as they come back from the cache."""
    return expand(compact(values))


def is_stored_form(value: object) -> bool:
    """Whether ``value`` is a tensor in one of the stored dtypes (a cache entry's sanity check)."""
    return str(getattr(value, "dtype", "")) in _STORED_DTYPES
