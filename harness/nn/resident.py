"""A training set kept on the accelerator for a whole fit, in its most compact exact form.

Copying every mini-batch from host memory costs a GPU most of its time on the small models here
(the batch is tiny, the copy and its synchronisation are not). :func:`resident` moves the images
once, as ``uint8`` when every pixel is a multiple of 1/255 (raw synthfaces, 8-bit photographs,
blackout), else as ``float16`` when that is exact (sanitized splits are stored so,
:mod:`~ppbench.pixels`), else as float32; a batch is indexed on the device and converted there.
Batches are bit-identical to the host's float32 ones. On the CPU nothing moves.
"""

from __future__ import annotations

import torch


class ResidentImages:
    """Images on a device in a compact dtype; ``images[index]`` is a float32 batch there."""

    def __init__(self, stored: torch.Tensor, scale: float, shape: torch.Size) -> None:
        self.stored = stored
        self.scale = scale
        self.shape = shape
        self.device = stored.device

    def __len__(self) -> int:
        return self.shape[0]

    def dim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        if isinstance(index, torch.Tensor):
            index = index.to(self.device, non_blocking=True)
        batch = self.stored[index].to(torch.float32)
        return batch / self.scale if self.scale != 1.0 else batch


def compact_exactly(images: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``(stored, scale)`` with ``stored.float() / scale == images`` bit for bit."""
    if images.dtype != torch.float32:
        return images, 1.0
    as_8bit = (images * 255).round()
    if bool(((as_8bit >= 0) & (as_8bit <= 255)).all()) and torch.equal(as_8bit / 255, images):
        return as_8bit.to(torch.uint8), 255.0
    half = images.to(torch.float16)
    if torch.equal(half.to(torch.float32), images):
        return half, 1.0
    return images, 1.0


def resident(images: torch.Tensor, device: torch.device) -> torch.Tensor | ResidentImages:
    """``images`` where a fit on ``device`` reads them from (see the module's docstring)."""
    if device.type == "cpu" or images.device == device:
        return images
    stored, scale = compact_exactly(images.detach())
    return ResidentImages(stored.to(device), scale, images.shape)


def resident_targets(targets: torch.Tensor | dict[str, torch.Tensor], device: torch.device
                     ) -> torch.Tensor | dict[str, torch.Tensor]:
    if isinstance(targets, torch.Tensor):
        return targets.to(device)
    return {name: values.to(device) for name, values in targets.items()}
