"""imagefolder: any folder of images with a CSV of their labels.

``root`` holds the images (in sub-folders or not) and, unless ``labels`` gives another path
(relative to ``root``, or absolute), ``labels.csv``: a header row, then one row per image::

    file,gender,smiling,glasses
    img/0001.jpg,female,yes,no
    img/0002.jpg,male,no,no

``file_column`` (default ``file``) holds each image's path relative to ``root``; the other
columns are categorical attributes. The benchmark spec's ``[dataset]`` table names which one is
``sensitive`` and which are kept (``utility``: a column name, a comma-separated list, or a list
of lists in TOML, since a plain list would sweep). A missing file or column, an empty value, a
row whose image is not under ``root``, or an image listed twice is one error naming the CSV and
the line or column. Images the CSV does not list are ignored.

The harness knows a task by attribute names fixed when the plugin registers, so the columns are
relabelled: ``sensitive`` is the sensitive column and ``utility`` the kept columns jointly (one
class per combination of their values that occurs, e.g. ``smiling=yes, glasses=no``): what the
kept attributes reveal about the secret (the board's leakage floor) is exactly what their joint
value reveals, and a fixed classifier of the joint value is a stricter utility test than one per
column. Each column's classes are its distinct values in sorted order (numerically when every
value is an integer); class names are the values. Tasks: ``sensitive`` hides the sensitive
column and keeps the utility columns; ``sensitive-only`` keeps nothing (utility is then
measured by distortion), for a CSV with a single label column.

Splits are seeded draws, stratified over (sensitive, utility), scaled down proportionally (with
a note) when the folder holds fewer images than the profile's splits ask for. Images are
centre-cropped to a square (``crop = "none"``: resized whole) and resized to the profile's size
with an antialiased bilinear filter; ``channels`` is 3 (RGB) or 1 (grey). Pixels are 8-bit.

The harness keys cached fits and stored results by the parameters (``root``, the CSV's path),
not by the files' contents: after changing them, prune the cache and use a fresh store.
"""

from __future__ import annotations

import csv
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ppbench import Attribute, DatasetSpec, DatasetSplits, ImageSet, Profile, Task, hookimpl

from .local_files import (SIZE_PARAMS, assemble, check_crop, deal, file_stamp, fit_sizes,
                         image_size, label_tensors, read_images, requested_sizes, require_root,
                         rng)

if TYPE_CHECKING:
    import numpy as np

NAME = "imagefolder"
EXPECTED = "the images and the labels CSV (a column 'file' and one per attribute)"
NO_UTILITY = "(none)"

ATTRIBUTES = (
    Attribute("sensitive", ("0", "1"), "the CSV column named by the `sensitive` parameter"),
    Attribute("utility", ("0", "1"), "the CSV columns named by `utility`, jointly"),
)
TASKS = (
    Task(NAME, "sensitive", "sensitive", ("utility",),
         "hide the `sensitive` column; keep the `utility` columns"),
    Task(NAME, "sensitive-only", "sensitive", (),
         "hide the `sensitive` column; keep nothing but the image (distortion)"),
)
DEFAULT_PARAMS: dict[str, Any] = {"root": None, "labels": "labels.csv", "file_column": "file",
                                  "sensitive": None, "utility": None, **SIZE_PARAMS,
                                  "crop": "center", "channels": 3}


def utility_columns(value: Any) -> tuple[str, ...]:
    """The ``utility`` parameter as column names: None, "a", "a, b" or a list of names."""
    if value is None:
        return ()
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value]
    else:
        raise ValueError(f"data set {NAME!r}: utility must be a column name, a comma-separated "
                         f"list or a list of names, got {value!r}")
    if any(not name for name in names):
        raise ValueError(f"data set {NAME!r}: utility {value!r} has an empty column name")
    return tuple(dict.fromkeys(names))


def _classes(values: Sequence[str]) -> tuple[str, ...]:
    distinct = set(values)
    try:
        return tuple(sorted(distinct, key=int))
    except ValueError:
        return tuple(sorted(distinct))


