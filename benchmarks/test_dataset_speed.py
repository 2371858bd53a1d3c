"""Throughput of the generated data sets (run with --benchmark-enable)."""

from __future__ import annotations

import pytest

from ppbench import get_profile
from ppbench.registry import build_registry

N_IMAGES = 1024


@pytest.mark.parametrize("image_size", [32, 64])
def test_synthfaces_render(benchmark, image_size):
    spec = build_registry().dataset("synthfaces")
    # Only the train split at size: the others (the attack split included) are tiny.
    params = {**spec.params, "n_train": N_IMAGES, "n_attack": 2, "n_test": 2, "n_aux": 2,
              "image_size": image_size}
    splits = benchmark(spec.load, get_profile("quick"), 0, **params)
    assert splits.train.images.shape == (N_IMAGES, 3, image_size, image_size)
    benchmark.extra_info["images_per_second"] = N_IMAGES / benchmark.stats.stats.median
