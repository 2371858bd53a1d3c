"""The red team: attacks that try to read the withheld test labels by every route a reviewer found.

Each cheating attack tries one route; when it finds labels it returns them as its predictions,
else it guesses class 0. The sanitizer (`darken` at full strength) removes the secret, so an
honest attack sits at chance. In-process (``--isolation none``) most routes work, which shows the
cheats are real; in an isolated, sealed run every route must fail, so the cheats score at chance.
"""

from __future__ import annotations

import gc
import inspect
import os
import sys
from pathlib import Path

import pytest
import torch

from ppbench import Attack, AttackResult, hookimpl
from ppbench.registry import build_registry
from ppbench.runner import RunOptions, run
from ppbench.sandbox import close_sandboxes, process_is_hidden
from ppbench.sealing import new_salt
from ppbench.spec import load_spec
from ppbench.store import ResultStore

from test_runner import tables, write_spec


def _labels_of(obj, sensitive: str, n: int):
    labels = getattr(obj, "labels", None)
    if isinstance(labels, dict) and sensitive in labels and isinstance(labels[sensitive], torch.Tensor):
        if len(labels[sensitive]) == n:
            return labels[sensitive]
    return None


def gc_image_set(view, task, ctx):
    """Route 1: the labelled ImageSet whose images are the test images."""
    for obj in gc.get_objects():
        if type(obj).__name__ == "ImageSet" and obj is not view.test:
            found = _labels_of(obj, task.sensitive, len(view.test))
            if found is not None and obj.images.shape == view.test.images.shape:
                return found
    return None


def gc_splits(view, task, ctx):
    """Route 2: a DatasetSplits anywhere in memory."""
    for obj in gc.get_objects():
        if type(obj).__name__ == "DatasetSplits":
            found = _labels_of(obj.test, task.sensitive, len(view.test))
            if found is not None:
                return found
    return None


def stack_frames(view, task, ctx):
    """Route 3: the runner's locals up the call stack."""
    for frame_info in inspect.stack():
        for value in frame_info.frame.f_locals.values():
            test = getattr(value, "test", None)
            found = _labels_of(test, task.sensitive, len(view.test)) if test is not None else None
            if found is not None and test is not view.test:
                return found
    return None


def module_global(view, task, ctx):
    """Route 4: the runner's in-memory data cache."""
    cache = sys.modules.get("ppbench.cache")
    for splits in getattr(cache, "_DATA_CACHE", {}).values():
        found = _labels_of(splits.test, task.sensitive, len(view.test))
        if found is not None:
            return found
    return None


def regenerate(view, task, ctx):
    """Route 5: draw the data set again from its public loader and the public seed derivation."""
    from ppbench.planning import derive_seed
    from ppbench.registry import get_registry

    spec = get_registry().dataset("tiny")
    merged = dict(spec.params)
    splits = spec.load(profile=ctx.profile, seed=derive_seed(0, "dataset", "tiny", merged), **merged)
    found = _labels_of(splits.test, task.sensitive, len(view.test))
    # Only useful if these are the test items actually scored: check against the view.
    if found is not None and _same_items(splits.test.images, view.test.images):
        return found
    return None


def _same_items(raw, sanitized) -> bool:
    # darken(strength=1) zeroes channel 0 only: channel 1 is untouched.
    return torch.allclose(raw[:, 1], sanitized[:, 1])


def store_and_cache(view, task, ctx):
    """Route 6: read the results store and the cache folder."""
    import sqlite3

    candidates = [os.environ.get("PPBENCH_STORE", ""), "results.db"]
    # The shell's record of the folder the run started in.
    candidates += [os.path.join(os.environ.get(name, ""), "results.db") for name in ("PWD", "OLDPWD")
                   if os.environ.get(name)]
    root = getattr(getattr(ctx, "_shared_store", None), "root", None)
    for frame_info in inspect.stack():
        for value in frame_info.frame.f_locals.values():
            store = getattr(value, "store", None)
            if isinstance(store, str):
                candidates.append(store)
    found_anything = False
    for path in candidates:
        if path and Path(path).exists():
            with sqlite3.connect(path) as db:
                found_anything |= bool(db.execute("SELECT count(*) FROM cells").fetchone()[0] >= 0)
    if root is not None and Path(root).exists():
        found_anything = True
    # The store holds no test labels either way; reaching it at all is the breach.
    return torch.ones(len(view.test), dtype=torch.long) if found_anything else None


