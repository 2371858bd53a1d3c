"""How close one batch of images is to another: MSE, PSNR and SSIM, computed one way everywhere.

The distortion metric (sanitized against raw test images) and the reconstruction scoring kind (an
attack's reconstructions against the raw test images) both call :func:`image_quality`, so the same
pairs give the same figures to the last digit.

SSIM follows Wang et al. (2004): an 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03,
data range 1, computed per channel over the valid region and averaged over channels, pixels and
images. PSNR is averaged per image, each capped at ``MAX_PSNR`` dB so that an exact copy gives a
finite figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from .api import Context

MAX_PSNR = 100.0  # dB; the PSNR of an image whose MSE is 1e-10
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
BATCH = 512  # items per batch: bounds memory at paper scale


def per_item_mse(a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    return (a.float() - b.float()).reshape(len(a), -1).pow(2).mean(dim=1)


def psnr(a: "torch.Tensor", b: "torch.Tensor", data_range: float = 1.0) -> "torch.Tensor":
    """Per-item PSNR in dB, ``10·log10(range² / MSE)``, capped at ``MAX_PSNR``."""
    mse = per_item_mse(a, b)
    floor = data_range**2 * 10 ** (-MAX_PSNR / 10)
    return 10.0 * (data_range**2 / mse.clamp_min(floor)).log10()


def _gaussian_window(size: int, sigma: float) -> "torch.Tensor":
    import torch

    offsets = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    return kernel[:, None] * kernel[None, :]


def ssim(a: "torch.Tensor", b: "torch.Tensor", data_range: float = 1.0,
         window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> "torch.Tensor":
    """Per-image SSIM of two N×C×H×W batches (mean over channels and valid window positions).

    Images smaller than the window use the largest odd window that fits.
    """
    import torch.nn.functional as F

    a, b = a.float(), b.float()
    channels, height, width = a.shape[1:]
    size = min(window, height, width)
    size -= 1 - size % 2  # keep it odd so that the window has a centre
    kernel = _gaussian_window(size, sigma).to(a.device)
    kernel = kernel.expand(channels, 1, size, size).contiguous()

    def filtered(x: "torch.Tensor") -> "torch.Tensor":
        return F.conv2d(x, kernel, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = filtered(a), filtered(b)
    var_a = filtered(a * a) - mu_a**2
    var_b = filtered(b * b) - mu_b**2
    covariance = filtered(a * b) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + c1) * (2 * covariance + c2)
    denominator = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (numerator / denominator).flatten(1).mean(dim=1)


def image_quality(reference: "torch.Tensor", other: "torch.Tensor", ctx: "Context",
                  desc: str = "image quality") -> dict[str, float]:
    """Mean MSE, and for images (N×C×H×W) mean PSNR and SSIM, of ``other`` against
    ``reference``; for vectors (N×D) the mean L1 and L2 distance per item instead of PSNR and
    SSIM. Batches go to ``ctx.device`` one at a time."""
    import torch

    if reference.shape != other.shape:
        raise ValueError(f"items of shape {tuple(other.shape)} cannot be compared with items of "
                         f"shape {tuple(reference.shape)}")
    is_image = reference.dim() == 4
    sums = dict.fromkeys(("mse", "psnr", "ssim") if is_image else ("mse", "l1", "l2"), 0.0)
    with torch.no_grad():
        for start in ctx.progress(range(0, len(reference), BATCH), desc=desc):
            a = reference[start:start + BATCH].to(ctx.device)
            b = other[start:start + BATCH].to(ctx.device)
            sums["mse"] += float(per_item_mse(a, b).sum())
            if is_image:
                sums["psnr"] += float(psnr(a, b).sum())
                sums["ssim"] += float(ssim(a, b).sum())
            else:
                difference = (a.float() - b.float()).reshape(len(a), -1)
                sums["l1"] += float(difference.abs().sum(dim=1).sum())
                sums["l2"] += float(difference.norm(dim=1).sum())
    n = max(1, len(reference))
    return {name: total / n for name, total in sums.items()}
