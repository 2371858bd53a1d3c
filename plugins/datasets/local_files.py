"""What the data sets read from local files share: the ``root`` parameter, split sizes, seeded
splits and image decoding.

- **root**: a loader parameter with no default that silently works: a missing one, or a folder
  without the expected files, is a ``ValueError`` with one line naming the data set, the path
  and what was expected. The harness calls each data set's ``check`` before any work and turns
  that error into a one-line spec error (``ppbench.runner.run``).
- **Sizes**: the profile's ``n_train``, ``n_attack``, ``n_test`` and ``n_aux`` unless the
  ``[dataset]`` table sets them. A folder with fewer usable images than the splits ask for
  shrinks every split of that pool by the same factor (the profile's proportions are kept) and
  says so in a note; splits never overlap and never repeat an item.
- **Splits** are drawn by :func:`deal`: seeded, stratified over a grouping (identity,
  character × expression, digit...), so that each split holds every group in proportion, and,
  for closed-set identity tasks, each group appears in the attack and the test split.
- **Images** (:func:`read_images`) are decoded with PIL, centre-cropped to a square (unless
  ``crop = "none"``), resized with an antialiased bilinear filter and returned as float32 in
  [0, 1] holding 8-bit values (k/255), as every decoded photograph does. JPEGs are decoded at a
  reduced DCT scale when the target is much smaller than the file (``Image.draft``), still at
  least the target size, which makes loading thousands of them take seconds.

Nothing is cached outside the harness's own in-memory data cache; the label files' parse is kept
per process, keyed by the files' sizes and modification times.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ppbench import DatasetSplits, ImageSet, Profile

if TYPE_CHECKING:
    import numpy as np
    import torch

SPLITS = ("train", "attack", "test", "aux")
CROPS = ("center", "none")
# The fewest items a split may hold after scaling: below this the trained attacks and metrics
# (which carve a validation split from their own data) have nothing to learn from.
MIN_SPLIT_ITEMS = 2

SIZE_PARAMS: dict[str, Any] = {"n_train": None, "n_attack": None, "n_test": None, "n_aux": None,
                               "image_size": None}


def require_root(dataset: str, root: Any, expected: str) -> Path:
    """``root`` as an existing folder; else one line saying how to give it and what it holds."""
    if root is None or (isinstance(root, str) and not root.strip()):
        raise ValueError(f"data set {dataset!r} reads a local folder: set root = \"/path/to/it\" "
                         f"in the benchmark spec's [dataset] table, or pass --dataset "
                         f"{dataset}:root=/path/to/it (the folder holding {expected})")
    if not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"data set {dataset!r}: root must be a folder path, got {root!r}")
    path = Path(root).expanduser()
    if not path.exists():
        raise ValueError(f"data set {dataset!r}: root {path} does not exist (expected a folder "
                         f"holding {expected})")
    if not path.is_dir():
        raise ValueError(f"data set {dataset!r}: root {path} is not a folder (expected a folder "
                         f"holding {expected})")
    return path


def root_revision(params: Mapping[str, Any]) -> str:
    """``DatasetSpec.revision`` of a data set read from the folder ``root``: a digest of its files
    (ppbench.data_revision), so that edited files are never answered from the cache."""
    from ppbench.data_revision import folder_digest

    return folder_digest(Path(params["root"]).expanduser())


def file_stamp(*paths: Path) -> tuple:
    """What changes when one of ``paths`` is rewritten: the key of a per-process parse cache."""
    stamp = []
    for path in paths:
        info = path.stat()
        stamp.append((str(path.resolve()), info.st_size, info.st_mtime_ns))
    return tuple(stamp)


# --- sizes ---------------------------------------------------------------------------------------


def requested_sizes(profile: Profile, params: Mapping[str, Any]) -> dict[str, int]:
    """The split sizes asked for: the ``[dataset]`` table's, else the profile's."""
    sizes = {}
    for split in SPLITS:
        value = params.get(f"n_{split}")
        value = getattr(profile, f"n_{split}") if value is None else value
        # aux is optional (0: none, and the attacks that need it are n/a); the others are not.
        least = 0 if split == "aux" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"n_{split} must be an integer of at least {least}, got {value!r}")
        sizes[split] = int(value)
    return sizes


def assemble(splits: Mapping[str, ImageSet]) -> DatasetSplits:
    """The loaded splits; an empty aux split is no aux split (``n_aux = 0``)."""
    aux = splits.get("aux")
    return DatasetSplits(train=splits["train"], attack=splits["attack"], test=splits["test"],
                         aux=aux if aux is not None and len(aux) else None)


def image_size(profile: Profile, params: Mapping[str, Any], native: int | None = None) -> int:
    """The side of the square images: the ``[dataset]`` table's, else the profile's, capped at a
    data set's ``native`` resolution (upsampling adds no information, only cost)."""
    value = params.get("image_size")
    if value is None:
        value = profile.image_size if native is None else min(profile.image_size, native)
    if isinstance(value, bool) or not isinstance(value, int) or value < 4:
        raise ValueError(f"image_size must be an integer of at least 4 pixels, got {value!r}")
    return int(value)


