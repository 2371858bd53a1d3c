"""CelebA (Liu et al. 2015) from a local folder in its published layout, as two data sets.

The folder (``root``) holds what the authors publish::

    img_align_celeba/000001.jpg ... 202599.jpg   aligned faces, 178×218 JPEGs
    list_attr_celeba.txt      line 1: the image count; line 2: the 40 attribute names;
                              then "000001.jpg -1  1  1 -1 ..." (1 = yes, -1 = no)
    list_eval_partition.txt   "000001.jpg 0" (0 train, 1 validation, 2 test)
    identity_CelebA.txt       "000001.jpg 2880" (the person shown)

Every image listed in ``list_attr_celeba.txt`` must have a partition, an identity and its JPEG; a
missing file, a short row or a value other than ±1 is one error naming the file and line. The 40
attributes are labelled under their CelebA names in lower case (``smiling``, ``male``,
``wearing_lipstick``...), classes ``no``/``yes``.

**celeba** (the attribute tasks) follows the official partition, which is identity-disjoint:

- ``train`` (the sanitizer fits here) and ``aux`` (an attacker's public raw data) are disjoint
  seeded draws from partition 0, the official training set;
- ``attack`` (the adversary trains on it, sanitized) is a seeded draw from partition 1
  (validation) and ``test`` one from partition 2 (test): nobody the sanitizer was fitted on is
  attacked or scored, as in the official protocol.

A partition with fewer images than its splits ask for (at the ``standard`` profile the attack
split asks 20,000 of validation's 19,867) shrinks those splits proportionally and says so; the
other splits keep their sizes.

Its tasks are Martinsson et al.'s (REFERENCE.md; papers/martinsson2020-synthetic-replacement.md,
section 4): each of their seven attributes (gender, lipstick, age, high cheekbones, mouth slightly
open, heavy makeup, smiling) in turn is the sensitive one and "the rest will be considered the
utility attributes". This plugin registers the four sensitive attributes REFERENCE.md lists,
smiling, male, young and lipstick, each keeping the other six. Several kept attributes are strong
proxies (in CelebA lipstick and heavy makeup go with gender; high cheekbones and an open mouth
with a smile): the paper keeps them, and each board states the leakage floor they set.

**celeba-identities** (the identity task) is closed-set re-identification, which the official
partition cannot give (its partitions share nobody): the data set is the images of the
``n_identities`` people with the most images (ties: the lower identity number; 100 people hold
about 3,000 images), and every split takes its share of each person's images (seeded), so that
everyone appears in the attack and the test split, as synthfaces' identity task has it. Its
task hides who is shown and keeps the per-image attributes: smiling, mouth slightly open, high
cheekbones, eyeglasses (male and the like are traits of the person, so keeping them would keep
part of the identity).

Preprocessing: Martinsson et al. "resize all images to 64x64" and normalise to [0, 1]; they do not
say how the 178×218 aligned faces become square (their code is not public). The default here
crops the central 178×178 square (the full width, the face centred as the alignment places it)
and resizes it to the profile's size with an antialiased bilinear filter, which keeps the face's
aspect ratio; ``crop = "none"`` resizes the whole image instead, the paper's words read
literally (faces squeezed vertically). Pixels stay 8-bit values, as decoded.

Caching: the harness keys cached fits and stored results by the parameters, so by ``root``'s
path, not by the folder's contents: after changing the files under a root, prune the cache
(``ppbench cache prune``) and use a fresh store.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ppbench import Attribute, DatasetSpec, DatasetSplits, ImageSet, Profile, Task, hookimpl

from .local_files import (SIZE_PARAMS, assemble, check_crop, deal, file_stamp, fit_sizes,
                          image_size, label_tensors, read_images, requested_sizes, require_root,
                          rng, root_revision)

if TYPE_CHECKING:
    import numpy as np

NAME = "celeba"
IDENTITIES_NAME = "celeba-identities"
IMAGES = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
EXPECTED = f"{IMAGES}/, {ATTR_FILE}, {PARTITION_FILE} and {IDENTITY_FILE}"

# CelebA's 40 attributes, in the order of list_attr_celeba.txt.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
ATTRIBUTE_NAMES = tuple(name.lower() for name in CELEBA_ATTRIBUTES)
PARTITIONS = {"train": 0, "validation": 1, "test": 2}

# Martinsson et al.'s seven attributes (section 4); each task hides one and keeps the others.
MARTINSSON_ATTRIBUTES = ("male", "wearing_lipstick", "young", "high_cheekbones",
                         "mouth_slightly_open", "heavy_makeup", "smiling")


def _martinsson_task(name: str, sensitive: str, description: str) -> Task:
    return Task(NAME, name, sensitive, tuple(a for a in MARTINSSON_ATTRIBUTES if a != sensitive),
                description)


TASKS = (
    _martinsson_task("smiling", "smiling", "hide the smile; keep Martinsson et al.'s other six"),
    _martinsson_task("male", "male", "hide gender; keep Martinsson et al.'s other six"),
    _martinsson_task("young", "young", "hide age; keep Martinsson et al.'s other six"),
    _martinsson_task("lipstick", "wearing_lipstick",
                     "hide lipstick; keep Martinsson et al.'s other six"),
)
IDENTITY_UTILITY = ("smiling", "mouth_slightly_open", "high_cheekbones", "eyeglasses")
IDENTITY_TASKS = (
    Task(IDENTITIES_NAME, "identity", "identity", IDENTITY_UTILITY,
         "hide who is shown (closed set); keep the per-image expression attributes and glasses"),
)

DEFAULT_PARAMS: dict[str, Any] = {"root": None, **SIZE_PARAMS, "crop": "center"}
IDENTITY_PARAMS: dict[str, Any] = {"root": None, "n_identities": 100, **SIZE_PARAMS,
                                   "crop": "center"}


def _binary_attributes() -> tuple[Attribute, ...]:
    return tuple(Attribute(name, ("no", "yes"), f"CelebA's {original} annotation")
                 for name, original in zip(ATTRIBUTE_NAMES, CELEBA_ATTRIBUTES))


def _identity_attribute(identities: Sequence[int]) -> Attribute:
    return Attribute("identity", tuple(str(i) for i in identities),
                     "the person shown (CelebA identity numbers)")


# --- the label files -----------------------------------------------------------------------------


class Index:
    """The parsed label files: one entry per listed image, in list_attr_celeba.txt's order."""

    def __init__(self, root: Path, files: list[str], attributes: "np.ndarray",
                 partition: "np.ndarray", identity: "np.ndarray") -> None:
        self.root = root
        self.files = files
        self.attributes = attributes  # N×40 uint8, 1 = yes, columns in ATTRIBUTE_NAMES order
        self.partition = partition  # N int64 in 0..2
        self.identity = identity  # N int64, CelebA's identity numbers

    def __len__(self) -> int:
        return len(self.files)

    def paths(self, index: "np.ndarray") -> list[Path]:
        folder = self.root / IMAGES
        return [folder / self.files[i] for i in index]


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not an ASCII text file ({exc.reason} at byte {exc.start})") from None