class Table:
    """The checked CSV: image paths, and per attribute its class names and per-row labels."""

    def __init__(self, csv_path: Path, paths: list[Path], sensitive: tuple[tuple[str, ...], "np.ndarray"],
                 utility: tuple[tuple[str, ...], "np.ndarray"]) -> None:
        self.csv_path, self.paths = csv_path, paths
        self.sensitive_classes, self.sensitive = sensitive
        self.utility_classes, self.utility = utility

    def __len__(self) -> int:
        return len(self.paths)

    def attributes(self, sensitive: str, utility: Sequence[str]) -> dict[str, Attribute]:
        return {"sensitive": Attribute("sensitive", self.sensitive_classes,
                                       f"column {sensitive!r} of {self.csv_path}"),
                "utility": Attribute("utility", self.utility_classes,
                                     f"columns {', '.join(map(repr, utility))} of {self.csv_path}, "
                                     "jointly" if utility else "no kept column")}


@lru_cache(maxsize=2)
def _table_cached(root: Path, csv_path: Path, file_column: str, sensitive: str,
                  utility: tuple[str, ...], stamp: tuple) -> Table:
    import numpy as np

    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise ValueError(f"{csv_path}: empty file (expected a header row naming the columns "
                             f"{file_column!r}, {sensitive!r}...)") from None
        except csv.Error as exc:
            raise ValueError(f"{csv_path}: line 1: not CSV ({exc})") from None
        for role, column in (("file_column", file_column), ("sensitive", sensitive),
                             *(("utility", u) for u in utility)):
            if column not in header:
                raise ValueError(f"{csv_path}: no column {column!r} (the {role} parameter); its "
                                 f"columns: {', '.join(header)}")
        if len(set(header)) != len(header):
            repeated = next(name for name in header if header.count(name) > 1)
            raise ValueError(f"{csv_path}: line 1: column {repeated!r} appears twice")
        wanted = {name: header.index(name) for name in (file_column, sensitive, *utility)}
        paths: list[Path] = []
        values: dict[str, list[str]] = {name: [] for name in (sensitive, *utility)}
        seen: dict[Path, int] = {}
        try:
            for row in reader:
                line = reader.line_num
                if not any(field.strip() for field in row):
                    continue  # blank lines
                if len(row) != len(header):
                    raise ValueError(f"{csv_path}: line {line}: {len(row)} field(s), the header "
                                     f"has {len(header)}")
                for name, position in wanted.items():
                    if not row[position].strip():
                        raise ValueError(f"{csv_path}: line {line}: column {name!r} is empty")
                relative = row[wanted[file_column]].strip()
                # Lexically inside root (a symbolic link in root may point anywhere: that is
                # the user's layout, not an escape).
                if Path(relative).is_absolute() or ".." in Path(relative).parts:
                    raise ValueError(f"{csv_path}: line {line}: {relative} is not inside {root} "
                                     f"(file paths are relative to root)")
                path = Path(os.path.normpath(root / relative))
                if not path.is_file():
                    raise ValueError(f"{csv_path}: line {line}: no image {relative} under {root}")
                if path in seen:
                    raise ValueError(f"{csv_path}: line {line}: {relative} is listed twice (first "
                                     f"on line {seen[path]})")
                seen[path] = line
                paths.append(path)
                for name in values:
                    values[name].append(row[wanted[name]].strip())
        except csv.Error as exc:
            raise ValueError(f"{csv_path}: line {reader.line_num}: not CSV ({exc})") from None
    if not paths:
        raise ValueError(f"{csv_path}: no rows after the header")

    def encode(column_values: Sequence[str]) -> tuple[tuple[str, ...], "np.ndarray"]:
        classes = _classes(column_values)
        lookup = {c: i for i, c in enumerate(classes)}
        return classes, np.array([lookup[v] for v in column_values], dtype=np.int64)

    secret = encode(values[sensitive])
    if len(secret[0]) < 2:
        raise ValueError(f"{csv_path}: column {sensitive!r} (sensitive) has a single value, "
                         f"{secret[0][0]!r}: nothing to hide")
    if utility:
        joint = [", ".join(f"{u}={values[u][i]}" for u in utility) if len(utility) > 1
                 else values[utility[0]][i] for i in range(len(paths))]
        kept = encode(joint)
    else:
        kept = ((NO_UTILITY,), np.zeros(len(paths), dtype=np.int64))
    return Table(csv_path, paths, secret, kept)


