"""Martinsson et al.'s learned sanitizers (filter-generator, gap-filter, generator-only) and the
shared adversarial training loop: contracts, records, losses and the distortion budget.

The paper's claims (issue 7: adversary accuracy by eps, entropy against likelihood, fool rates)
need converged fits and live in their own tests once the benchmarks exist."""

from __future__ import annotations

import pytest
import torch

from ppbench import Context, Sanitized, Task
from ppbench.nn.adversarial import Player, adam, budget_penalty, entropy, train_adversarial
from ppbench.nn.conditioned import ConditionedNet, unet_depth
from ppbench.plugins.datasets.gaussians2d import TASKS as GAUSSIAN_TASKS
from ppbench.plugins.datasets.gaussians2d import load as load_gaussians
from ppbench.plugins.sanitizers.martinsson import (FilterGenerator, GapFilter, GeneratorOnly,
                                                   distortion)
from ppbench.registry import build_registry
from ppbench.testing import check_sanitizer, toy_splits

SANITIZERS = (FilterGenerator, GapFilter, GeneratorOnly)


def ctx(seed: int = 0) -> Context:
    context = Context(device="cpu", profile="quick", seed=seed)
    context.seed_everything()
    return context


@pytest.mark.parametrize("cls", SANITIZERS)
def test_the_sanitizers_keep_the_contract_on_images(cls):
    check_sanitizer(cls(epochs=1, width=8))


def test_they_are_registered_through_the_entry_point():
    registry = build_registry()
    for cls in SANITIZERS:
        assert registry.sanitizer(cls.name) is cls
        assert registry.get("sanitizers", cls.name).source.distribution == "ppbench"


@pytest.mark.parametrize("cls", SANITIZERS)
def test_generators_record_the_value_they_drew_and_the_filter_records_nothing(cls):
    splits = toy_splits(seed=1)
    sanitizer = cls(epochs=1, width=8).fit(splits.train, Task("toy", "secret", "secret", ("keep",)), ctx())
    out = sanitizer.transform(splits.test.images, ctx(3))
    if cls.uses_generator:
        assert isinstance(out, Sanitized)
        drawn = out.records["replacement"]
        assert drawn.shape == (len(splits.test),) and set(drawn.tolist()) <= {0, 1}
        # Drawn uniformly: both values appear in fair proportion among 120 items.
        assert 0.3 < drawn.float().mean() < 0.7
        assert set(sanitizer.handles()) == {"generator", "discriminator"}
        rendered = sanitizer.handles()["generator"](splits.test.images[:5], torch.ones(5, dtype=torch.long), ctx())
        assert rendered.shape == splits.test.images[:5].shape
    else:
        assert isinstance(out, torch.Tensor)
        assert set(sanitizer.handles()) == {"discriminator"}


def test_likelihood_needs_a_binary_secret():
    splits = toy_splits()
    task = Task("toy", "secret", "secret", ())
    four_classes = splits.train.with_images(splits.train.images)
    four_classes.labels = {"secret": torch.arange(len(four_classes)) % 4}
    four_classes.attributes = {"secret": type(splits.train.attributes["secret"])("secret", ("a", "b", "c", "d"))}
    with pytest.raises(ValueError, match="binary sensitive attribute.*loss='entropy'"):
        FilterGenerator(loss="likelihood", epochs=1).fit(four_classes, task, ctx())
    GeneratorOnly(loss="likelihood", epochs=1, width=8).fit(four_classes, task, ctx())  # no filter: fine


@pytest.mark.parametrize("bad", [{"loss": "hinge"}, {"eps": -1.0}, {"epochs": 0}, {"width": 0},
                                 {"lr": 0.0}, {"discriminator_steps": 0}])