def _parse_attributes(path: Path) -> tuple[list[str], "np.ndarray"]:
    import numpy as np

    lines = _lines(path)
    if len(lines) < 2:
        raise ValueError(f"{path}: expected the image count on line 1 and the attribute names on "
                         f"line 2, found {len(lines)} line(s)")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise ValueError(f"{path}: line 1 must be the image count, found {lines[0].strip()[:40]!r}") from None
    names = lines[1].split()
    missing = [a for a in CELEBA_ATTRIBUTES if a not in names]
    if missing or len(names) != len(set(names)):
        problem = (f"lacks {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}" if missing
                   else "repeats a name")
        raise ValueError(f"{path}: line 2 must name CelebA's 40 attributes; it {problem}")
    order = [names.index(a) for a in CELEBA_ATTRIBUTES]
    numbered = [(number, line) for number, line in enumerate(lines[2:], start=3) if line.strip()]
    if len(numbered) != count:
        raise ValueError(f"{path}: line 1 announces {count} images, {len(numbered)} rows follow")
    width = len(names) + 1
    values = _fast_values(path, count, width)
    if values is None:  # something is malformed: find the first bad line, to name it
        for number, line in numbered:
            fields = line.split()
            if len(fields) != width:
                raise ValueError(f"{path}: line {number}: expected a file name and {len(names)} "
                                 f"values, found {len(fields)} field(s)")
            if any(v not in ("1", "-1") for v in fields[1:]):
                raise ValueError(f"{path}: line {number}: attribute values must be 1 or -1")
        raise ValueError(f"{path}: does not parse as CelebA's attribute table")
    files, values = values
    if len(set(files)) != len(files):
        raise ValueError(f"{path}: an image is listed twice")
    return files, (values[:, order] == 1).astype(np.uint8)


