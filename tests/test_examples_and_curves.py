"""Publish beyond the tables and the trade-off plot: sweep curves, example outputs, and the
papers' figures beside the board's own."""

from __future__ import annotations

import tomllib

import pytest

from ppbench.boards.build import boards_from_store
from ppbench.examples import draw_examples
from ppbench.publish import publish
from ppbench.runner import RunOptions, plan, run
from ppbench.spec import Reference, SpecError, spec_from_dict
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


def test_a_release_strip_shows_the_released_faces_and_their_nearest_fit_images_per_data_configuration(tmp_path):
    import torch

    from ppbench.examples import nearest_fit_images

    benchmark = spec_from_dict({
        "benchmark": {"name": "strip", "tasks": ["smiling"], "seeds": 1},
        "dataset": {"name": "synthfaces", "n_train": [48, 64], "n_attack": 32, "n_test": 32, "n_aux": 32},
        "sanitizers": [{"name": "surrogate-gan", "epochs": 1, "width": 4, "latent_dim": 4,
                        "discriminator_width": 4}],
        "attacks": [], "metrics": [{"name": "distortion"}],  # n/a on a release; the fit is cached
        "examples": {"items": 4},
    }, "strip.toml")
    run(benchmark, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")))
    examples, notes = draw_examples(benchmark, tmp_path / "cache", tmp_path / "out")
    # One strip per data configuration, named like its board.
    assert notes == [] and list(examples) == ["synthfaces-smiling-n_train=48", "synthfaces-smiling-n_train=64"]
    for slug in examples:
        assert (tmp_path / "out" / f"strip-{slug}.png").stat().st_size > 1000
    fit = torch.rand(10, 3, 4, 4)
    nearest, rms = nearest_fit_images(fit[[3, 7]] + 0.01, fit)
    assert torch.equal(nearest, fit[[3, 7]]) and torch.allclose(rms, torch.full((2,), 0.01), atol=1e-4)


def test_reference_tables_are_checked_and_round_trip():
    base = {"benchmark": {"tasks": ["s"]}, "dataset": {"name": "gaussians2d"},
            "sanitizers": [{"name": "identity"}]}
    good = {"source": "Paper, Table 2", "sanitizer": "identity", "column": "x acc", "range": [0.8, 0.9]}
    single = {k: v for k, v in good.items() if k != "range"} | {"value": 0.5, "task": "s"}
    parsed = spec_from_dict({**base, "reference": [good, single]}, "r.toml")
    assert parsed.references == (Reference("Paper, Table 2", "identity", "x acc", 0.8, 0.9),
                                 Reference("Paper, Table 2", "identity", "x acc", 0.5, 0.5, "s"))
    assert spec_from_dict(tomllib.loads(parsed.to_toml()), "again.toml").references == parsed.references
    for bad, message in (({**good, "value": 1.0}, "exactly one of 'value'"),
                         ({**good, "range": [0.9, 0.8]}, "low <= high"),
                         ({k: v for k, v in good.items() if k != "column"}, "string field 'column'"),
                         ({**good, "note": "x"}, "unknown fields")):
        with pytest.raises(SpecError, match=rf"r.toml: \[\[reference\]\] #1.*{message}"):
            spec_from_dict({**base, "reference": [bad]}, "r.toml")


def test_published_boards_show_the_papers_figures_beside_ours(tmp_path):
    benchmark = spec()
    run(benchmark, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")))
    boards = boards_from_store(ResultStore(tmp_path / "r.db"), [c.key for c in plan(benchmark)],
                               benchmark.standard_check)
    label = next(label for label in boards[0].ranking["sanitizer"] if "eps=2.0" in label)
    utility = float(boards[0].figure(label, boards[0].utility_column)["mean"])
    references = (Reference("Paper A", label, "fixed-utility", utility, utility),
                  Reference("Paper B", label, "fixed-utility", 5.0, 6.0),
                  Reference("Paper C", "no-such-row", "fixed-utility", 0.5, 0.5),
                  Reference("Paper D", label, "no such column", 0.5, 0.5),
                  Reference("Paper E", label, "fixed-utility", 0.5, 0.5, task="another task"))
    publish(boards, benchmark.to_toml(), tmp_path / "board", references=references)
    markdown = (tmp_path / "board" / "leaderboard.md").read_text()
    section = markdown.split("**Compared with the papers**")[1]
    lines = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| Paper")}
    assert set(lines) == {"Paper A", "Paper B", "Paper C", "Paper D"}  # E is for another board
    assert lines["Paper A"].rstrip(" |").endswith("yes") and "(1 seeds)" in lines["Paper A"]
    assert "ours lower" in lines["Paper B"]
    assert "no such row" in lines["Paper C"] and "no such column" in lines["Paper D"]
    assert "Compared with the papers" in (tmp_path / "board" / "index.html").read_text()