def check_crop(dataset: str, crop: Any) -> str:
    if crop not in CROPS:
        raise ValueError(f"data set {dataset!r}: crop must be one of {', '.join(CROPS)}, got {crop!r}")
    return crop


@dataclass(frozen=True)
class Sizes:
    """The sizes a pool of items gives its splits, and the note that says when they shrank."""

    sizes: dict[str, int]
    note: str = ""


def fit_sizes(dataset: str, requested: Mapping[str, int], available: int, pool: str) -> Sizes:
    """``requested`` sizes, each scaled by ``available / sum(requested)`` (rounded down) when the
    pool holds fewer items than their sum, so that the splits keep the profile's proportions."""
    total = sum(requested.values())
    if total <= available:
        return Sizes(dict(requested))
    factor = available / total
    sizes = {split: int(math.floor(n * factor)) for split, n in requested.items()}
    small = [split for split, n in sizes.items() if requested[split] > 0 and n < MIN_SPLIT_ITEMS]
    if small:
        raise ValueError(
            f"data set {dataset!r}: {pool} holds {available} usable image(s), too few for the "
            f"{', '.join(requested)} split(s) ({total} asked for): the {small[0]} split would get "
            f"{sizes[small[0]]} (at least {MIN_SPLIT_ITEMS} needed)")
    asked = ", ".join(f"{split} {requested[split]}" for split in requested)
    given = ", ".join(f"{split} {sizes[split]}" for split in sizes)
    return Sizes(sizes, f"{dataset}: {pool} holds {available} usable images, fewer than the "
                        f"{total} asked for ({asked}); every split scaled by {factor:.3f} to {given}")


# --- splits --------------------------------------------------------------------------------------


def rng(seed: int, *stream: int) -> "np.random.Generator":
    import numpy as np

    return np.random.default_rng([int(seed) % 2**63, *stream])