def _fast_values(path: Path, count: int, width: int) -> tuple[list[str], "np.ndarray"] | None:
    """(file names, N×40 values) read by pandas' C parser (202,599 rows in well under a second,
    where splitting each line in Python takes seconds); None when anything is off."""
    import numpy as np
    import pandas as pd

    try:
        frame = pd.read_csv(path, sep=r"\s+", skiprows=2, header=None, dtype={0: str},
                            encoding="ascii")
    except (pd.errors.ParserError, ValueError):
        return None
    if frame.shape != (count, width):
        return None
    values = frame.iloc[:, 1:].to_numpy()
    if values.dtype.kind not in "iu" or not ((values == 1) | (values == -1)).all():
        return None
    return frame[0].tolist(), values.astype(np.int8)


def _parse_pairs(path: Path, what: str) -> dict[str, int]:
    pairs: dict[str, int] = {}
    for number, line in enumerate(_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"{path}: line {number}: expected an image name and its {what}, "
                             f"found {line.strip()[:60]!r}")
        try:
            pairs[fields[0]] = int(fields[1])
        except ValueError:
            raise ValueError(f"{path}: line {number}: the {what} must be an integer, "
                             f"found {fields[1][:20]!r}") from None
    return pairs


def _require_files(root: Path, dataset: str = NAME) -> tuple[Path, Path, Path, Path]:
    paths = (root / IMAGES, root / ATTR_FILE, root / PARTITION_FILE, root / IDENTITY_FILE)
    missing = [p.name + ("/" if p.name == IMAGES else "") for p in paths
               if not (p.is_dir() if p.name == IMAGES else p.is_file())]
    if missing:
        hint = ""
        nested = [child for child in ("celeba", "CelebA") if (root / child / ATTR_FILE).is_file()]
        if nested:
            hint = f"; {root / nested[0]} holds them: pass that folder"
        raise ValueError(f"data set {dataset!r}: {root} lacks {', '.join(missing)} (expected "
                         f"CelebA's published layout: {EXPECTED}){hint}")
    return paths


@lru_cache(maxsize=2)
def _index_cached(root: Path, stamp: tuple) -> Index:
    import numpy as np

    images, attr_path, partition_path, identity_path = _require_files(root)
    files, attributes = _parse_attributes(attr_path)
    partitions = _parse_pairs(partition_path, "partition")
    identities = _parse_pairs(identity_path, "identity")
    for pairs, path in ((partitions, partition_path), (identities, identity_path)):
        lacking = [f for f in files if f not in pairs]
        if lacking or len(pairs) != len(files):
            extra = next((f for f in pairs if f not in set(files)), None) if not lacking else None
            detail = (f"lacks {len(lacking)} of the images {ATTR_FILE} lists, e.g. {lacking[0]}"
                      if lacking else f"lists {extra}, which {ATTR_FILE} does not")
            raise ValueError(f"{path}: {detail}")
    partition = np.array([partitions[f] for f in files], dtype=np.int64)
    if not np.isin(partition, (0, 1, 2)).all():
        bad = files[int(np.flatnonzero(~np.isin(partition, (0, 1, 2)))[0])]
        raise ValueError(f"{partition_path}: {bad}: the partition must be 0 (train), 1 "
                         f"(validation) or 2 (test)")
    identity = np.array([identities[f] for f in files], dtype=np.int64)
    present = set(_listdir(images))
    absent = [f for f in files if f not in present]
    if absent:
        raise ValueError(f"{images} lacks {len(absent)} of the {len(files)} images {ATTR_FILE} "
                         f"lists, e.g. {absent[0]}")
    return Index(root, files, attributes, partition, identity)