def test_bad_parameters_are_refused_by_name(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        FilterGenerator(**bad)


def test_distortion_is_mse_on_images_and_l1_on_vectors():
    images = torch.zeros(2, 3, 4, 4)
    assert distortion(images + 0.5, images).item() == pytest.approx(0.25)
    points = torch.zeros(5, 2)
    assert distortion(points + torch.tensor([1.0, -3.0]), points).item() == pytest.approx(2.0)


def test_the_budget_penalty_is_zero_inside_and_quadratic_outside():
    assert budget_penalty(torch.tensor(0.4), eps=0.5, lam=1e5).item() == 0.0
    assert budget_penalty(torch.tensor(0.7), eps=0.5, lam=1e5).item() == pytest.approx(1e5 * 0.04, rel=1e-5)


def test_entropy_is_largest_for_a_uniform_guess():
    assert entropy(torch.zeros(3, 4)).item() == pytest.approx(torch.log(torch.tensor(4.0)).item())
    assert entropy(torch.tensor([[10.0, -10.0]])).item() < 1e-6


def test_conditioned_nets_take_noise_and_labels_at_the_bottleneck():
    net = ConditionedNet((3, 16, 16), num_labels=2, width=4, depth=unet_depth((3, 16, 16)))
    assert unet_depth((3, 16, 16)) == 2 and net.grid == (4, 4)
    out = net(torch.rand(6, 3, 16, 16), torch.randn(6, 32), torch.tensor([0, 1, 0, 1, 0, 1]))
    assert out.shape == (6, 3, 16, 16) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="label"):
        net(torch.rand(6, 3, 16, 16), torch.randn(6, 32))
    vector = ConditionedNet((2,), num_labels=0, width=8)
    points = torch.randn(4, 2)
    assert vector(points, torch.randn(4, 32)).shape == (4, 2)


def test_the_adversarial_loop_moves_each_player_by_its_own_loss_only():
    """A tiny game: ``a`` wants its output near 1; ``b`` wants a's output near -1 but may only move
    itself. a converges to 1; b's gradient never moves a."""
    a, b = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    data = {"x": torch.ones(256, 1)}

    def a_loss(batch):
        return ((a(batch["x"]) - 1) ** 2).mean()

    def b_loss(batch):
        return ((b(a(batch["x"])) + 1) ** 2).mean() + ((a(batch["x"]) + 1) ** 2).mean()

    history = train_adversarial([Player("a", [a], adam([a], 0.05), a_loss),
                                 Player("b", [b], adam([b], 0.05), b_loss)],
                                data, ctx(), epochs=20, batch_size=32)
    assert len(history) == 20 and history[-1]["a"] < 1e-3
    assert a(torch.ones(1, 1)).item() == pytest.approx(1.0, abs=0.05)


def test_the_adversarial_loop_is_reproducible():
    def fit(seed):
        splits = load_gaussians(ctx().profile, seed=0, n_train=2000, n_attack=16, n_test=64, n_aux=16)
        context = ctx(seed)
        sanitizer = FilterGenerator(eps=1.0, epochs=2, width=16).fit(splits.train, GAUSSIAN_TASKS[0], context)
        return sanitizer.transform(splits.test.images, ctx(5))

    first, second = fit(1), fit(1)
    assert torch.equal(first.images, second.images)
    assert torch.equal(first.records["replacement"], second.records["replacement"])
    assert not torch.equal(fit(2).images, first.images)


def test_a_loose_budget_hides_the_gaussian_and_a_tight_one_does_not():
    """gaussians2d: with eps = 2 the filter can move every point to the boundary, and a linear
    adversary falls to chance; with eps = 0.1 it cannot, and the classes stay apparent.

    The filter is one side of an adversarial game, and a single fit can stop short of the
    equilibrium (the gaussians2d board's gap-filter at eps = 2: 0.547 ± 0.164 over seeds; seed 1
    reads 0.60 on some CPUs), so the claim is held by the median over three fit seeds."""
    from statistics import median

    from sklearn.linear_model import LogisticRegression

    profile = ctx().profile
    splits = load_gaussians(profile, seed=0, n_train=20000, n_attack=2000, n_test=2000, n_aux=16)
    accuracies: dict[float, list[float]] = {}
    for eps, fit_seeds in ((0.1, (1,)), (2.0, (1, 4, 7))):
        for fit_seed in fit_seeds:
            # The gaussians2d benchmark's settings (leaderboards/gaussians2d/benchmark.toml).
            sanitizer = GapFilter(eps=eps, epochs=40, batch_size=1024, width=64).fit(
                splits.train, GAUSSIAN_TASKS[0], ctx(fit_seed))
            attack = sanitizer.transform(splits.attack.images, ctx(2))
            test = sanitizer.transform(splits.test.images, ctx(3))
            clf = LogisticRegression().fit(attack.numpy(), splits.attack.labels["s"].numpy())
            accuracies.setdefault(eps, []).append(clf.score(test.numpy(), splits.test.labels["s"].numpy()))
            assert distortion(test, splits.test.images).item() <= eps * 1.15
    assert accuracies[0.1][0] > 0.85
    assert abs(median(accuracies[2.0]) - 0.5) < 0.1, accuracies[2.0]
