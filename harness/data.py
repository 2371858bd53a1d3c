"""Image sets, splits and the tensor conventions every plugin relies on.

Conventions: ``images`` is a float32 tensor, N×C×H×W with values in [0, 1] for image data sets, or
N×D for feature data sets (the 2-D toy problem). ``labels`` maps an attribute name to an int64
tensor of N class indices. Nothing here imports torch at module level, so that plugin discovery
stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Attribute:
    """A categorical attribute: its name and the names of its classes (index = label value)."""

    name: str
    classes: tuple[str, ...]
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class ImageSet:
    """A batch of images (or feature vectors) with their categorical labels."""

    images: "torch.Tensor"
    labels: dict[str, "torch.Tensor"] = field(default_factory=dict)
    attributes: dict[str, Attribute] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        for name, values in self.labels.items():
            if len(values) != n:
                raise ValueError(f"label {name!r} has {len(values)} values for {n} images")
            if values.dtype.is_floating_point:
                raise ValueError(f"label {name!r} must be an integer tensor, got {values.dtype}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def is_image(self) -> bool:
        return self.images.dim() == 4

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one item (C×H×W or D)."""
        return tuple(self.images.shape[1:])

    def num_classes(self, attribute: str) -> int:
        if attribute in self.attributes:
            return self.attributes[attribute].num_classes
        return int(self.labels[attribute].max()) + 1

    def class_frequencies(self, attribute: str) -> "torch.Tensor":
        import torch

        counts = torch.bincount(self.labels[attribute], minlength=self.num_classes(attribute))
        return counts.double() / max(1, len(self))

    def chance(self, attribute: str) -> float:
        """Accuracy of always guessing the most frequent class: the chance level of a guesser."""
        return float(self.class_frequencies(attribute).max())

    def subset(self, index: "torch.Tensor | Sequence[int] | slice") -> "ImageSet":
        return ImageSet(
            images=self.images[index],
            labels={k: v[index] for k, v in self.labels.items()},
            attributes=dict(self.attributes),
        )

    def with_images(self, images: "torch.Tensor") -> "ImageSet":
        """The same labels on other images (e.g. the sanitized version of this set)."""
        if images.shape[0] != self.images.shape[0]:
            raise ValueError(f"expected {len(self)} images, got {images.shape[0]}")
        return replace(self, images=images, labels=dict(self.labels))

    def without_labels(self) -> "ImageSet":
        return ImageSet(images=self.images, labels={}, attributes={})


@dataclass
class DatasetSplits:
    """The splits of one generated or loaded data set, all disjoint.

    ``train``: the sanitizer fits here (and a membership attack's members come from here).
    ``attack``: raw data that the harness sanitizes with the fitted sanitizer and hands, with its
    labels, to the adversary. ``test``: sanitized and scored by the harness; attacks never see its
    labels. ``aux``: public raw data that an attacker may own; optional, and attacks that require
    it are ``n/a`` when a data set has none.

    ``other_identities``: optional, for open-set re-identification. Images of people that no other
    split shows, labelled ``identity`` with indices of their own (``0..M-1``, an attribute of its
    own in the set's ``attributes``): a re-identification attacker trains its recognizer here,
    so that it never sees a test identity during training. The harness sanitizes it with the
    fitted sanitizer too, for attackers who retrain on sanitized images.
    """

    train: ImageSet
    attack: ImageSet
    test: ImageSet
    aux: ImageSet | None = None
    other_identities: ImageSet | None = None

    def items(self) -> Iterator[tuple[str, ImageSet]]:
        yield "train", self.train
        yield "attack", self.attack
        yield "test", self.test
        if self.aux is not None:
            yield "aux", self.aux


def validate_splits(splits: DatasetSplits, attributes: Mapping[str, Attribute], source: str) -> None:
    """Check a loader's output against the tensor conventions; errors name the data set."""
    import torch

    for split_name, split in splits.items():
        where = f"{source}: split {split_name!r}"
        if not isinstance(split.images, torch.Tensor) or split.images.dtype != torch.float32:
            raise ValueError(f"{where}: images must be a float32 tensor")
        if split.images.dim() not in (2, 4):
            raise ValueError(f"{where}: images must be N×C×H×W or N×D, got {tuple(split.images.shape)}")
        if split.images.dim() == 4:
            lo, hi = float(split.images.min()), float(split.images.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(f"{where}: image values must lie in [0, 1], found [{lo:.3g}, {hi:.3g}]")
        for name in attributes:
            if name not in split.labels:
                raise ValueError(f"{where}: missing labels for attribute {name!r}")
            values = split.labels[name]
            k = attributes[name].num_classes
            if len(values) and (int(values.min()) < 0 or int(values.max()) >= k):
                raise ValueError(f"{where}: labels of {name!r} must lie in 0..{k - 1}")
    others = splits.other_identities
    if others is not None:
        where = f"{source}: split 'other_identities'"
        train_shape = tuple(splits.train.images.shape[1:])
        if not isinstance(others.images, torch.Tensor) or others.images.dtype != torch.float32 \
                or tuple(others.images.shape[1:]) != train_shape:
            raise ValueError(f"{where}: images must be a float32 tensor of the train split's item "
                             f"shape {train_shape}")
        identity = others.attributes.get("identity")
        if "identity" not in others.labels or identity is None:
            raise ValueError(f"{where}: needs 'identity' labels and its own 'identity' attribute")
        values = others.labels["identity"]
        if len(values) != len(others) or (len(values) and (
                int(values.min()) < 0 or int(values.max()) >= identity.num_classes)):
            raise ValueError(f"{where}: identity labels must lie in 0..{identity.num_classes - 1}")


def copy_image_set(split: ImageSet | None, keep_labels: bool = True) -> ImageSet | None:
    """A copy that shares no memory with ``split`` (a sandboxed plugin may write into what it
    gets)."""
    if split is None:
        return None
    labels = {name: values.clone() for name, values in split.labels.items()} if keep_labels else {}
    return ImageSet(split.images.clone(), labels, dict(split.attributes) if keep_labels else {})