def _listdir(folder: Path) -> list[str]:
    import os

    with os.scandir(folder) as entries:
        return [e.name for e in entries]


def read_index(root: Any, dataset: str = NAME) -> Index:
    """The label files under ``root``, checked (every listed image present); kept per process
    until one of the files changes."""
    path = require_root(dataset, root, EXPECTED).resolve()
    _require_files(path, dataset)
    stamp = file_stamp(path / IMAGES, path / ATTR_FILE, path / PARTITION_FILE, path / IDENTITY_FILE)
    return _index_cached(path, stamp)


# --- celeba: the official partition --------------------------------------------------------------


def _official_plan(index: Index, profile: Profile, params: dict[str, Any]) -> tuple[dict, list[str]]:
    """Per split, the seeded draw's pool and size; and the notes on shrunk splits."""
    import numpy as np

    requested = requested_sizes(profile, params)
    pools = {"partition 0 (train)": (("train", "aux"), 0),
             "partition 1 (validation)": (("attack",), 1),
             "partition 2 (test)": (("test",), 2)}
    plan, notes = {}, []
    for pool, (splits, number) in pools.items():
        members = np.flatnonzero(index.partition == number)
        sizes = fit_sizes(NAME, {s: requested[s] for s in splits}, len(members), pool)
        if sizes.note:
            notes.append(sizes.note)
        plan[pool] = (members, sizes.sizes)
    return plan, notes


def _labels(index: Index) -> dict[str, "np.ndarray"]:
    return {name: index.attributes[:, column] for column, name in enumerate(ATTRIBUTE_NAMES)}


def check(profile: Profile, tasks: Sequence[Task], params: dict[str, Any]) -> list[str]:
    check_crop(NAME, params.get("crop"))
    image_size(profile, params)
    return _official_plan(read_index(params.get("root")), profile, params)[1]


def load(profile: Profile, seed: int, root: str | None = None, n_train: int | None = None,
         n_attack: int | None = None, n_test: int | None = None, n_aux: int | None = None,
         image_size: int | None = None, crop: str = "center") -> DatasetSplits:
    """The official partition's splits (see the module docstring)."""
    from . import local_files

    params = dict(n_train=n_train, n_attack=n_attack, n_test=n_test, n_aux=n_aux,
                  image_size=image_size)
    crop = check_crop(NAME, crop)
    size = local_files.image_size(profile, params)
    index = read_index(root)
    plan, _ = _official_plan(index, profile, params)
    labels = _labels(index)
    attributes = {a.name: a for a in _binary_attributes()}
    splits: dict[str, ImageSet] = {}
    for stream, (members, sizes) in enumerate(plan.values()):
        # One generator per pool: a pool's draw does not depend on the other pools' sizes.
        order = rng(seed, 1, stream).permutation(members)
        start = 0
        for split, n in sizes.items():
            chosen = order[start:start + n]
            start += n
            images = read_images(index.paths(chosen), size, crop=crop, dataset=NAME)
            splits[split] = ImageSet(images, label_tensors(labels, chosen), dict(attributes))
    return assemble(splits)


# --- celeba-identities: a closed set of people ---------------------------------------------------


def _chosen_identities(index: Index, n_identities: Any) -> tuple["np.ndarray", "np.ndarray"]:
    """(the chosen identity numbers, sorted; the indices of their images)."""
    import numpy as np

    values, counts = np.unique(index.identity, return_counts=True)
    if isinstance(n_identities, bool) or not isinstance(n_identities, int) or n_identities < 2:
        raise ValueError(f"data set {IDENTITIES_NAME!r}: n_identities must be an integer of at "
                         f"least 2, got {n_identities!r}")
    if n_identities > len(values):
        raise ValueError(f"data set {IDENTITIES_NAME!r}: n_identities = {n_identities}, but "
                         f"{index.root / IDENTITY_FILE} names only {len(values)} people")
    # Most images first; among equals the lower identity number (np.unique sorts the values).
    order = np.lexsort((values, -counts))
    chosen = np.sort(values[order[:n_identities]])
    return chosen, np.flatnonzero(np.isin(index.identity, chosen))


