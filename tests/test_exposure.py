"""The most exposed individuals: a sanitizer that hides everyone but one person must not look private.

A toy data set writes each image's identity into one channel (so that a sanitizer can read it) and
the sensitive attribute as a bright square in another. The planted sanitizer erases the square of
every identity but one, whose images it passes unchanged: averaged over test items the attack is
close to chance, while the worst decile and the exposed share point at the leak.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from ppbench import Attribute, DatasetSpec, DatasetSplits, ImageSet, Sanitizer, Task, hookimpl
from ppbench.boards.build import boards_from_store
from ppbench.exposure import (attribute_group_leakage, exposed_share, exposure_groups,
                              worst_decile, worst_decile_interval)
from ppbench.registry import build_registry
from ppbench.runner import RunOptions, run
from ppbench.sandbox import close_sandboxes
from ppbench.spec import load_spec
from ppbench.store import ResultStore

PEOPLE = 20
LEAKED = 7


def _people(n: int, generator: torch.Generator) -> ImageSet:
    identity = torch.arange(n) % PEOPLE
    secret = torch.randint(0, 2, (n,), generator=generator)
    images = 0.1 * torch.rand(n, 2, 8, 8, generator=generator)
    images[:, 0, 2:6, 2:6] += 0.8 * secret.view(-1, 1, 1).float()
    images[:, 1] = (identity.float() + 0.5).view(-1, 1, 1) / PEOPLE
    attributes = {"identity": Attribute("identity", tuple(f"p{i}" for i in range(PEOPLE))),
                  "secret": Attribute("secret", ("no", "yes"))}
    return ImageSet(images.clamp(0, 1), {"identity": identity, "secret": secret}, attributes)


def _load(profile, seed: int) -> DatasetSplits:
    g = torch.Generator().manual_seed(seed)
    return DatasetSplits(train=_people(200, g), attack=_people(2000, g), test=_people(2000, g))


DATASET = DatasetSpec(
    name="people", description="identity in one channel, a secret square in the other", load=_load,
    attributes=(Attribute("identity", tuple(f"p{i}" for i in range(PEOPLE))),
                Attribute("secret", ("no", "yes"))),
    tasks=(Task("people", "secret", "secret", ("identity",)),), kind="image")


class LeakOne(Sanitizer):
    """Erases the secret square of every identity but ``leaked``, whose images pass unchanged."""

    name = "leak-one"

    def __init__(self, leaked: int = LEAKED) -> None:
        self.leaked = leaked

    def transform(self, images, ctx):
        identity = (images[:, 1].mean(dim=(1, 2)) * PEOPLE).floor().long()
        out = images.clone()
        hidden = identity != self.leaked
        out[hidden, 0] = 0.05
        return out


@hookimpl
def ppbench_register_datasets(register):
    register(DATASET)


@hookimpl
def ppbench_register_sanitizers(register):
    register(LeakOne)


@pytest.fixture
def registry():
    yield build_registry(extra_plugins={"exposure-toys": sys.modules[__name__]})
    close_sandboxes()


def test_a_sanitizer_that_exposes_one_person_is_flagged_by_its_worst_decile(registry, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('[benchmark]\nname = "people"\ntasks = ["secret"]\nseeds = 1\n\n'
                    '[dataset]\nname = "people"\n\n[[sanitizers]]\nname = "leak-one"\n\n'
                    '[[sanitizers]]\nname = "blackout"\n\n[[attacks]]\nname = "linear-probe"\n')
    store = tmp_path / "r.db"
    run(load_spec(spec), RunOptions(store=str(store), cache_dir=str(tmp_path / "cache"),
                                    isolation="none"), registry=registry)
    frame = ResultStore(store).frame()
    figures = {(r.sanitizer, r.metric): r.value for r in frame.itertuples() if r.kind == "attack"}
    # Averaged over the test items, one person in twenty is close to nothing...
    assert figures[("leak-one", "advantage")] < 0.1
    # ...but that person is read: the most exposed tenth (2 of 20, one of them the leaked person,
    # measured on items that did not select it) reads several times the average, and exactly
    # the leaked person is significantly exposed.
    assert figures[("leak-one", "worst_decile")] > max(0.2, 5 * figures[("leak-one", "advantage")])
    assert figures[("leak-one", "exposed_share")] == pytest.approx(1 / PEOPLE)
    assert abs(figures[("blackout", "worst_decile")]) < 0.1
    assert figures[("blackout", "exposed_share")] == 0.0

    board = boards_from_store(ResultStore(store))[0]
    ranking = board.ranking.set_index("sanitizer")
    assert ranking.loc["leak-one", "worst_decile"] > 0.2
    assert ranking.loc["leak-one", "exposed_share"] == pytest.approx(1 / PEOPLE)
    # The average figure would call it private; the person it exposes makes it leak.
    assert bool(ranking.loc["leak-one", "leaks"]) is True
    assert not bool(ranking.loc["blackout", "leaks"])
    headers = [c.header for c in board.columns]
    assert "worst decile" in headers and headers.index("exposed") == headers.index("worst decile") + 1


def test_the_worst_decile_is_cross_fitted_so_chance_reads_zero():
    rng = np.random.default_rng(0)
    readings, naive = [], []
    for _ in range(100):
        groups = rng.integers(0, 50, 1000)
        truth = rng.integers(0, 2, 1000)
        predicted = rng.integers(0, 2, 1000)
        leakage = attribute_group_leakage(truth, predicted, groups, 2, False)
        readings.append(worst_decile(leakage.halves))
        naive.append(np.sort(leakage.whole)[-5:].mean())
    assert abs(np.mean(readings)) < 0.03
    # The naive mean of the top tenth of the per-identity figures reads far above chance.
    assert np.mean(naive) > 0.2


def test_per_identity_leakage_of_the_identity_itself_is_informedness():
    identities = np.repeat(np.arange(10), 20)
    # A constant guess names one person every time: that person is not exposed by it.
    constant = np.zeros_like(identities)
    leakage = attribute_group_leakage(identities, constant, identities, 10, True)
    assert np.allclose(leakage.whole, 0.0)
    perfect = attribute_group_leakage(identities, identities, identities, 10, True)
    assert np.allclose(perfect.whole, 1.0)
    assert worst_decile(perfect.halves) == pytest.approx(1.0)
    low, high = worst_decile_interval(perfect.halves)
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    assert exposed_share(perfect.tested, perfect.se) == 1.0


def test_groups_are_identities_else_subgroups_of_the_kept_attributes():
    task = Task("d", "t", "secret", ("a", "b"))
    labels = {"a": np.array([0, 0, 1, 1]), "b": np.array([0, 1, 0, 1]), "secret": np.zeros(4)}
    groups, own = exposure_groups(labels, task)
    assert len(set(groups.tolist())) == 4 and not own
    groups, own = exposure_groups({**labels, "identity": np.array([3, 3, 1, 1])}, task)
    assert groups.tolist() == [3, 3, 1, 1] and not own
    assert exposure_groups({"secret": np.zeros(4)}, Task("d", "t", "secret")) is None
