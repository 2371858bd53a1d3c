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
import os
from concurrent.futures import ThreadPoolExecutor
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


def _named_tensors(name: str, split: "ImageSet | Mapping[str, torch.Tensor]") -> dict[str, Any]:
    if isinstance(split, Mapping):  # named per-item tensors, such as a sanitizer's records
        return {f"{name} '{key}'": values for key, values in split.items()}
    tensors = {f"{name} images": split.images}
    for attribute, labels in split.labels.items():
        tensors[f"{name} labels '{attribute}'"] = labels
    return tensors


class Seal:
    """The digests of some named image sets (or mappings of named tensors), and what has changed
    since they were taken."""

    def __init__(self, splits: Iterable[tuple[str, Any]]) -> None:
        tensors: dict[str, Any] = {}
        for name, split in splits:
            if split is not None:
                tensors.update(_named_tensors(name, split))
        # hashlib lets go of the GIL while it hashes a large buffer: the tensors hash in parallel.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            self.digests = dict(zip(tensors, pool.map(tensor_digest, tensors.values())))

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
