"""No plugin may change another cell's inputs, and no corrupt cache entry is trusted.

The misbehaving plugins live in this module and reach the runner as extra plugins of a registry
built here (``run(registry=build_registry(extra_plugins=...))``), the notebook route: the jobs
must use that registry, not the process-wide one.
"""

from __future__ import annotations

import json
import pickle
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ppbench import Attack, AttackResult, Sanitizer, hookimpl
from ppbench.registry import build_registry
from ppbench.runner import RunOptions, plan, run
from ppbench.spec import load_spec
from ppbench.store import ResultStore

from test_runner import tables, write_spec


class VandalAttack(Attack):
    """Zeroes the sanitized attack images it was lent, then guesses."""

    name = "vandal-attack"

    def run(self, view, task, ctx):
        view.attack.images.zero_()
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


class RawVandalAttack(Attack):
    """Zeroes the raw train images it was lent (it requires them)."""

    name = "raw-vandal-attack"
    requires = frozenset({"raw_train"})

    def run(self, view, task, ctx):
        view.raw_train.images.zero_()
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


class LabelForger(Attack):
    """Overwrites the labels of the attack split it was lent."""

    name = "label-forger"

    def run(self, view, task, ctx):
        view.attack.labels[task.sensitive].fill_(1)
        return AttackResult(torch.ones(len(view.test), dtype=torch.long))


class VandalSanitizer(Sanitizer):
    """Fits on its train split after zeroing it in place."""

    name = "vandal-sanitizer"

    def fit(self, train, task, ctx):
        train.images.zero_()
        return self

    def transform(self, images, ctx):
        return images.clone()


class BrokenTransform(Sanitizer):
    name = "broken-transform"

    def transform(self, images, ctx):
        raise ValueError("deliberate failure in transform")


class MetaOutput(Sanitizer):
    name = "meta-output"

    def transform(self, images, ctx):
        return torch.empty(images.shape, device="meta")


class DoubleOutput(Sanitizer):
    name = "double-output"

    def transform(self, images, ctx):
        return images.double()


@hookimpl
def ppbench_register_sanitizers(register):
    for cls in (VandalSanitizer, BrokenTransform, MetaOutput, DoubleOutput):
        register(cls)


@hookimpl
def ppbench_register_attacks(register):
    for cls in (VandalAttack, RawVandalAttack, LabelForger):
        register(cls)


@pytest.fixture
def registry(testkit):
    return build_registry(extra_plugins={"vandals": sys.modules[__name__]})


def options(tmp_path: Path, name: str = "results.db", cache: str = "cache") -> RunOptions:
    return RunOptions(store=str(tmp_path / name), cache_dir=str(tmp_path / cache))


def results(store: Path) -> dict[tuple[str, str], tuple[str, float | None, str | None]]:
    """(sanitizer label, plugin label) -> (status, primary value, error)."""
    frame = ResultStore(store).frame()
    out = {}
    for row in frame.itertuples():
        value = row.value if row.status == "ok" else None
        key = (row.sanitizer_label, row.plugin_label)
        if row.status != "ok" or row.is_primary:
            out[key] = (row.status, value, row.error if isinstance(row.error, str) else None)
    return out


def spec_file(tmp_path: Path, sanitizers: list[str], attacks: list[str], name: str = "s.toml") -> Path:
    return write_spec(tmp_path / name,
                      tables("sanitizers", *(f'name = "{s}"' for s in sanitizers)),
                      tables("attacks", *(f'name = "{a}"' for a in attacks)))


@pytest.mark.parametrize("vandal", ["vandal-attack", "raw-vandal-attack", "label-forger"])
def test_an_attack_that_writes_into_its_inputs_fails_alone_and_later_cells_see_clean_data(
        vandal, registry, tmp_path):
    clean = run(load_spec(spec_file(tmp_path, ["darken"], ["threshold"], "clean.toml")),
                options(tmp_path, "clean.db", "clean-cache"), registry=registry)
    assert clean.count("ok") == 1
    expected = results(tmp_path / "clean.db")[("darken", "threshold")]

    # The vandal runs first in the job; the honest attack after it must see the original data.
    run(load_spec(spec_file(tmp_path, ["darken"], [vandal, "threshold"])), options(tmp_path),
        registry=registry)
    got = results(tmp_path / "results.db")
    status, _, error = got[("darken", vandal)]
    assert status == "error" and "modified data lent to it" in error and "clone()" in error
    assert got[("darken", "threshold")] == expected
    # The cached fit was not poisoned either: a later run from the same cache agrees.
    run(load_spec(spec_file(tmp_path, ["darken"], ["threshold"], "again.toml")),
        options(tmp_path, "again.db"), registry=registry)
    assert results(tmp_path / "again.db")[("darken", "threshold")] == expected


