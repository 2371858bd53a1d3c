"""Fit time of Martinsson et al.'s learned sanitizers per configuration, at the published boards'
settings.

Run: ``python -m pytest benchmarks/test_martinsson_fit.py --benchmark-enable -q`` (without
``--benchmark-enable`` each fit runs once, as a smoke test).

- gaussians2d (``leaderboards/gaussians2d``): 20,000 train points, batches of 1024, 40 epochs,
  width 64.
- synthfaces smiling (``leaderboards/synthfaces-smiling``): the quick profile's 2,000 faces of
  16×16, 10 epochs, eps 0.05.
"""

from __future__ import annotations

import pytest

from ppbench import Context, get_profile
from ppbench.plugins.datasets.gaussians2d import TASKS, load
from ppbench.plugins.sanitizers.martinsson import FilterGenerator, GapFilter, GeneratorOnly

SPLITS = load(get_profile("quick"), seed=0, n_train=20000, n_attack=16, n_test=16, n_aux=16)


@pytest.mark.parametrize("cls", [GapFilter, FilterGenerator], ids=lambda cls: cls.name)
def test_fit_time_per_configuration(benchmark, cls):
    def fit():
        ctx = Context(device="cpu", profile="quick", seed=1)
        ctx.seed_everything()
        return cls(eps=1.0, epochs=40, width=64, batch_size=1024).fit(SPLITS.train, TASKS[0], ctx)

    sanitizer = benchmark.pedantic(fit, rounds=2, iterations=1)
    assert len(sanitizer.history_) == 40


@pytest.mark.parametrize("cls", [GapFilter, GeneratorOnly, FilterGenerator], ids=lambda cls: cls.name)
def test_fit_time_on_faces(benchmark, cls):
    from ppbench.registry import build_registry

    dataset = build_registry().dataset("synthfaces")
    splits = dataset.load(get_profile("quick"), seed=0, **dataset.params)
    task = next(task for task in dataset.tasks if task.name == "smiling")

    def fit():
        ctx = Context(device="cpu", profile="quick", seed=1)
        ctx.seed_everything()
        return cls(eps=0.05, epochs=10).fit(splits.train, task, ctx)

    sanitizer = benchmark.pedantic(fit, rounds=1, iterations=1)
    assert len(sanitizer.history_) == 10
