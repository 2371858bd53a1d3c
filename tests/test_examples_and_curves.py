"""Publish's figures beyond the trade-off plot: sweep curves and example outputs."""

from __future__ import annotations

import pytest

from ppbench.boards.build import boards_from_store
from ppbench.examples import draw_examples
from ppbench.publish import publish
from ppbench.runner import RunOptions, plan, run
from ppbench.spec import SpecError, spec_from_dict
from ppbench.store import ResultStore
from ppbench.sweep_curves import split_label, sweep_families


def test_labels_split_into_name_and_parameters():
    assert split_label("identity") == ("identity", {})
    assert split_label("blur(sigma=2.0)") == ("blur", {"sigma": "2.0"})
    assert split_label("x(a=[1,2],b=c)") == ("x", {"a": "[1,2]", "b": "c"})


def test_sweeps_group_into_one_curve_per_family():
    labels = ["identity", "blur(sigma=1.0)", "blur(sigma=3.0)",
              "f(eps=0.1,loss=entropy)", "f(eps=1.0,loss=entropy)", "f(eps=0.1,loss=likelihood)",
              "f(eps=1.0,loss=likelihood)", "single(k=1)"]
    curves = sweep_families(labels)
    assert set(curves) == {("blur", "sigma"), ("f (loss=entropy)", "eps"), ("f (loss=likelihood)", "eps")}
    assert curves[("f (loss=entropy)", "eps")] == [(0.1, "f(eps=0.1,loss=entropy)"),
                                                   (1.0, "f(eps=1.0,loss=entropy)")]


def spec(examples: dict | None = None):
    data = {
        "benchmark": {"name": "tiny", "tasks": ["s"], "seeds": 1, "standard_check": "adversarial-classifier"},
        "dataset": {"name": "gaussians2d", "n_train": 400, "n_attack": 200, "n_test": 200, "n_aux": 50},
        "sanitizers": [{"name": "gap-filter", "eps": [0.5, 2.0], "epochs": 1, "width": 8}],
        "attacks": [{"name": "adversarial-classifier", "max_epochs": 2}],
        "metrics": [{"name": "fixed-utility"}],
    }
    if examples is not None:
        data["examples"] = examples
    return spec_from_dict(data, "tiny.toml")


def test_the_examples_table_is_checked_and_round_trips():
    with pytest.raises(SpecError, match=r"tiny.toml: \[examples\] items"):
        spec({"items": 0})
    with pytest.raises(SpecError, match=r"tiny.toml: \[examples\] where"):
        spec({"where": {"eps": [1, 2]}})
    with pytest.raises(SpecError, match=r"tiny.toml: \[examples\] takes"):
        spec({"colour": "red"})
    parsed = spec({"where": {"eps": 2.0}, "items": 50})
    assert parsed.examples_where == (("eps", 2.0),) and parsed.examples_items == 50
    assert "[examples]\nwhere = { eps = 2.0 }\nitems = 50" in parsed.to_toml()
    assert spec().examples_where is None


def test_publish_draws_curves_and_the_cached_points(tmp_path):
    benchmark = spec({"where": {"eps": 2.0}, "items": 100})
    options = RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache"))
    run(benchmark, options)
    out = tmp_path / "board"
    examples, notes = draw_examples(benchmark, tmp_path / "cache", out)
    assert notes == [] and examples == {"gaussians2d-s": [("points-gaussians2d-s.png", "sanitized test points, gaussians2d-s")]}
    assert (out / "points-gaussians2d-s.png").stat().st_size > 1000
    boards = boards_from_store(ResultStore(tmp_path / "r.db"), [c.key for c in plan(benchmark)],
                               benchmark.standard_check)
    written = {p.name for p in publish(boards, benchmark.to_toml(), out, examples=examples)}
    assert {"curves-gaussians2d-s.png", "points-gaussians2d-s.png", "tradeoff-gaussians2d-s.png"} <= written
    markdown = (out / "leaderboard.md").read_text()
    assert "(curves-gaussians2d-s.png)" in markdown and "(points-gaussians2d-s.png)" in markdown
    # Without the run's cache nothing is drawn, and the note says why.
    examples, notes = draw_examples(benchmark, tmp_path / "elsewhere", tmp_path / "other")
    assert examples == {} and "no cached fit" in notes[0]
    # A publication without examples removes the stale figure.
    publish(boards, benchmark.to_toml(), out)
    assert not (out / "points-gaussians2d-s.png").exists()


def test_an_image_strip_shows_generator_rows_per_class(tmp_path):
    benchmark = spec_from_dict({
        "benchmark": {"name": "strip", "tasks": ["smiling"], "seeds": 1},
        "dataset": {"name": "synthfaces", "n_train": 64, "n_attack": 32, "n_test": 32, "n_aux": 32},
        "sanitizers": [{"name": "generator-only", "epochs": 1, "width": 4}],
        "attacks": [], "metrics": [{"name": "distortion"}],
        "examples": {"items": 4},
    }, "strip.toml")
    run(benchmark, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")))
    examples, notes = draw_examples(benchmark, tmp_path / "cache", tmp_path / "out")
    assert notes == [] and list(examples) == ["synthfaces-smiling"]
    assert (tmp_path / "out" / "strip-synthfaces-smiling.png").stat().st_size > 1000
