"""fd-ppbench (issue 13): a Fréchet distance in the features of an encoder ppbench trains on the
raw train split. Its reference points: an untouched image scores 0, a stronger blur scores more,
and the distance itself is the textbook one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ppbench import Context, MetricView
from ppbench.plugins.metrics.fd_ppbench import FrechetDistance, frechet_distance
from ppbench.plugins.sanitizers.baseline import Blackout, Blur, Identity
from ppbench.testing import TOY_TASK, toy_splits


def test_the_distance_is_the_frechet_distance_between_fitted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4))
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    # Same covariance: the distance is the squared shift of the means, exactly.
    assert frechet_distance(a + shift, a) == pytest.approx(float(shift @ shift), rel=1e-9)
    # One dimension, N(0, 1) against N(0, 4): (σ₁ − σ₂)² = 1.
    x = rng.normal(size=(200_000, 1))
    assert frechet_distance(2 * x, x) == pytest.approx(1.0, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def figures(sanitizer) -> dict[str, tuple]:
    splits = toy_splits(seed=0, n_train=300, n_test=300, n_attack=300)
    ctx = Context(profile="quick", seed=0)
    fitted = sanitizer.fit(splits.train, TOY_TASK, ctx) or sanitizer

    def sanitized(split):
        return replace(split, images=fitted.transform(split.images.clone(), ctx).float())

    view = MetricView(splits.train, splits.attack, splits.test, sanitized(splits.attack), sanitized(splits.test))
    return {v.name: (v.value, v.ci_low, v.ci_high, v.primary, v.better) for v in FrechetDistance().run(view, TOY_TASK, ctx)}


def test_untouched_images_score_zero_and_the_distance_grows_with_blur():
    identity = figures(Identity())
    assert identity["fd"][:3] == pytest.approx((0.0, 0.0, 0.0), abs=1e-6)
    assert identity["fd"][3:] == (True, "lower")
    scale = identity["fd_raw"][0]  # two raw samples: the finite-sample scale
    blurred = [figures(Blur(sigma=s))["fd"] for s in (0.5, 1.0, 2.0)]
    means = [b[0] for b in blurred]
    assert means == sorted(means) and means[0] > scale
    assert all(low <= mean <= high for mean, low, high, *_ in blurred)
    assert blurred[0][2] < blurred[1][1]  # 0.5 and 1.0 differ beyond their intervals
    assert figures(Blackout())["fd"][0] > 5 * means[-1]
    # The encoder behind the figure is recorded: one raw-trained reference, on the train split.
    assert identity["budget:reference_models"][0] == 1 and identity["budget:training_items"][0] == 300
