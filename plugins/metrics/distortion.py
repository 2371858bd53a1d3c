"""How far sanitized test items are from the raw ones: MSE, PSNR and SSIM (L1/L2 for vectors).

The figures are :func:`ppbench.image_quality.image_quality`'s, which the reconstruction scoring
kind uses too: SSIM after Wang et al. (2004), PSNR per image capped at 100 dB.
"""

from __future__ import annotations

import math

from ppbench import Context, MetricValue, MetricView, Task, UtilityMetric, hookimpl


class Distortion(UtilityMetric):
    """Distance between raw and sanitized test items: MSE (primary), PSNR and SSIM for images;
    MSE, mean L1 and mean L2 distance per item for vectors."""

    name = "distortion"
    version = "1"
    description = "MSE (primary), PSNR and SSIM between raw and sanitized test images (L1/L2 for vectors)."

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        from ppbench.image_quality import image_quality

        raw = view.raw_test.images
        sanitized = view.sanitized_test.images
        if raw.shape != sanitized.shape:
            raise ValueError(f"metric 'distortion': raw test items have shape {tuple(raw.shape)} "
                             f"but sanitized ones {tuple(sanitized.shape)}")
        figures = image_quality(raw, sanitized, ctx, desc="distortion")
        values = [MetricValue("mse", figures["mse"], better="lower", role="distortion", primary=True)]
        values += [MetricValue(name, figures[name], better="higher" if name in ("psnr", "ssim") else "lower",
                               role="distortion") for name in figures if name != "mse"]
        for value in values:
            if not math.isfinite(value.value):
                raise ValueError(f"metric 'distortion': {value.name} is not finite ({value.value}); "
                                 f"are the sanitized items finite?")
        return values


@hookimpl
def ppbench_register_metrics(register) -> None:
    register(Distortion)