def read_table(params: dict[str, Any]) -> tuple[Table, str, tuple[str, ...]]:
    root = require_root(NAME, params.get("root"), EXPECTED).resolve()
    sensitive = params.get("sensitive")
    if not isinstance(sensitive, str) or not sensitive.strip():
        raise ValueError(f"data set {NAME!r}: set sensitive = \"<column>\" in the [dataset] table "
                         f"(the CSV column to hide), got {sensitive!r}")
    sensitive = sensitive.strip()
    utility = utility_columns(params.get("utility"))
    if sensitive in utility:
        raise ValueError(f"data set {NAME!r}: column {sensitive!r} is both sensitive and kept")
    file_column = params.get("file_column")
    if not isinstance(file_column, str) or not file_column:
        raise ValueError(f"data set {NAME!r}: file_column must be a column name, got {file_column!r}")
    labels = params.get("labels")
    if not isinstance(labels, str) or not labels:
        raise ValueError(f"data set {NAME!r}: labels must be the CSV's path, got {labels!r}")
    csv_path = (root / Path(labels).expanduser()).resolve()
    if not csv_path.is_file():
        raise ValueError(f"data set {NAME!r}: no labels file {csv_path} (expected a CSV with a "
                         f"column {file_column!r} and one per attribute; the labels parameter "
                         f"gives its path)")
    if sensitive == file_column or file_column in utility:
        raise ValueError(f"data set {NAME!r}: {file_column!r} is the file column, not an attribute")
    table = _table_cached(root, csv_path, file_column, sensitive, utility, file_stamp(csv_path))
    return table, sensitive, utility


def _channels(value: Any) -> str:
    if value not in (1, 3) or isinstance(value, bool):
        raise ValueError(f"data set {NAME!r}: channels must be 3 (RGB) or 1 (grey), got {value!r}")
    return "RGB" if value == 3 else "L"


def _plan(table: Table, profile: Profile, params: dict[str, Any]):
    sizes = fit_sizes(NAME, requested_sizes(profile, params), len(table), str(table.csv_path))
    return sizes.sizes, [sizes.note] if sizes.note else []


def check(profile: Profile, tasks: Sequence[Task], params: dict[str, Any]) -> list[str]:
    check_crop(NAME, params.get("crop"))
    _channels(params.get("channels"))
    image_size(profile, params)
    table, _, utility = read_table(params)
    if not utility and any(task.utility for task in tasks):
        keeping = next(task for task in tasks if task.utility)
        raise ValueError(f"data set {NAME!r}: task {keeping.name!r} keeps the utility columns: "
                         f"name them (utility = \"<column>, ...\"), or run task 'sensitive-only'")
    return _plan(table, profile, params)[1]


def load(profile: Profile, seed: int, root: str | None = None, labels: str = "labels.csv",
         file_column: str = "file", sensitive: str | None = None, utility: Any = None,
         n_train: int | None = None, n_attack: int | None = None, n_test: int | None = None,
         n_aux: int | None = None, image_size: int | None = None, crop: str = "center",
         channels: int = 3) -> DatasetSplits:
    """Seeded splits, stratified over (sensitive, utility); see the module docstring."""
    from . import local_files

    params = dict(root=root, labels=labels, file_column=file_column, sensitive=sensitive,
                  utility=utility, n_train=n_train, n_attack=n_attack, n_test=n_test,
                  n_aux=n_aux, image_size=image_size)
    crop = check_crop(NAME, crop)
    mode = _channels(channels)
    size = local_files.image_size(profile, params)
    table, sensitive_name, utility_names = read_table(params)
    sizes, _ = _plan(table, profile, params)
    strata = table.sensitive * len(table.utility_classes) + table.utility
    dealt = deal(strata, sizes, rng(seed, 1), dataset=NAME)
    attributes = table.attributes(sensitive_name, utility_names)
    values = {"sensitive": table.sensitive, "utility": table.utility}
    splits = {}
    for split, chosen in dealt.items():
        images = read_images([table.paths[i] for i in chosen], size, mode=mode, crop=crop,
                             dataset=NAME)
        splits[split] = ImageSet(images, label_tensors(values, chosen), dict(attributes))
    return assemble(splits)


def revision(params: dict[str, Any]) -> str:
    """The images under ``root`` and the labels CSV, wherever it lives."""
    from ppbench.data_revision import folder_digest

    root = Path(params["root"]).expanduser()
    return folder_digest(root, (root / Path(params["labels"]).expanduser()).resolve())


@hookimpl
def ppbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name=NAME,
        description="Any local folder of images with a CSV of labels (root, labels, sensitive, "
                    "utility): seeded stratified splits",
        load=load,
        attributes=ATTRIBUTES,
        tasks=TASKS,
        kind="image",
        params=dict(DEFAULT_PARAMS),
        version="1",
        check=check,
        revision=revision,
    ))
