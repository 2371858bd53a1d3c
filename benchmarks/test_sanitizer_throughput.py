"""Throughput of every registered image sanitizer's ``transform`` with its default parameters.

Run: ``python -m pytest benchmarks/test_sanitizer_throughput.py --benchmark-enable -q``
(pytest's default options disable benchmarks; without ``--benchmark-enable`` each runs once, as a
smoke test). Learned sanitizers are fitted on a small train split first: only ``transform`` is
timed. The images-per-second figure is stored in each benchmark's ``extra_info``.
"""

from __future__ import annotations

import pytest
import torch

from ppbench import IMAGE, Attribute, Context, ImageSet, Profile, Task
from ppbench.registry import build_registry

BATCH = 256
SHAPE = (3, 32, 32)
# A profile small enough that a learned sanitizer's fit stays a smoke step, not the benchmark.
BENCH_PROFILE = Profile("bench", image_size=SHAPE[-1], n_train=256, n_attack=256, n_test=256, n_aux=0,
                        max_epochs=1, fit_epochs=1, batch_size=64, cell_time_limit=600.0)

REGISTRY = build_registry()
IMAGE_SANITIZERS = [name for name in REGISTRY.names("sanitizers")
                    if IMAGE in REGISTRY.sanitizer(name).inputs]


def fit_split() -> tuple[ImageSet, Task]:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(BENCH_PROFILE.n_train) % 2
    images = torch.rand(BENCH_PROFILE.n_train, *SHAPE, generator=g)
    attributes = {"s": Attribute("s", ("0", "1")), "u": Attribute("u", ("0", "1"))}
    split = ImageSet(images, {"s": labels, "u": 1 - labels}, attributes)
    return split, Task("bench", "s", sensitive="s", utility=("u",))


@pytest.mark.parametrize("name", IMAGE_SANITIZERS)
def test_sanitizer_throughput(benchmark, name):
    ctx = Context(device="cpu", profile=BENCH_PROFILE, seed=0)
    sanitizer = REGISTRY.sanitizer(name)()
    train, task = fit_split()
    sanitizer.fit(train, task, ctx)
    images = torch.rand(BATCH, *SHAPE, generator=torch.Generator().manual_seed(1))

    def transform() -> torch.Tensor:
        with torch.no_grad():
            return sanitizer.transform(images, ctx)

    out = benchmark(transform)
    assert out.shape == images.shape
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None when benchmarks are disabled
        benchmark.extra_info["images_per_second"] = BATCH / stats.stats.median