def test_a_sanitizer_that_writes_into_its_train_split_is_not_cached_and_harms_no_other_fit(
        registry, tmp_path):
    clean = run(load_spec(spec_file(tmp_path, ["darken"], ["threshold"], "clean.toml")),
                options(tmp_path, "clean.db", "clean-cache"), registry=registry)
    expected = results(tmp_path / "clean.db")[("darken", "threshold")]

    run(load_spec(spec_file(tmp_path, ["vandal-sanitizer", "darken"], ["threshold"])),
        options(tmp_path), registry=registry)
    got = results(tmp_path / "results.db")
    status, _, error = got[("vandal-sanitizer", "threshold")]
    assert status == "error" and "sanitizer vandal-sanitizer modified data lent to it" in error
    assert got[("darken", "threshold")] == expected
    assert not list((tmp_path / "cache" / "sanitizers").glob("vandal-sanitizer/*.pt"))
    assert clean.fits_computed == 1


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_failures_name_the_stage_and_the_rule(registry, tmp_path, capsys, isolation):
    run(load_spec(spec_file(tmp_path, ["broken-transform", "meta-output", "double-output"],
                            ["threshold"])), replace(options(tmp_path), isolation=isolation),
        registry=registry)
    got = results(tmp_path / "results.db")
    status, _, error = got[("broken-transform", "threshold")]
    assert status == "error"
    assert "transform (on the attack split) raised ValueError: deliberate failure in transform" in error
    assert "fit" not in error.split("raised")[0]
    status, _, error = got[("meta-output", "threshold")]
    assert status == "error" and "'meta' device" in error and "NotImplementedError" not in error
    # Another precision is converted, not rejected, and the conversion is noted: on stderr when
    # the fit is made, and in the provenance of every cell that uses it.
    assert got[("double-output", "threshold")][0] == "ok"
    note = "sanitizer double-output: transform returned float64; converted to float32"
    assert note in capsys.readouterr().err
    provenance = ResultStore(tmp_path / "results.db").frame().query(
        "sanitizer == 'double-output'").provenance.iloc[0]
    assert json.loads(provenance)["notes"] == [note]


def fitted_entry(cache: Path) -> Path:
    (entry,) = (cache / "sanitizers" / "darken").glob("*.pt")
    return entry


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "drop the checksum", "garbage"])
def test_a_corrupt_cache_entry_is_reported_deleted_and_recomputed(damage, registry, tmp_path, capsys):
    spec = load_spec(spec_file(tmp_path, ["darken"], ["threshold"]))
    first = run(spec, options(tmp_path, "first.db"), registry=registry)
    expected = results(tmp_path / "first.db")[("darken", "threshold")]
    entry = fitted_entry(tmp_path / "cache")
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flip a byte":
        entry.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "drop the checksum":
        entry.with_name(entry.name + ".sha256").unlink()
    else:
        entry.write_bytes(b"not a torch file at all")
    capsys.readouterr()

    second = run(spec, options(tmp_path, "second.db"), registry=registry)
    err = capsys.readouterr().err
    assert f"cache entry {entry} is corrupt" in err and "deleted, recomputing" in err
    assert first.fits_computed == 1 and second.fits_computed == 1 and second.fits_reused == 0
    assert results(tmp_path / "second.db")[("darken", "threshold")] == expected
    # Recomputed and checksummed again: a third run trusts it.
    third = run(spec, options(tmp_path, "third.db"), registry=registry)
    assert third.fits_reused == 1 and "corrupt" not in capsys.readouterr().err


def test_a_corrupt_shared_model_is_rebuilt(tmp_path, capsys):
    from ppbench.cache import SharedModels

    shared = SharedModels(tmp_path, {"data": "d", "seed": 0})
    assert shared("model", lambda: {"weights": torch.arange(3)}, {"attribute": "a"})["weights"].sum() == 3
    (entry,) = (tmp_path / "shared").glob("*.pt")
    entry.write_bytes(entry.read_bytes()[:10])
    rebuilt = shared("model", lambda: {"weights": torch.arange(4)}, {"attribute": "a"})
    assert rebuilt["weights"].sum() == 6 and shared.built == 2
    assert "is corrupt" in capsys.readouterr().err


def test_jobs_use_the_registry_they_were_planned_with_and_its_recipe_travels(registry, tmp_path):
    # The vandal plugins are not installed: only this registry knows them. Before, run_job
    # looked them up in the process-wide registry and crashed inside its own error handling.
    report = run(load_spec(spec_file(tmp_path, ["darken"], ["label-forger"])), options(tmp_path),
                 registry=registry)
    assert len(report.statuses) == 1 and report.count("error") == 1
    recipe = pickle.loads(pickle.dumps(registry.recipe))
    assert recipe == registry.recipe and recipe.build().attack("label-forger") is LabelForger


def test_cache_keys_follow_the_plugin_version_not_the_distribution_version(registry, tmp_path):
    spec = load_spec(spec_file(tmp_path, ["darken"], ["threshold"]))
    before = [c.key for c in plan(spec, registry)]
    entry = registry.get("sanitizers", "darken")
    entry.source = type(entry.source)(entry.source.plugin, entry.source.distribution, "99.0")
    assert [c.key for c in plan(spec, registry)] == before, "a package release recomputed a cell"

    class DarkenV2(entry.obj):
        version = "2"

    entry.obj = DarkenV2
    assert all(a != b for a, b in zip(before, (c.key for c in plan(spec, registry))))