def overwrite_truth(view, task, ctx):
    """Route 7: make the harness's withheld truth agree with our guess, in place."""
    guess = torch.zeros(len(view.test), dtype=torch.long)
    hit = False
    for obj in gc.get_objects():
        if type(obj).__name__ in ("ImageSet", "WithheldTruth") and obj is not view.test:
            labels = getattr(obj, "labels", None) or getattr(getattr(obj, "test", None), "labels", None)
            if isinstance(labels, dict) and task.sensitive in labels:
                values = labels[task.sensitive]
                if isinstance(values, torch.Tensor) and len(values) == len(guess):
                    values.copy_(guess)
                    hit = True
    return guess if hit else None


ROUTES = {f.__name__: f for f in (gc_image_set, gc_splits, stack_frames, module_global,
                                  regenerate, store_and_cache, overwrite_truth)}


class Cheat(Attack):
    name = "cheat"

    def __init__(self, route: str = "gc_image_set") -> None:
        self.route = route

    def run(self, view, task, ctx):
        try:
            found = ROUTES[self.route](view, task, ctx)
        except Exception:  # noqa: BLE001 - a blocked route is just a failed cheat
            found = None
        predictions = found.clone() if found is not None else torch.zeros(len(view.test), dtype=torch.long)
        return AttackResult(predictions, diagnostics={"breached": float(found is not None)})


@hookimpl
def ppbench_register_attacks(register):
    register(Cheat)


def cheat_run(tmp_path: Path, isolation: str, salt: str | None):
    attacks = tables("attacks", *(f'name = "cheat"\nroute = "{route}"' for route in ROUTES),
                     'name = "threshold"')
    spec = write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"\nstrength = 1.0'),
                      attacks)
    registry = build_registry(extra_plugins={"red-team": sys.modules[__name__]})
    options = RunOptions(store=str(tmp_path / "results.db"), cache_dir=str(tmp_path / "cache"),
                         isolation=isolation, salt=salt)
    run(load_spec(spec), options, registry=registry)
    frame = ResultStore(tmp_path / "results.db").frame()
    out = {}
    for row in frame.itertuples():
        route = row.plugin_label.split("route=")[-1].rstrip(")") if "route=" in row.plugin_label else row.plugin_label
        if row.status != "ok":
            out[route] = ("error", row.error)
        elif row.metric == "advantage":
            out.setdefault(route, {})["advantage"] = row.value
        elif row.metric == "diag:breached":
            out.setdefault(route, {})["breached"] = row.value
    return out


@pytest.fixture
def sandbox_cleanup():
    yield
    close_sandboxes()


def test_in_process_the_cheats_work_so_the_red_team_is_real(testkit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    got = cheat_run(tmp_path, "none", None)
    for route in ("gc_image_set", "gc_splits", "stack_frames", "module_global", "regenerate"):
        assert got[route]["breached"] == 1.0 and got[route]["advantage"] > 0.9, (route, got[route])
    assert got["store_and_cache"]["breached"] == 1.0
    # Writing into the withheld truth is caught even in-process: the cell fails.
    assert got["overwrite_truth"][0] == "error" and "modified data lent" in got["overwrite_truth"][1]


def test_isolated_sealed_runs_block_every_route(testkit, tmp_path, monkeypatch, sandbox_cleanup):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))  # as a shell that started the run here sets it
    got = cheat_run(tmp_path, "process", new_salt())
    for route in ROUTES:
        result = got[route]
        assert isinstance(result, dict), (route, result)
        assert result["breached"] == 0.0, (route, result)
        assert abs(result["advantage"]) < 0.35, (route, result)
    # The honest attack runs normally in the sandbox: at chance, since darken(1) removes the secret.
    assert abs(got["threshold"]["advantage"]) < 0.35


@pytest.mark.skipif(sys.platform != "linux", reason="prctl is Linux's")
def test_the_harness_hides_its_process_entries_from_its_sandboxes(testkit, tmp_path, monkeypatch,
                                                                   sandbox_cleanup):
    """A non-dumpable process's /proc entries (working folder, environment, open files, memory)
    are closed to other processes of the same user: a plugin cannot follow them to the store."""
    monkeypatch.chdir(tmp_path)
    cheat_run(tmp_path, "process", None)
    assert process_is_hidden()

