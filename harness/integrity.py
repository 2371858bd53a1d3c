"""Fingerprints of the tensors the harness lends to plugins, so that no plugin can change another
cell's inputs unnoticed.

The raw splits are loaded once per process and the sanitized splits once per job; every fit and
every cell borrows them. Copying them for each plugin would double the memory of a standard-profile
run, so the harness seals them instead: a BLAKE2 digest of every image and label tensor, taken
when they are loaded and compared after each fit and cell. A plugin that wrote into them fails
its own cell, and the job reloads clean copies before the next one, so the damage stops there.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .data import ImageSet

if TYPE_CHECKING:
    import torch


def tensor_digest(tensor: "torch.Tensor") -> str:
    """A digest of the tensor's dtype, shape and bytes (CPU tensors; about 1 GB/s)."""
    import torch

    data = tensor.detach()
    if data.device.type != "cpu":
        data = data.cpu()
    data = data.contiguous()
    digest = hashlib.blake2b(f"{data.dtype}{tuple(data.shape)}".encode(), digest_size=16)
    if data.numel():
        digest.update(data.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _image_set_digests(name: str, split: "ImageSet | Mapping[str, torch.Tensor]") -> dict[str, str]:
    if isinstance(split, Mapping):  # named per-item tensors, such as a sanitizer's records
        return {f"{name} '{key}'": tensor_digest(values) for key, values in split.items()}
    digests = {f"{name} images": tensor_digest(split.images)}
    for attribute, labels in split.labels.items():
        digests[f"{name} labels '{attribute}'"] = tensor_digest(labels)
    return digests


class Seal:
    """The digests of some named image sets (or mappings of named tensors), and what has changed
    since they were taken."""

    def __init__(self, splits: Iterable[tuple[str, Any]]) -> None:
        self.digests: dict[str, str] = {}
        for name, split in splits:
            if split is not None:
                self.digests.update(_image_set_digests(name, split))

    def changed(self, splits: Iterable[tuple[str, Any]]) -> list[str]:
        """The tensors (e.g. ``"raw train images"``) whose contents differ from the seal's."""
        now = Seal(splits).digests
        return [name for name, digest in self.digests.items() if now.get(name) != digest]


def describe_tampering(source: str, changed: list[str], during: str) -> str:
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return (f"{source} modified data lent to it during {during} ({shown}); the harness lends "
            f"its inputs read-only: copy a tensor (x.clone()) before changing it. Its result "
            f"is discarded and clean data is reloaded for the cells that follow")


def named_splits(raw: Mapping[str, ImageSet | None], prefix: str) -> list[tuple[str, ImageSet | None]]:
    return [(f"{prefix} {name}", split) for name, split in raw.items()]
