"""Images per second of every built-in attack and sanitizer as the harness runs them, and the
harness's own overhead per cell, from the run's per-phase profile (``--profile-run``).

Run: ``python -m pytest benchmarks/test_plugin_throughput.py --benchmark-enable -q -s``
(without ``--benchmark-enable`` each case runs once, as a smoke test). Each case is one harness
run from an empty store and cache on synthfaces (16×16, ``quick`` profile, 512 train, 512 attack,
256 test and 256 aux items), on the GPU where there is one, every plugin in its sandbox as in a
real run; learned sanitizers are fitted for a few epochs or steps only: this measures speed, not
quality. Figures go to each benchmark's ``extra_info`` and are printed:

- an attack: ``images_per_second`` = attack-split items ÷ the cell's plugin compute (train,
  predict and its own code); ``train_s``, ``predict_s``, ``plugin_s``; ``harness_s`` and
  ``harness_share``: everything else in the cell (view, sandbox, scoring, store, cache);
- a sanitizer: ``fit_images_per_second`` (train items ÷ fit time) and
  ``transform_images_per_second`` (attack and test items ÷ transform time).

benchmarks/RESULTS.md keeps the figures measured on the reference machines.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ppbench.planning import resolve_device
from ppbench.profiling import HARNESS_PHASES, PLUGIN_PHASES
from ppbench.runner import RunOptions, run
from ppbench.sandbox import close_sandboxes
from ppbench.spec import load_spec

SIZES = {"n_train": 512, "n_attack": 512, "n_test": 256, "n_aux": 256}

# Each attack against a sanitizer that grants what it requires; a short fit where one is learned.
SURROGATE = 'name = "surrogate-gan"\nsteps = 200'
SUBVERTED = 'name = "ppgan-subverted"\nepochs = 1'
ATTACKS = {
    "adversarial-classifier": 'name = "identity"',
    "fixed-classifier": 'name = "identity"',
    "linear-probe": 'name = "identity"',
    "residual-probe": 'name = "identity"',
    "query-distortion": 'name = "identity"',
    "real-fake": 'name = "identity"',
    "reconstruction": 'name = "identity"',
    "secret-extraction": SUBVERTED,
    "stego-detector": SUBVERTED,
    "dcr": SURROGATE,
    "logan-blackbox": SURROGATE,
    "logan-whitebox": SURROGATE,
    "latent-recovery": SURROGATE,
}
SANITIZERS = {
    "identity": 'name = "identity"',
    "blackout": 'name = "blackout"',
    "blur": 'name = "blur"',
    "noise": 'name = "noise"',
    "pixelate": 'name = "pixelate"',
    "gap-filter": 'name = "gap-filter"\nepochs = 2',
    "filter-generator": 'name = "filter-generator"\nepochs = 2',
    "generator-only": 'name = "generator-only"\nepochs = 2',
    "ppgan": 'name = "ppgan"\nepochs = 1',
    "ppgan-subverted": SUBVERTED,
    "surrogate-gan": SURROGATE,
}


def spec_file(folder: Path, sanitizer: str, attack: str, task: str = "smiling") -> Path:
    sizes = "\n".join(f"{key} = {value}" for key, value in SIZES.items())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench.toml"
    path.write_text(textwrap.dedent(f"""
        [benchmark]
        name = "throughput"
        tasks = ["{task}"]
        seeds = 1
        profile = "quick"

        [dataset]
        name = "synthfaces"
        """) + sizes + f"\n\n[[sanitizers]]\n{sanitizer}\n\n[[attacks]]\nname = \"{attack}\"\n")
    return path


def run_once(folder: Path, sanitizer: str, attack: str) -> object:
    close_sandboxes()  # each case from cold, as a run starts
    spec = load_spec(spec_file(folder, sanitizer, attack))
    # --device auto's choice: the GPU where there is one.
    options = RunOptions(store=str(folder / "results.db"), cache_dir=str(folder / "cache"),
                         isolation="process", device=resolve_device("auto"))
    return run(spec, options)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_throughput(benchmark, attack, tmp_path):
    counter = iter(range(1000))
    report = benchmark.pedantic(lambda: run_once(tmp_path / str(next(counter)), ATTACKS[attack],
                                                 attack), rounds=1, iterations=1)
    statuses = set(report.statuses.values())
    assert statuses == {"ok"}, report.errors
    [row] = [row for row in report.profile if row.kind == "attack"]
    compute = sum(row.phases.get(name, 0.0) for name in PLUGIN_PHASES)
    harness = sum(row.phases.get(name, 0.0) for name in HARNESS_PHASES)
    figures = {"images_per_second": SIZES["n_attack"] / compute, "cell_s": row.wall,
               "train_s": row.phases.get("train", 0.0), "predict_s": row.phases.get("predict", 0.0),
               "plugin_s": row.phases.get("plugin", 0.0), "harness_s": harness,
               "harness_share": harness / row.wall}
    benchmark.extra_info.update(figures)
    print(f"\n{attack}: " + ", ".join(f"{key} {value:.3g}" for key, value in figures.items()))


@pytest.mark.parametrize("sanitizer", sorted(SANITIZERS))
def test_sanitizer_fit_and_transform_throughput(benchmark, sanitizer, tmp_path):
    counter = iter(range(1000))
    report = benchmark.pedantic(lambda: run_once(tmp_path / str(next(counter)), SANITIZERS[sanitizer],
                                                 "linear-probe"), rounds=1, iterations=1)
    assert set(report.statuses.values()) == {"ok"}, report.errors
    [job] = [row for row in report.profile if row.kind == "job"]
    fit, transform = job.phases.get("fit", 0.0), job.phases.get("transform", 0.0)
    figures = {"fit_images_per_second": SIZES["n_train"] / fit if fit > 0 else float("inf"),
               "transform_images_per_second": ((SIZES["n_attack"] + SIZES["n_test"]) / transform
                                               if transform > 0 else float("inf")),
               "fit_s": fit, "transform_s": transform, "job_s": job.wall}
    benchmark.extra_info.update(figures)
    print(f"\n{sanitizer}: " + ", ".join(f"{key} {value:.3g}" for key, value in figures.items()))