def _identity_plan(index: Index, profile: Profile, params: dict[str, Any]):
    chosen, members = _chosen_identities(index, params.get("n_identities"))
    sizes = fit_sizes(IDENTITIES_NAME, requested_sizes(profile, params), len(members),
                      f"the images of its {len(chosen)} people")
    return chosen, members, sizes


def check_identities(profile: Profile, tasks: Sequence[Task], params: dict[str, Any]) -> list[str]:
    import numpy as np

    check_crop(IDENTITIES_NAME, params.get("crop"))
    image_size(profile, params)
    index = read_index(params.get("root"), IDENTITIES_NAME)
    chosen, members, sizes = _identity_plan(index, profile, params)
    # The deal itself is cheap (no pixels): run it, so that an identity too small to appear in
    # both the attack and the test split is reported now.
    deal(np.searchsorted(chosen, index.identity[members]), sizes.sizes, rng(0), ("attack", "test"),
         IDENTITIES_NAME, "identity", [str(i) for i in chosen])
    return [sizes.note] if sizes.note else []


def load_identities(profile: Profile, seed: int, root: str | None = None, n_identities: int = 100,
                    n_train: int | None = None, n_attack: int | None = None,
                    n_test: int | None = None, n_aux: int | None = None,
                    image_size: int | None = None, crop: str = "center") -> DatasetSplits:
    """The images of the ``n_identities`` people with the most, every split holding its share of
    each person's images (see the module docstring)."""
    import numpy as np

    from . import local_files

    params = dict(n_identities=n_identities, n_train=n_train, n_attack=n_attack, n_test=n_test,
                  n_aux=n_aux, image_size=image_size)
    crop = check_crop(IDENTITIES_NAME, crop)
    size = local_files.image_size(profile, params)
    index = read_index(root, IDENTITIES_NAME)
    chosen, members, sizes = _identity_plan(index, profile, params)
    person = np.searchsorted(chosen, index.identity[members])  # 0..n-1, the class index
    dealt = deal(person, sizes.sizes, rng(seed, 2), ("attack", "test"), IDENTITIES_NAME,
                 "identity", [str(i) for i in chosen])
    labels = {**_labels(index), "identity": np.zeros(len(index), dtype=np.int64)}
    labels["identity"][members] = person
    attributes = {a.name: a for a in (*_binary_attributes(), _identity_attribute(chosen))}
    splits = {}
    for split, positions in dealt.items():
        chosen_items = members[positions]
        images = read_images(index.paths(chosen_items), size, crop=crop, dataset=IDENTITIES_NAME)
        splits[split] = ImageSet(images, label_tensors(labels, chosen_items), dict(attributes))
    return assemble(splits)


@hookimpl
def ppbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name=NAME,
        description="CelebA from a local folder (root): 40 attributes, official partition; "
                    "Martinsson et al.'s attribute tasks",
        load=load,
        attributes=_binary_attributes(),
        tasks=TASKS,
        kind="image",
        params=dict(DEFAULT_PARAMS),
        version="1",
        check=check,
        revision=root_revision,
    ))
    register(DatasetSpec(
        name=IDENTITIES_NAME,
        description="CelebA from a local folder (root), the n_identities people with the most "
                    "images: closed-set identity task",
        load=load_identities,
        attributes=(*_binary_attributes(),
                    _identity_attribute(range(IDENTITY_PARAMS["n_identities"]))),
        tasks=IDENTITY_TASKS,
        kind="image",
        params=dict(IDENTITY_PARAMS),
        version="1",
        check=check_identities,
        revision=root_revision,
    ))
