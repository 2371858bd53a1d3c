"""FERG-DB (Aneja et al. 2016) from a local folder: six cartoon characters, seven expressions.

``root`` is ``FERG_DB_256/`` as published: one folder per character, one folder per character and
expression inside it, PNG images inside those::

    FERG_DB_256/aia/aia_anger/*.png ... FERG_DB_256/ray/ray_surprise/*.png

(characters aia, bonnie, jules, malcolm, mery, ray; expressions anger, disgust, fear, joy,
neutral, sadness, surprise: the 42 folders must all be there and hold images). Other files are
ignored. Attributes: ``identity`` (the character) and ``expression``; the tasks are PPRL-VGAN's
(Chen et al. 2018, REFERENCE.md): ``identity`` hides the character and keeps the expression, and
``expression`` the reverse.

FERG has no official split: the splits are seeded draws, stratified over the character, so
that every character appears in the attack and the test split (closed-set re-identification),
each with its share of the split. A folder with fewer images than the
profile's splits ask for shrinks every split proportionally, with a note. Images (256×256) are
resized to the profile's size (antialiased bilinear), 8-bit RGB; transparent
pixels, if a file has any, are composited on white.

The harness keys cached fits and stored results by ``root``'s path, not by the folder's contents:
after changing the files, prune the cache and use a fresh store.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ppbench import Attribute, DatasetSpec, DatasetSplits, ImageSet, Profile, Task, hookimpl

from .local_files import (SIZE_PARAMS, assemble, check_crop, deal, file_stamp, fit_sizes,
                          image_size, label_tensors, list_files, read_images, requested_sizes,
                          require_root, rng, root_revision)

if TYPE_CHECKING:
    import numpy as np

NAME = "ferg"
CHARACTERS = ("aia", "bonnie", "jules", "malcolm", "mery", "ray")
EXPRESSIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
EXPECTED = "FERG_DB_256's folders <character>/<character>_<expression>/*.png"

ATTRIBUTES = (
    Attribute("identity", CHARACTERS, "the character shown"),
    Attribute("expression", EXPRESSIONS, "FERG's seven expressions"),
)
TASKS = (
    Task(NAME, "identity", "identity", ("expression",),
         "hide the character; keep the expression (PPRL-VGAN's task)"),
    Task(NAME, "expression", "expression", ("identity",),
         "hide the expression; keep the character"),
)
DEFAULT_PARAMS: dict[str, Any] = {"root": None, **SIZE_PARAMS, "crop": "center"}


class Index:
    def __init__(self, root: Path, paths: list[Path], labels: dict[str, "np.ndarray"]) -> None:
        self.root, self.paths, self.labels = root, paths, labels

    def __len__(self) -> int:
        return len(self.paths)


def _folders(root: Path) -> list[Path]:
    return [root / c / f"{c}_{e}" for c in CHARACTERS for e in EXPRESSIONS]


@lru_cache(maxsize=2)
def _index_cached(root: Path, stamp: tuple) -> Index:
    import numpy as np

    paths, identity, expression = [], [], []
    for folder in _folders(root):
        names = list_files(folder, (".png",))
        if not names:
            raise ValueError(f"data set {NAME!r}: {folder} holds no .png images (expected "
                             f"{EXPECTED})")
        character, feeling = folder.name.split("_", 1)
        paths.extend(folder / name for name in names)
        identity.extend([CHARACTERS.index(character)] * len(names))
        expression.extend([EXPRESSIONS.index(feeling)] * len(names))
    labels = {"identity": np.array(identity, dtype=np.int64),
              "expression": np.array(expression, dtype=np.int64)}
    return Index(root, paths, labels)


def read_index(root: Any) -> Index:
    path = require_root(NAME, root, EXPECTED).resolve()
    # FERG_DB_256 itself, or the folder holding it: either is what a user means.
    if (path / "FERG_DB_256").is_dir() and not (path / CHARACTERS[0]).is_dir():
        path = path / "FERG_DB_256"
    missing = [f for f in _folders(path) if not f.is_dir()]
    if missing:
        shown = missing[0].relative_to(path)
        raise ValueError(f"data set {NAME!r}: {path} lacks {len(missing)} of the "
                         f"{len(CHARACTERS) * len(EXPRESSIONS)} folders of {EXPECTED}, e.g. "
                         f"{shown}/")
    return _index_cached(path, file_stamp(*_folders(path)))


def _plan(index: Index, profile: Profile, params: dict[str, Any]):
    sizes = fit_sizes(NAME, requested_sizes(profile, params), len(index), str(index.root))
    return sizes.sizes, [sizes.note] if sizes.note else []


def check(profile: Profile, tasks: Sequence[Task], params: dict[str, Any]) -> list[str]:
    check_crop(NAME, params.get("crop"))
    image_size(profile, params)
    index = read_index(params.get("root"))
    sizes, notes = _plan(index, profile, params)
    deal(index.labels["identity"], sizes, rng(0), ("attack", "test"), NAME, "character",
         CHARACTERS)
    return notes


def load(profile: Profile, seed: int, root: str | None = None, n_train: int | None = None,
         n_attack: int | None = None, n_test: int | None = None, n_aux: int | None = None,
         image_size: int | None = None, crop: str = "center") -> DatasetSplits:
    """Seeded splits, stratified over the character; see the module docstring."""
    from . import local_files

    params = dict(n_train=n_train, n_attack=n_attack, n_test=n_test, n_aux=n_aux,
                  image_size=image_size)
    crop = check_crop(NAME, crop)
    size = local_files.image_size(profile, params)
    index = read_index(root)
    sizes, _ = _plan(index, profile, params)
    # Every character in the attack and the test split: closed-set re-identification.
    dealt = deal(index.labels["identity"], sizes, rng(seed, 1), ("attack", "test"), NAME,
                 "character", CHARACTERS)
    attributes = {a.name: a for a in ATTRIBUTES}
    splits = {}
    for split, chosen in dealt.items():
        images = read_images([index.paths[i] for i in chosen], size, crop=crop, dataset=NAME)
        splits[split] = ImageSet(images, label_tensors(index.labels, chosen), dict(attributes))
    return assemble(splits)


@hookimpl
def ppbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name=NAME,
        description="FERG-DB from a local folder (root = FERG_DB_256): 6 characters, 7 "
                    "expressions; seeded stratified splits",
        load=load,
        attributes=ATTRIBUTES,
        tasks=TASKS,
        kind="image",
        params=dict(DEFAULT_PARAMS),
        version="1",
        check=check,
        revision=root_revision,
    ))
