"""Compact storage of sanitized splits: 8-bit where exact, half precision within its tolerance, and
the same pixels for a cell scored right after a fit as for one scored from the cache."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest
import torch

from ppbench.cache import verified_load
from ppbench.pixels import (HALF_PRECISION_TOLERANCE, as_stored, compact, expand, is_8bit,
                            quantize_8bit)
from ppbench.runner import RunOptions, run
from ppbench.spec import load_spec


def test_8bit_images_are_stored_as_uint8_without_loss():
    images = torch.randint(0, 256, (20, 3, 8, 8)).float() / 255
    stored = compact(images)
    assert stored.dtype == torch.uint8
    assert torch.equal(expand(stored), images)
    assert torch.equal(quantize_8bit(images), images)


def test_other_images_are_stored_in_half_precision_within_the_stated_tolerance():
    images = torch.rand(200, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    stored = compact(images)
    assert stored.dtype == torch.float16
    error = (expand(stored) - images).abs().max().item()
    assert 0 < error <= HALF_PRECISION_TOLERANCE
    # Storing what came back changes nothing: a cached fit reloads to the pixels cells first saw.
    assert torch.equal(as_stored(as_stored(images)), as_stored(images))


def test_a_single_off_grid_pixel_keeps_an_image_out_of_8_bits():
    images = torch.randint(0, 256, (4, 3, 8, 8)).float() / 255
    images[2, 1, 3, 3] += 1e-3
    assert not is_8bit(images)
    assert compact(images).dtype == torch.float16


def test_vector_data_keep_full_precision():
    points = torch.randn(50, 2) * 10
    stored = compact(points)
    assert stored.dtype == torch.float32 and torch.equal(expand(stored), points)


def test_synthfaces_images_are_8_bit():
    from ppbench.api import get_profile
    from ppbench.plugins.datasets.synthfaces import load

    splits = load(get_profile("quick"), seed=3, n_train=40, n_attack=8, n_test=8, n_aux=8)
    for _, split in splits.items():
        assert is_8bit(split.images)


SPEC = textwrap.dedent("""
    [benchmark]
    name = "storage"
    tasks = ["smiling"]
    seeds = 1
    profile = "quick"

    [dataset]
    name = "synthfaces"
    n_train = 64
    n_attack = 64
    n_test = 64
    n_aux = 16

    [[sanitizers]]
    name = "identity"

    [[sanitizers]]
    name = "blur"
    sigma = [1.0]

    [[metrics]]
    name = "distortion"
    """)


def _metric_values(store: Path) -> dict[tuple[str, str], float]:
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT c.sanitizer_label, v.name, v.value FROM cell_values v "
                          "JOIN cells c ON c.cell_key = v.cell_key").fetchall()
    return {(sanitizer, name): value for sanitizer, name, value in rows}


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_fits_are_cached_compactly_and_cells_score_alike_fresh_or_cached(tmp_path, isolation):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SPEC)
    cache = tmp_path / "cache"
    fresh = run(load_spec(spec_path), RunOptions(store=str(tmp_path / "fresh.db"),
                                                 cache_dir=str(cache), isolation=isolation))
    assert fresh.fits_computed == 2 and fresh.count("ok") == 2

    entries = {path.parent.name: verified_load(path, weights_only=False)
               for path in (cache / "sanitizers").rglob("*.pt")}
    n_pixels = 64 * 3 * 16 * 16
    identity, blur = entries["identity"], entries["blur"]
    assert identity["test"].dtype == torch.uint8, "an 8-bit identity output must be stored exactly"
    assert blur["test"].dtype == torch.float16
    assert identity["test"].numel() == n_pixels
    size = {name: sum(p.stat().st_size for p in (cache / "sanitizers" / name).glob("*.pt"))
            for name in entries}
    # Two splits of 64 images each: 4 bytes a pixel would be 393 kB per entry.
    assert size["identity"] < 2 * n_pixels * 1.2
    assert size["blur"] < 2 * n_pixels * 2 * 1.2

    values = _metric_values(tmp_path / "fresh.db")
    assert values[("identity", "mse")] == 0.0, "the identity sanitizer's stored output changed pixels"
    assert values[("blur(sigma=1.0)", "mse")] > 0

    cached = run(load_spec(spec_path), RunOptions(store=str(tmp_path / "cached.db"),
                                                  cache_dir=str(cache), isolation=isolation))
    assert cached.fits_computed == 0 and cached.fits_reused == 2
    assert _metric_values(tmp_path / "cached.db") == values