def deal(groups: "np.ndarray", sizes: Mapping[str, int], generator: "np.random.Generator",
         cover: Sequence[str] = (), dataset: str = "", group_name: str = "group",
         group_labels: Sequence[str] | None = None) -> dict[str, "np.ndarray"]:
    """Disjoint item indices for each split, stratified over ``groups`` (one group id per item).

    Each split takes from each group its share ``n_split / n_items`` of the group's items (items
    beyond the splits' total are left out in the same proportion): the floor of that share, then
    the splits' remaining items one per group, to the groups whose share was cut most. Every
    split in ``cover`` gets at least one item of every group with at least ``len(cover)`` items
    (closed-set re-identification needs each identity in the attack and the test split); a
    group too small for that is an error naming it. Items are drawn at random within each group
    and each split comes out shuffled.
    """
    import numpy as np

    groups = np.asarray(groups)
    n = len(groups)
    names = list(sizes)
    counts = np.array([int(sizes[s]) for s in names] + [n - sum(int(v) for v in sizes.values())])
    if counts[-1] < 0:
        raise ValueError(f"data set {dataset!r}: {sum(sizes.values())} items asked of {n}")
    values, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(values))]
    members = [generator.permutation(m) for m in members]
    m = np.array([len(x) for x in members])
    expected = m[:, None] * counts[None, :] / max(n, 1)
    quota = np.floor(expected).astype(np.int64)
    cover_columns = [names.index(s) for s in cover]
    if cover_columns:
        too_small = np.flatnonzero(m < len(cover_columns))
        if len(too_small):
            g = too_small[0]
            label = group_labels[g] if group_labels is not None else str(values[g])
            raise ValueError(
                f"data set {dataset!r}: {group_name} {label} has {m[g]} item(s), fewer than the "
                f"{len(cover_columns)} needed to appear in each of the {' and '.join(cover)} splits")
    for column in cover_columns:
        for g in np.flatnonzero(quota[:, column] == 0):
            quota[g, column] = 1
            if quota[g].sum() > m[g]:
                # No item of the group is free: take one from its unused share, else from its
                # largest share of another split (a covered split keeps at least one).
                donors = [c for c in range(len(counts))
                          if c != column and quota[g, c] > (1 if c in cover_columns else 0)]
                donor = len(counts) - 1 if len(counts) - 1 in donors else max(
                    donors, key=lambda c: (quota[g, c], -c))
                quota[g, donor] -= 1
        excess = int(quota[:, column].sum() - counts[column])
        if excess > int(np.maximum(quota[:, column] - 1, 0).sum()):
            raise ValueError(
                f"data set {dataset!r}: the {names[column]} split ({counts[column]} items) cannot "
                f"hold one item of each of the {len(values)} {group_name}s")
        while excess > 0:  # give back where the split holds most beyond its share
            over = np.where(quota[:, column] > 1, quota[:, column] - expected[:, column], -np.inf)
            quota[int(np.argmax(over)), column] -= 1
            excess -= 1
    # The remainders: one item per group and pass, to the groups whose share was cut most; the
    # unused column (last) takes what is left.
    tiebreak = generator.random(len(values))  # equal shortfalls: a seeded order, not the first
    for column in range(len(counts) - 1):
        missing = counts[column] - quota[:, column].sum()
        while missing > 0:
            candidates = np.flatnonzero(m - quota.sum(axis=1) > 0)
            # Free items always suffice: the unused share never exceeds its floor.
            assert len(candidates), "no free items left for the remainder"
            shortfall = expected[candidates, column] - quota[candidates, column]
            order = candidates[np.lexsort((tiebreak[candidates], -shortfall))]
            for g in order[:missing]:
                quota[g, column] += 1
            missing = counts[column] - quota[:, column].sum()
    quota[:, -1] = m - quota[:, :-1].sum(axis=1)
    assert (quota >= 0).all() and (quota[:, :-1].sum(axis=0) == counts[:-1]).all()
    out: dict[str, list] = {s: [] for s in names}
    for g, items in enumerate(members):
        start = 0
        for column, split in enumerate(names):
            out[split].append(items[start:start + quota[g, column]])
            start += quota[g, column]
    return {split: generator.permutation(np.concatenate(parts)) if parts else np.empty(0, np.int64)
            for split, parts in out.items()}


# --- images --------------------------------------------------------------------------------------


def _decode(path: Path, size: int, mode: str, crop: str) -> "np.ndarray":
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        if image.format == "JPEG":
            width, height = image.size
            side = min(width, height) if crop == "center" else None
            # The smallest DCT scale that keeps the cropped square (or the whole image, for
            # crop "none") at least `size` pixels wide and high.
            want = ((math.ceil(size * width / side), math.ceil(size * height / side)) if side
                    else (size, size))
            image.draft(mode, want)
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            # Transparent pixels carry arbitrary colours: composite them on white, as a viewer
            # shows them.
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        image = image.convert(mode)
        if crop == "center":
            width, height = image.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            image = image.crop((left, top, left + side, top + side))
        image = image.resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def read_images(paths: Sequence[Path], size: int, *, mode: str = "RGB", crop: str = "center",
                dataset: str = "") -> "torch.Tensor":
    """N×C×size×size float32 in [0, 1] (8-bit values), C = 3 for ``RGB`` and 1 for ``L``. An
    unreadable file is one line naming it."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    channels = 3 if mode == "RGB" else 1
    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            out[i] = _decode(path, size, mode, crop)
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
            raise ValueError(f"data set {dataset!r}: {path}: not a readable image "
                             f"({type(exc).__name__}: {exc})") from None
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(torch.float32).div_(255)


def label_tensors(labels: Mapping[str, "np.ndarray"], index: "np.ndarray") -> dict[str, "torch.Tensor"]:
    import numpy as np
    import torch

    return {name: torch.from_numpy(np.asarray(values)[index].astype(np.int64))
            for name, values in labels.items()}


def list_files(folder: Path, suffixes: Iterable[str]) -> list[str]:
    """Names of the plain files in ``folder`` whose name ends (case-insensitively) with one of
    ``suffixes``, sorted."""
    endings = tuple(s.lower() for s in suffixes)
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries
                      if e.name.lower().endswith(endings) and e.is_file())
