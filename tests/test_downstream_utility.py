"""Downstream utility (issue 13): a model of a kept attribute trained on sanitized images, tested
on raw ones, relative to the same model trained on raw images. On the toy data set channel 1's
brightness is the kept attribute: a blur keeps it, a black image does not, and the untouched
images are the baseline itself."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ppbench import Context, MetricView, NotApplicable, Task
from ppbench.plugins.metrics.downstream_utility import DownstreamUtility
from ppbench.plugins.sanitizers.baseline import Blackout, Blur, Identity
from ppbench.testing import TOY_TASK, toy_splits


def figures(sanitizer, seed: int = 0, task: Task = TOY_TASK) -> dict[str, tuple]:
    splits = toy_splits(seed=seed, n_train=300, n_test=300, n_attack=300)
    ctx = Context(profile="quick", seed=seed)
    fitted = sanitizer.fit(splits.train, task, ctx) or sanitizer

    def sanitized(split):
        return replace(split, images=fitted.transform(split.images.clone(), ctx).float())

    view = MetricView(raw_train=splits.train, raw_attack=splits.attack, raw_test=splits.test,
                      sanitized_attack=sanitized(splits.attack), sanitized_test=sanitized(splits.test))
    values = DownstreamUtility().run(view, task, ctx)
    return {v.name: (v.value, v.ci_low, v.ci_high, v.primary) for v in values}


@pytest.fixture(scope="module")
def by_sanitizer():
    return {name: figures(sanitizer) for name, sanitizer in (
        ("identity", Identity()), ("blur", Blur(sigma=1.0)), ("blackout", Blackout()))}


def test_a_sanitizer_that_keeps_the_attribute_scores_near_one(by_sanitizer):
    utility, low, high, primary = by_sanitizer["identity"]["utility"]
    assert primary and utility == pytest.approx(1.0, abs=0.05)
    assert low <= utility <= high
    assert by_sanitizer["identity"]["raw_bacc"][0] > 0.9  # the baseline itself learns the attribute


def test_blur_keeps_more_downstream_utility_than_blackout(by_sanitizer):
    blur, blackout = by_sanitizer["blur"]["utility"], by_sanitizer["blackout"]["utility"]
    # A black image teaches one constant answer: balanced accuracy exactly chance, utility 0.
    assert blackout[0] == pytest.approx(0.0, abs=1e-9)
    assert blur[0] > 0.8 and blur[1] > blackout[2]  # the intervals do not overlap


def test_the_baseline_is_shared_and_the_budget_recorded(by_sanitizer):
    raw = {name: values["raw_bacc"][0] for name, values in by_sanitizer.items()}
    assert len(set(raw.values())) == 1  # one raw-trained baseline per seed, whatever the sanitizer
    assert all(values["epochs"][0] >= 1 and values["raw_epochs"][0] >= 1 for values in by_sanitizer.values())
    # The budget figures: the epochs run under the profile's cap, the items, the one reference.
    for values in by_sanitizer.values():
        assert values["budget:epochs"][0] == values["epochs"][0]
        assert values["budget:epochs"][0] <= values["budget:max_epochs"][0]
        assert values["budget:training_items"][0] == 300 and values["budget:reference_models"][0] == 1


def test_a_task_without_kept_attributes_is_not_applicable():
    with pytest.raises(NotApplicable, match="keeps no utility attribute"):
        figures(Identity(), task=Task("toy", "secret-only", "secret"))
    with pytest.raises(ValueError, match="is the sensitive one"):
        splits = toy_splits()
        view = MetricView(splits.train, splits.attack, splits.test, splits.attack, splits.test)
        DownstreamUtility(attribute="secret").run(view, TOY_TASK, Context())


def test_it_is_deterministic_for_a_seed():
    first, again = figures(Blur(sigma=1.0), seed=3), figures(Blur(sigma=1.0), seed=3)
    assert first == again
