"""Training K small classifiers together (``ppbench.nn.stacked``) against one after the other.

Run: ``python -m pytest benchmarks/test_stacked_training.py --benchmark-enable -q -s``. Five
SmallCNNs (width 32, the adversarial classifier's) on 16×16 images (the quick profile's), 1,024
items each, three epochs without early stopping, on the GPU where there is one. ``extra_info``
holds the training images per second summed over the models (items × epochs × models ÷ seconds).
"""

from __future__ import annotations

import pytest
import torch

from ppbench.api import Context
from ppbench.nn import SmallCNN, fit_classifier, seeded
from ppbench.nn.stacked import fit_classifiers
from ppbench.planning import resolve_device

MODELS, ITEMS, EPOCHS, SIZE = 5, 1024, 3, 16


def problem():
    device = resolve_device("auto")
    contexts = [Context(device=device, profile="quick", seed=seed) for seed in range(MODELS)]
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(ITEMS) % 2
    sets = [torch.rand(ITEMS, 3, SIZE, SIZE, generator=generator) for _ in range(MODELS)]
    models = []
    for ctx in contexts:
        with seeded(ctx.seed):
            models.append(SmallCNN(3, 2))
    return models, sets, labels, contexts


OPTIONS = {"max_epochs": EPOCHS, "validation": None}


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "stacked"])
def test_training_throughput(benchmark, together):
    def train():
        models, sets, labels, contexts = problem()
        if together:
            return fit_classifiers(models, sets, [labels] * MODELS, contexts, **OPTIONS)
        return [fit_classifier(m, x, labels, c, **OPTIONS) for m, x, c in zip(models, sets, contexts)]

    results = benchmark.pedantic(train, rounds=1, iterations=1)
    assert len(results) == MODELS and all(r.epochs == EPOCHS for r in results)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        rate = ITEMS * EPOCHS * MODELS / stats.stats.median
        benchmark.extra_info["images_per_second"] = rate
        print(f"\n{'stacked' if together else 'one by one'}: {rate:.0f} training images/s "
              f"({MODELS} models)")
