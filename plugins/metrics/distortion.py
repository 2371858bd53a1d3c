"""How far sanitized test items are from the raw ones: MSE, PSNR and SSIM (L1/L2 for vectors).

SSIM follows Wang et al. (2004): an 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03,
data range 1, computed per channel over the valid region and averaged over channels, pixels and
images. PSNR is averaged per image, each capped at ``MAX_PSNR`` dB so that an exact copy gives a
finite figure.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ppbench import Context, MetricValue, MetricView, Task, UtilityMetric, hookimpl

if TYPE_CHECKING:
    import torch

MAX_PSNR = 100.0  # dB; the PSNR of an image whose MSE is 1e-10
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
BATCH = 512  # items per SSIM batch: bounds memory at paper scale


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


class Distortion(UtilityMetric):
    """Distance between raw and sanitized test items: MSE (primary), PSNR and SSIM for images;
    MSE, mean L1 and mean L2 distance per item for vectors."""

    name = "distortion"
    version = "1"
    description = "MSE (primary), PSNR and SSIM between raw and sanitized test images (L1/L2 for vectors)."

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        import torch

        raw = view.raw_test.images
        sanitized = view.sanitized_test.images
        if raw.shape != sanitized.shape:
            raise ValueError(f"metric 'distortion': raw test items have shape {tuple(raw.shape)} "
                             f"but sanitized ones {tuple(sanitized.shape)}")
        mse_sum, psnr_sum, ssim_sum, l1_sum, l2_sum = 0.0, 0.0, 0.0, 0.0, 0.0
        is_image = raw.dim() == 4
        with torch.no_grad():
            for start in ctx.progress(range(0, len(raw), BATCH), desc="distortion"):
                a = raw[start:start + BATCH].to(ctx.device)
                b = sanitized[start:start + BATCH].to(ctx.device)
                mse_sum += float(per_item_mse(a, b).sum())
                if is_image:
                    psnr_sum += float(psnr(a, b).sum())
                    ssim_sum += float(ssim(a, b).sum())
                else:
                    difference = (a.float() - b.float()).reshape(len(a), -1)
                    l1_sum += float(difference.abs().sum(dim=1).sum())
                    l2_sum += float(difference.norm(dim=1).sum())
        n = max(1, len(raw))
        values = [MetricValue("mse", mse_sum / n, better="lower", role="distortion", primary=True)]
        if is_image:
            values += [MetricValue("psnr", psnr_sum / n, better="higher", role="distortion"),
                       MetricValue("ssim", ssim_sum / n, better="higher", role="distortion")]
        else:
            values += [MetricValue("l1", l1_sum / n, better="lower", role="distortion"),
                       MetricValue("l2", l2_sum / n, better="lower", role="distortion")]
        for value in values:
            if not math.isfinite(value.value):
                raise ValueError(f"metric 'distortion': {value.name} is not finite ({value.value}); "
                                 f"are the sanitized items finite?")
        return values


@hookimpl
def ppbench_register_metrics(register) -> None:
    register(Distortion)
