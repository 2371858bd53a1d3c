"""The contract checks of ppbench.testing catch what they promise to catch: a sanitizer leaving
[0, 1], a white-box attack run without its handle, and an attack reading the withheld test labels."""

from __future__ import annotations

import gc

import pytest
import torch

from ppbench import DISCRIMINATOR, Attack, AttackResult, Sanitizer
from ppbench.data import ImageSet
from ppbench.testing import check_attack, check_sanitizer, toy_splits

# --- sanitizers: the toy images reach both ends of [0, 1] ----------------------------------------


class Brighten(Sanitizer):
    """Adds a constant; without ``clamp`` a white pixel leaves [0, 1]."""

    name = "brighten"

    def __init__(self, amount: float = 0.05, clamp: bool = False):
        self.amount = amount
        self.clamp = clamp

    def transform(self, images, ctx):
        out = images + self.amount
        return out.clamp(0, 1) if self.clamp else out


def test_every_toy_image_holds_an_exact_black_and_an_exact_white_pixel():
    for split_name, split in toy_splits().items():
        flat = split.images.flatten(1)
        assert (flat == 0.0).any(dim=1).all() and (flat == 1.0).any(dim=1).all(), split_name


@pytest.mark.parametrize("amount", [0.05, -0.05])
def test_check_sanitizer_rejects_output_outside_the_unit_interval(amount):
    with pytest.raises(AssertionError, match=r"must lie in \[0, 1\]"):
        check_sanitizer(Brighten(amount=amount))


def test_check_sanitizer_accepts_the_same_sanitizer_when_it_clamps():
    check_sanitizer(Brighten(amount=0.05, clamp=True))


# --- attacks: white-box handles ------------------------------------------------------------------


class DiscriminatorThreshold(Attack):
    """Thresholds a discriminator's score at its median; also records the handles it was given."""

    name = "discriminator-threshold"
    requires = frozenset({DISCRIMINATOR})
    threat_model = "white-box"

    def run(self, view, task, ctx):
        self.seen_handles = set(view.handles)
        score = view.handles[DISCRIMINATOR](view.test.images)
        return AttackResult((score > score.median()).long())


def channel_zero_mean(images):
    return images[:, 0].mean(dim=(1, 2))


def test_a_white_box_attack_without_its_handle_is_told_how_to_pass_one():
    with pytest.raises(ValueError, match=r"discriminator.*handles=") as error:
        check_attack(DiscriminatorThreshold())
    assert "check_attack(attack, handles=" in str(error.value)


def test_a_white_box_attack_gets_the_handles_it_requires_and_no_others():
    attack = DiscriminatorThreshold()
    check_attack(attack, handles={DISCRIMINATOR: channel_zero_mean, "generator": object()})
    assert attack.seen_handles == {DISCRIMINATOR}  # as in the runner


# --- attacks: the withheld test labels -----------------------------------------------------------


class NearestCentroid(Attack):
    """Honest: class means of the labelled attack split, nearest mean for each test image."""

    name = "nearest-centroid"

    def run(self, view, task, ctx):
        x = view.attack.images.flatten(1)
        y = view.attack.labels[task.sensitive]
        k = view.attack.num_classes(task.sensitive)
        centroids = torch.zeros(k, x.shape[1]).index_add_(0, y, x) / torch.bincount(y, minlength=k)[:, None]
        return AttackResult(torch.cdist(view.test.images.flatten(1), centroids).argmin(dim=1))


class GcLabelThief(Attack):
    """Cheats: scans the interpreter's objects for a labelled set holding its test images."""

    name = "gc-label-thief"

    def __init__(self):
        self.stolen = 0  # runs in which it found labels: proves the check did not pass vacuously

    def run(self, view, task, ctx):
        for obj in gc.get_objects():
            if (type(obj) is ImageSet and obj is not view.test and task.sensitive in obj.labels
                    and obj.images.shape == view.test.images.shape
                    and torch.equal(obj.images, view.test.images)):
                self.stolen += 1
                return AttackResult(obj.labels[task.sensitive].clone())
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


class FreshRandomGuess(Attack):
    """Honest but not reproducible: every run guesses with a new seed."""

    name = "fresh-random-guess"

    def __init__(self):
        self.runs = 0

    def run(self, view, task, ctx):
        self.runs += 1
        g = torch.Generator().manual_seed(1000 + self.runs)
        return AttackResult(torch.randint(0, 2, (len(view.test),), generator=g))


class MemorySpy(Attack):
    """Records whether any labelled set in memory shares storage with the test images it got."""

    name = "memory-spy"

    def run(self, view, task, ctx):
        handed = view.test.images.untyped_storage().data_ptr()
        self.test_labels, self.test_attributes = dict(view.test.labels), dict(view.test.attributes)
        self.shared = [obj for obj in gc.get_objects()
                       if type(obj) is ImageSet and obj.labels and obj is not view.attack
                       and obj.images.untyped_storage().data_ptr() == handed]
        self.labelled_copies = sum(
            type(obj) is ImageSet and bool(obj.labels) and obj.images.shape == view.test.images.shape
            and torch.equal(obj.images, view.test.images) for obj in gc.get_objects())
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


def test_an_attack_that_finds_the_withheld_labels_by_a_gc_scan_fails():
    thief = GcLabelThief()
    with pytest.raises(AssertionError, match="depends on the withheld test labels"):
        check_attack(thief)
    assert thief.stolen == 2  # it did find a labelled copy in both runs: the decoy betrayed it


def test_an_honest_attack_passes_and_its_predictions_follow_the_callers_test_order():
    splits = toy_splits()
    result = check_attack(NearestCentroid(), splits)
    accuracy = (result.predictions == splits.test.labels["secret"]).float().mean()
    assert accuracy > 0.9  # the items were shuffled for the runs and put back in order


def test_an_honest_attack_whose_runs_differ_passes():
    attack = FreshRandomGuess()
    check_attack(attack)
    assert attack.runs == 2


def test_nothing_handed_to_the_attack_shares_memory_with_or_carries_the_labels():
    splits = toy_splits()  # alive in this frame, labelled: the spy can reach it too
    spy = MemorySpy()
    check_attack(spy, splits)
    assert spy.test_labels == {} and spy.test_attributes == {}
    assert spy.shared == []
    # Only the copy check_attack keeps matches the handed images: the caller's splits.test holds
    # them in another order, so a thief cannot take the true labels from it.
    assert spy.labelled_copies == 1


def test_check_attack_resolves_alternatives_and_per_instance_requirements():
    """Requirements are read from the configured instance, and an entry of alternatives gets the
    first one the splits can meet, as in the runner."""
    import torch

    from ppbench import Attack, AttackResult
    from ppbench.testing import check_attack, toy_splits

    seen = {}

    class EitherData(Attack):
        name = "either-data"

        def __init__(self, source: str = "either") -> None:
            self.source = source
            self.requires = {("aux", "raw_train")} if source == "either" else {source}

        def run(self, view, task, ctx):
            seen[self.source] = (view.aux is not None, view.raw_train is not None)
            return AttackResult(torch.zeros(len(view.test), dtype=torch.long))

    splits = toy_splits()
    check_attack(EitherData(), splits)
    check_attack(EitherData(source="raw_train"), splits)
    has_aux = splits.aux is not None
    assert seen["either"] == (has_aux, not has_aux)
    assert seen["raw_train"] == (False, True)
