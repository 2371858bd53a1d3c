"""The fool-rate metric: a raw-trained classifier of the secret against the recorded replacement."""

from __future__ import annotations

import sys

import pytest
import torch

from ppbench import Sanitized, Sanitizer, hookimpl
from ppbench.registry import build_registry
from ppbench.runner import RunOptions, run
from ppbench.spec import load_spec
from ppbench.store import ResultStore

import test_records
from test_runner import tables, write_spec


class DrawButIgnore(Sanitizer):
    """Records a drawn replacement but returns the input unchanged: nobody is fooled."""

    name = "draw-but-ignore"

    def transform(self, images, ctx):
        if getattr(self, "_seed", None) != ctx.seed:
            self._seed, self._draws = ctx.seed, ctx.generator(stream=11)
        return Sanitized(images.clone(), {"replacement": torch.randint(0, 2, (len(images),),
                                                                       generator=self._draws)})


@hookimpl
def ppbench_register_sanitizers(register):
    register(DrawButIgnore)


@pytest.fixture
def registry(testkit):
    return build_registry(extra_plugins={"records": test_records, "fool": sys.modules[__name__]})


def test_fool_rate_follows_what_the_output_shows(registry, tmp_path):
    spec = write_spec(tmp_path / "s.toml",
                      tables("sanitizers", 'name = "swap-secret"', 'name = "draw-but-ignore"',
                             'name = "darken"\nstrength = 0.0'),
                      tables("attacks", 'name = "threshold"'), tables("metrics", 'name = "fool-rate"'))
    run(load_spec(spec), RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")),
        registry=registry)
    frame = ResultStore(tmp_path / "r.db").frame()
    cells = frame[frame.plugin == "fool-rate"]
    rates = cells[cells.metric == "fool_rate"].set_index("sanitizer").value
    # The output shows s': the raw-trained classifier reads it.
    assert rates["swap-secret"] > 0.95
    # The output shows the true s: the classifier agrees with a uniform draw half the time.
    assert abs(rates["draw-but-ignore"] - 0.5) < 0.12
    interval = cells[(cells.metric == "fool_rate") & (cells.sanitizer == "swap-secret")].iloc[0]
    assert interval.ci_low <= interval.value <= interval.ci_high and interval.chance == 0.5
    references = cells[cells.metric == "budget:reference_models"].set_index("sanitizer").value
    assert references.to_dict() == {"swap-secret": 1.0, "draw-but-ignore": 1.0}
    # A sanitizer that records no replacement is n/a, with the reason.
    darken = cells[cells.sanitizer == "darken"].iloc[0]
    assert darken.status == "n/a" and "records no replacement" in darken.error
