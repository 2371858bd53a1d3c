"""The cost of running plugins in a sandbox, and of storing sanitized splits compactly.

Run: ``python -m pytest benchmarks/test_isolation_and_storage.py --benchmark-enable -q``
(without ``--benchmark-enable`` each runs once, as a smoke test).

- ``test_matrix_run``: a small matrix (2 sanitizer fits, 4 cells) run end to end with
  ``isolation`` none and process, each from an empty store and cache. The difference is the
  sandbox's overhead on short cells, where it weighs most; on the default benchmark it is 2–3%
  (README: "Cost").
- ``test_fitted_entry_round_trip``: saving and loading a cached fit, 8-bit and half-precision
  splits; its bytes per pixel are in ``extra_info``.
"""

from __future__ import annotations

import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
import torch

from ppbench import ImageSet
from ppbench.cache import FittedSanitizer, load_fitted, save_fitted
from ppbench.data import Attribute, DatasetSplits
from ppbench.runner import RunOptions, run
from ppbench.sandbox import close_sandboxes
from ppbench.spec import load_spec

SPEC = textwrap.dedent("""
    [benchmark]
    name = "isolation-cost"
    tasks = ["smiling"]
    seeds = 1
    profile = "quick"

    [dataset]
    name = "synthfaces"
    n_train = 512
    n_attack = 512
    n_test = 256
    n_aux = 64

    [[sanitizers]]
    name = "identity"

    [[sanitizers]]
    name = "blur"
    sigma = [1.0]

    [[attacks]]
    name = "linear-probe"

    [[metrics]]
    name = "distortion"
    """)


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_matrix_run(benchmark, isolation, tmp_path):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    work = Path(tempfile.mkdtemp(dir=tmp_path))

    def fresh() -> tuple[tuple, dict]:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        return (), {}

    def once():
        return run(spec, RunOptions(store=str(work / "r.db"), cache_dir=str(work / "cache"),
                                    isolation=isolation))

    once()  # warm the sandbox and the data set, as a run's later jobs find them
    report = benchmark.pedantic(once, setup=fresh, rounds=3, iterations=1)
    close_sandboxes()
    assert report.count("ok") == 4 and report.fits_computed == 2
    benchmark.extra_info["cells_per_second"] = 4 / benchmark.stats.stats.mean


@pytest.mark.parametrize("pixels", ["8-bit", "continuous"])
def test_fitted_entry_round_trip(benchmark, pixels, tmp_path):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2048, 3, 32, 32, generator=g)
    if pixels == "8-bit":
        images = (images * 255).round() / 255
    labels = {"s": torch.zeros(len(images), dtype=torch.long)}
    split = ImageSet(images, labels, {"s": Attribute("s", ("0", "1"))})
    splits = DatasetSplits(train=split, attack=split, test=split)
    fitted = FittedSanitizer(None, split, split)
    path = tmp_path / "entry.pt"

    def round_trip() -> FittedSanitizer:
        save_fitted(path, fitted)
        return load_fitted(path, splits)

    loaded = benchmark(round_trip)
    assert loaded.test.images.shape == images.shape
    benchmark.extra_info["bytes_per_pixel"] = path.stat().st_size / (2 * images.numel())
