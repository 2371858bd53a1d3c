"""UTKFace (Zhang, Song, Qi 2017) from a local folder: faces whose labels are in their file names.

``root`` is the folder the archive unpacks to (``UTKFace/`` for the aligned and cropped faces,
200×200 JPEGs), holding files named ``[age]_[gender]_[race]_[date&time].jpg`` (the aligned set
appends ``.chip.jpg``): age 0–116, gender 0 male and 1 female, race 0 White, 1 Black, 2 Asian,
3 Indian, 4 Others (the authors' coding). A few files of the published set break the pattern
(a missing race field, a gender of 3): they are skipped and counted in a note, never guessed.
Other files (not ``.jpg``) are ignored.

Attributes: ``gender``, ``race`` and ``age`` in four groups (0–19, 20–39, 40–59, 60+: the groups
of a classifier of "age group", wide enough that each holds a few thousand of the 23,708 faces).
Tasks: each attribute in turn is sensitive, the other two kept.

UTKFace has no official split: the splits are seeded draws, stratified over (gender, race, age
group) so that each split has the data's mix. A folder with fewer faces than the profile's
splits ask for shrinks every split proportionally, with a note. Images are centre-cropped to a
square (a no-op on the aligned 200×200 faces; the in-the-wild images are not square) and resized
to the profile's size (antialiased bilinear), 8-bit RGB.

The harness keys cached fits and stored results by ``root``'s path, not by the folder's contents:
after changing the files, prune the cache and use a fresh store.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ppbench import Attribute, DatasetSpec, DatasetSplits, ImageSet, Profile, Task, hookimpl

from .local_files import (SIZE_PARAMS, assemble, check_crop, deal, file_stamp, fit_sizes,
                          image_size, label_tensors, list_files, read_images, requested_sizes,
                          require_root, rng, root_revision)

if TYPE_CHECKING:
    import numpy as np

NAME = "utkface"
PATTERN = "[age]_[gender]_[race]_[date&time].jpg"
EXPECTED = f"UTKFace's faces named {PATTERN}"
# The aligned and cropped faces end in ".jpg.chip.jpg"; the in-the-wild images in ".jpg".
_NAME = re.compile(r"^(\d{1,3})_(\d+)_(\d+)_(\d+)\.jpg(?:\.chip\.jpg)?$", re.IGNORECASE)
GENDERS = ("male", "female")
RACES = ("white", "black", "asian", "indian", "others")
AGE_GROUPS = ((0, 19, "0-19"), (20, 39, "20-39"), (40, 59, "40-59"), (60, 200, "60+"))
MAX_AGE = 130

ATTRIBUTES = (
    Attribute("gender", GENDERS, "UTKFace's gender field (0 male, 1 female)"),
    Attribute("race", RACES, "UTKFace's race field"),
    Attribute("age", tuple(label for _, _, label in AGE_GROUPS), "age group, from the age field"),
)
TASKS = (
    Task(NAME, "gender", "gender", ("age", "race"), "hide gender; keep age group and race"),
    Task(NAME, "age", "age", ("gender", "race"), "hide the age group; keep gender and race"),
    Task(NAME, "race", "race", ("gender", "age"), "hide race; keep gender and age group"),
)
DEFAULT_PARAMS: dict[str, Any] = {"root": None, **SIZE_PARAMS, "crop": "center"}


class Index:
    def __init__(self, root: Path, files: list[str], labels: dict[str, "np.ndarray"],
                 skipped: list[str]) -> None:
        self.root, self.files, self.labels, self.skipped = root, files, labels, skipped

    def __len__(self) -> int:
        return len(self.files)


def parse_name(name: str) -> tuple[int, int, int] | None:
    """(age, gender, race) from a file name, or None for a name that breaks the pattern."""
    match = _NAME.match(name)
    if not match:
        return None
    age, gender, race = (int(match.group(i)) for i in (1, 2, 3))
    if age > MAX_AGE or gender >= len(GENDERS) or race >= len(RACES):
        return None
    return age, gender, race


def age_group(age: int) -> int:
    return next(i for i, (low, high, _) in enumerate(AGE_GROUPS) if low <= age <= high)


@lru_cache(maxsize=2)
def _index_cached(root: Path, stamp: tuple) -> Index:
    import numpy as np

    names = list_files(root, (".jpg",))
    files, rows, skipped = [], [], []
    for name in names:
        parsed = parse_name(name)
        if parsed is None:
            skipped.append(name)
        else:
            files.append(name)
            rows.append(parsed)
    if not files:
        what = f"{len(skipped)} .jpg file(s), none named so" if skipped else "no .jpg files"
        raise ValueError(f"data set {NAME!r}: {root} holds no faces named {PATTERN} "
                         f"(found {what})")
    values = np.array(rows, dtype=np.int64)
    labels = {"gender": values[:, 1], "race": values[:, 2],
              "age": np.array([age_group(a) for a in values[:, 0]], dtype=np.int64)}
    return Index(root, files, labels, skipped)


def read_index(root: Any) -> Index:
    path = require_root(NAME, root, EXPECTED).resolve()
    # The folder the archive unpacks to, or the folder holding it: either is what a user means.
    if (path / "UTKFace").is_dir() and not any(path.glob("*.jpg")):
        path = path / "UTKFace"
    return _index_cached(path, file_stamp(path))


def _plan(index: Index, profile: Profile, params: dict[str, Any]):
    sizes = fit_sizes(NAME, requested_sizes(profile, params), len(index), f"{index.root}")
    notes = [sizes.note] if sizes.note else []
    if index.skipped:
        notes.append(f"{NAME}: skipped {len(index.skipped)} file(s) of {index.root} whose names "
                     f"break {PATTERN}, e.g. {index.skipped[0]}")
    return sizes.sizes, notes


def check(profile: Profile, tasks: Sequence[Task], params: dict[str, Any]) -> list[str]:
    check_crop(NAME, params.get("crop"))
    image_size(profile, params)
    return _plan(read_index(params.get("root")), profile, params)[1]


def load(profile: Profile, seed: int, root: str | None = None, n_train: int | None = None,
         n_attack: int | None = None, n_test: int | None = None, n_aux: int | None = None,
         image_size: int | None = None, crop: str = "center") -> DatasetSplits:
    """Seeded splits, stratified over (gender, race, age group); see the module docstring."""
    from . import local_files

    params = dict(n_train=n_train, n_attack=n_attack, n_test=n_test, n_aux=n_aux,
                  image_size=image_size)
    crop = check_crop(NAME, crop)
    size = local_files.image_size(profile, params)
    index = read_index(root)
    sizes, _ = _plan(index, profile, params)
    labels = index.labels
    strata = (labels["gender"] * len(RACES) + labels["race"]) * len(AGE_GROUPS) + labels["age"]
    dealt = deal(strata, sizes, rng(seed, 1), dataset=NAME)
    attributes = {a.name: a for a in ATTRIBUTES}
    splits = {}
    for split, chosen in dealt.items():
        images = read_images([index.root / index.files[i] for i in chosen], size, crop=crop,
                             dataset=NAME)
        splits[split] = ImageSet(images, label_tensors(labels, chosen), dict(attributes))
    return assemble(splits)


@hookimpl
def ppbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name=NAME,
        description="UTKFace from a local folder (root): gender, race and age group from the "
                    "file names; seeded stratified splits",
        load=load,
        attributes=ATTRIBUTES,
        tasks=TASKS,
        kind="image",
        params=dict(DEFAULT_PARAMS),
        version="1",
        check=check,
        revision=root_revision,
    ))
