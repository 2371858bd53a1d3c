"""The results store's row contract and the spec/flag parsing."""

from __future__ import annotations

import math

import pytest

from ppbench.api import MetricValue
from ppbench.spec import SpecError, parse_plugin_arg, spec_from_dict
from ppbench.store import CellRecord, ResultStore


def record(key: str = "k1") -> CellRecord:
    return CellRecord(key, "tiny", "secret", "secret", "darken", '{"strength":0.5}',
                      "darken(strength=0.5)", "attack", "threshold", "{}", "threshold", 0, "quick",
                      scoring="attribute", threat_model="informed")


def test_a_cell_is_stored_whole_and_replaced_whole(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    store.commit_cell(record(), status="ok", values=[
        MetricValue("accuracy", 0.8, better="lower", role="leakage", primary=True, ci_low=0.7,
                    ci_high=0.9, chance=0.5),
        MetricValue("advantage", 0.6, better="lower", role="leakage")], wall_time=1.5,
        device="cpu", provenance={"ppbench": "0.1.0"})
    frame = store.frame()
    assert len(frame) == 2 and set(frame.metric) == {"accuracy", "advantage"}
    row = frame[frame.metric == "accuracy"].iloc[0]
    assert (row.value, row.ci_low, row.ci_high, row.chance, row.is_primary) == (0.8, 0.7, 0.9, 0.5, 1)
    assert row.status == "ok" and row.device == "cpu" and '"ppbench": "0.1.0"' in row.provenance
    assert (row.scoring, row.threat_model) == ("attribute", "informed")

    store.commit_cell(record(), status="error", error="boom")
    frame = store.frame()
    assert len(frame) == 1 and frame.iloc[0].status == "error" and frame.iloc[0].error == "boom"
    assert math.isnan(frame.iloc[0].value) and frame.iloc[0].metric == "" and frame.iloc[0].is_primary == 0
    assert store.finished_keys() == {"k1"} and store.finished_keys(("ok",)) == set()


def test_an_ok_cell_needs_values_and_non_finite_numbers_become_null(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    with pytest.raises(ValueError, match="at least one value"):
        store.commit_cell(record(), status="ok", values=[])
    store.commit_cell(record(), status="ok", values=[MetricValue("x", 1.0, ci_low=float("nan"))])
    assert store.frame().ci_low.isna().all()


def test_a_file_that_is_not_a_store_is_named_in_one_line(tmp_path):
    bogus = tmp_path / "not-a-db.db"
    bogus.write_text("hello, I am text" * 100)
    with pytest.raises(RuntimeError, match="not-a-db.db") as raised:
        ResultStore(bogus)
    assert "\n" not in str(raised.value)


def test_plugin_arguments_parse_values_and_sweeps():
    (config,) = parse_plugin_arg("blur:sigma=2")
    assert config.kwargs == {"sigma": 2} and config.label == "blur(sigma=2)"
    configs = parse_plugin_arg("pixelate:block=[2,4],mode=mean")
    assert [c.kwargs for c in configs] == [{"block": 2, "mode": "mean"}, {"block": 4, "mode": "mean"}]
    assert parse_plugin_arg("identity")[0].kwargs == {}
    with pytest.raises(SpecError, match="not key=value"):
        parse_plugin_arg("blur:sigma")


def test_spec_fields_are_checked_with_the_source_named():
    base = {"benchmark": {"tasks": ["t"]}, "dataset": {"name": "d"}, "sanitizers": [{"name": "s"}]}
    spec = spec_from_dict(base, "x.toml")
    assert spec.tasks == ("t",) and spec.profile == "quick" and spec.seeds == 1
    with pytest.raises(SpecError, match=r"x\.toml.*profile"):
        spec_from_dict({**base, "benchmark": {"tasks": ["t"], "profile": "huge"}}, "x.toml")
    with pytest.raises(SpecError, match=r"x\.toml.*unknown tables.*sanitizer"):
        spec_from_dict({**base, "sanitizer": [{"name": "s"}]}, "x.toml")
    with pytest.raises(SpecError, match=r"x\.toml.*sanitizers\[0\].*name"):
        spec_from_dict({**base, "sanitizers": [{"sigma": 1}]}, "x.toml")
    with pytest.raises(SpecError, match=r"x\.toml.*seeds"):
        spec_from_dict({**base, "benchmark": {"tasks": ["t"], "seeds": 0}}, "x.toml")


def test_spec_round_trips_through_toml():
    from ppbench.spec import load_spec

    base = {"benchmark": {"name": "n", "tasks": ["t"], "seeds": 2}, "dataset": {"name": "d", "k": 3},
            "sanitizers": [{"name": "s", "sigma": [1.0, 2.0]}], "attacks": [{"name": "a"}]}
    spec = spec_from_dict(base, "x.toml")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.toml"
        path.write_text(spec.to_toml())
        again = load_spec(path)
    assert (again.sanitizers, again.attacks, again.dataset_params, again.seeds) == \
        (spec.sanitizers, spec.attacks, spec.dataset_params, spec.seeds)


def test_the_ranking_utility_must_be_one_of_the_specs_metrics():
    from ppbench.runner import plan

    base = {"benchmark": {"tasks": ["smiling"], "ranking_utility": "fixed-utility"},
            "dataset": {"name": "synthfaces"}, "sanitizers": [{"name": "identity"}],
            "attacks": [{"name": "linear-probe"}], "metrics": [{"name": "distortion"}]}
    with pytest.raises(SpecError, match=r"ranking_utility 'fixed-utility' is not one of the spec's metrics \['distortion'\]"):
        plan(spec_from_dict(base, "s.toml"))
    base["metrics"].append({"name": "fixed-utility"})
    spec = spec_from_dict(base, "s.toml")
    assert plan(spec) and spec.ranking_utility == "fixed-utility"
    assert 'ranking_utility = "fixed-utility"' in spec.to_toml()
    with pytest.raises(SpecError, match="ranking_utility must be a metric name"):
        spec_from_dict({**base, "benchmark": {"tasks": ["smiling"], "ranking_utility": 3}}, "s.toml")
