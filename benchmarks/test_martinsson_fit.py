"""Fit time of Martinsson et al.'s learned sanitizers on the 2-D toy problem, per configuration.

Run: ``python -m pytest benchmarks/test_martinsson_fit.py --benchmark-enable -q`` (without
``--benchmark-enable`` each fit runs once, as a smoke test). The settings are those of the planned
gaussians2d sweep: 20,000 train points, batches of 1024, 40 epochs, width 64.
"""

from __future__ import annotations

import pytest

from ppbench import Context, get_profile
from ppbench.plugins.datasets.gaussians2d import TASKS, load
from ppbench.plugins.sanitizers.martinsson import FilterGenerator, GapFilter

SPLITS = load(get_profile("quick"), seed=0, n_train=20000, n_attack=16, n_test=16, n_aux=16)


@pytest.mark.parametrize("cls", [GapFilter, FilterGenerator], ids=lambda cls: cls.name)
def test_fit_time_per_configuration(benchmark, cls):
    def fit():
        ctx = Context(device="cpu", profile="quick", seed=1)
        ctx.seed_everything()
        return cls(eps=1.0, epochs=40, width=64, batch_size=1024).fit(SPLITS.train, TASKS[0], ctx)

    sanitizer = benchmark.pedantic(fit, rounds=2, iterations=1)
    assert len(sanitizer.history_) == 40
