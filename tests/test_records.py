"""A sanitizer's per-item records (``Sanitized.records``, e.g. the replacement value a generator
drew): kept with the sanitized splits, lent to metrics, withheld from attacks, cached, sealed."""

from __future__ import annotations

import gc
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ppbench import (Attack, AttackResult, MetricValue, PluginContractError, Sanitized, Sanitizer,
                     UtilityMetric, hookimpl)
from ppbench.guards import transform_batched
from ppbench.registry import build_registry
from ppbench.runner import RunOptions, run
from ppbench.sandbox import close_sandboxes
from ppbench.spec import load_spec
from ppbench.store import ResultStore
from ppbench.testing import check_sanitizer

from test_runner import tables, write_spec


def _secret_channel(s_prime: torch.Tensor) -> torch.Tensor:
    return (0.2 + 0.4 * s_prime.float()).view(-1, 1, 1)


class SwapSecret(Sanitizer):
    """Replaces channel 0 (where the toy data keep the secret) with a freshly drawn secret s'."""

    name = "swap-secret"

    def __init__(self, bad_records: bool = False) -> None:
        self.bad_records = bad_records

    def transform(self, images, ctx):
        if not hasattr(self, "_draws"):
            self._draws = ctx.generator(stream=5)
        s_prime = torch.randint(0, 2, (len(images),), generator=self._draws)
        out = images.clone()
        out[:, 0] = _secret_channel(s_prime)
        return Sanitized(out, {"replacement": s_prime[:-1] if self.bad_records else s_prime})


class ReplacementAgreement(UtilityMetric):
    """How often the secret visible in the output is the recorded replacement: 1 when the records
    follow the items."""

    name = "replacement-agreement"
    requires_records = frozenset({"replacement"})

    def __init__(self, vandal: bool = False) -> None:
        self.vandal = vandal

    def run(self, view, task, ctx):
        drawn = view.records["test"]["replacement"]
        visible = (view.sanitized_test.images[:, 0].mean(dim=(1, 2)) > 0.4).long()
        if self.vandal:
            drawn.zero_()
        return [MetricValue("agreement", float((visible == drawn).float().mean()), primary=True),
                MetricValue("attack_records", float(len(view.records["attack"]["replacement"])),
                            role="diagnostic")]


class RecordHunter(Attack):
    """Looks for the records wherever an attack could: its view, the oracle's answer, and every
    object of its process; predicts the secret from them when found."""

    name = "record-hunter"
    requires = frozenset({"oracle"})

    def run(self, view, task, ctx):
        in_view = any("record" in name for name in vars(view))
        in_oracle = not isinstance(view.oracle(view.test.images[:4]), torch.Tensor)
        with warnings.catch_warnings():  # touching every object wakes deprecation warnings
            warnings.simplefilter("ignore")
            in_process = any(isinstance(obj, dict) and isinstance(obj.get("replacement"), torch.Tensor)
                             and len(obj["replacement"]) == len(view.test) for obj in gc.get_objects())
        guess = torch.zeros(len(view.test), dtype=torch.long)
        return AttackResult(guess, diagnostics={"in_view": float(in_view),
                                                "in_oracle": float(in_oracle),
                                                "in_process": float(in_process)})


@hookimpl
def ppbench_register_sanitizers(register):
    register(SwapSecret)


@hookimpl
def ppbench_register_attacks(register):
    register(RecordHunter)


@hookimpl
def ppbench_register_metrics(register):
    register(ReplacementAgreement)


@pytest.fixture
def registry(testkit):
    yield build_registry(extra_plugins={"records": sys.modules[__name__]})
    close_sandboxes()


def records_run(tmp_path: Path, registry, isolation: str, sanitizer: str = 'name = "swap-secret"',
                metric: str = 'name = "replacement-agreement"', store: str = "results.db"):
    spec = write_spec(tmp_path / "s.toml", tables("sanitizers", sanitizer),
                      tables("attacks", 'name = "record-hunter"', 'name = "threshold"'),
                      tables("metrics", metric))
    options = RunOptions(store=str(tmp_path / store), cache_dir=str(tmp_path / "cache"),
                         isolation=isolation)
    report = run(load_spec(spec), options, registry=registry)
    frame = ResultStore(tmp_path / store).frame()
    return report, {(row.plugin, row.metric): (row.status, row.value, row.error)
                    for row in frame.itertuples()}


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_metrics_read_the_records_and_attacks_never_see_them(registry, tmp_path, isolation):
    report, got = records_run(tmp_path, registry, isolation)
    assert report.count("error") == 0, report.errors
    assert got[("replacement-agreement", "agreement")][1] == 1.0
    assert got[("replacement-agreement", "attack_records")][1] == 240
    # The view and the oracle carry no records; in a sandbox, neither does the attack's process.
    # In process the harness's own objects are within reach (that mode is for development), which
    # shows that the hunter would find them.
    assert got[("record-hunter", "diag:in_view")][1] == 0.0
    assert got[("record-hunter", "diag:in_oracle")][1] == 0.0
    assert got[("record-hunter", "diag:in_process")][1] == (0.0 if isolation == "process" else 1.0)
    # The output shows s', not s: a threshold on channel 0 learns nothing about the true secret.
    assert abs(got[("threshold", "advantage")][1]) < 0.3

    cached, again = records_run(tmp_path, registry, isolation, store="cached.db")
    assert cached.fits_computed == 0 and cached.fits_reused == 1
    assert again[("replacement-agreement", "agreement")][1] == 1.0


def test_the_attack_view_has_no_records_field():
    from ppbench import AttackView

    assert "records" not in AttackView.__dataclass_fields__


def test_records_with_a_row_count_other_than_the_items_fail_the_fit(registry, tmp_path):
    _, got = records_run(tmp_path, registry, "none", sanitizer='name = "swap-secret"\nbad_records = true')
    status, _, error = next(v for k, v in got.items() if k[0] == "replacement-agreement")
    assert status == "error"
    assert "transform (on the attack split): record replacement must have one row per item" in error


def test_a_metric_that_writes_into_the_records_fails_its_cell(registry, tmp_path):
    _, got = records_run(tmp_path, registry, "none",
                         metric='name = "replacement-agreement"\nvandal = true')
    status, _, error = next(v for k, v in got.items() if k[0] == "replacement-agreement")
    assert status == "error" and "modified data lent to it" in error and "test records" in error


def test_records_are_concatenated_across_batches_in_item_order():
    sanitizer = SwapSecret()
    images = torch.rand(50, 3, 4, 4)
    ctx = SimpleNamespace(profile=SimpleNamespace(batch_size=3), device="cpu",
                          generator=lambda stream=0: torch.Generator().manual_seed(stream))
    out, records = transform_batched(sanitizer, images, ctx, "sanitizer swap-secret")
    assert out.shape == images.shape and records["replacement"].shape == (50,)
    visible = (out[:, 0].mean(dim=(1, 2)) > 0.4).long()
    assert torch.equal(visible, records["replacement"])


def test_check_sanitizer_accepts_records_and_rejects_bad_ones():
    check_sanitizer(SwapSecret())
    with pytest.raises(AssertionError, match="one row per item"):
        check_sanitizer(SwapSecret(bad_records=True))


def test_records_must_be_numeric_tensors_named_by_identifiers():
    from ppbench.guards import check_records

    with pytest.raises(PluginContractError, match="identifiers"):
        check_records({"not a name": torch.zeros(3)}, 3, "sanitizer x")
    with pytest.raises(PluginContractError, match="integer or float"):
        check_records({"flags": torch.zeros(3, dtype=torch.bool)}, 3, "sanitizer x")
    with pytest.raises(PluginContractError, match="NaN"):
        check_records({"score": torch.tensor([0.0, float("nan"), 1.0])}, 3, "sanitizer x")
    assert check_records({"drawn": torch.arange(3)}, 3, "sanitizer x")["drawn"].tolist() == [0, 1, 2]


def test_a_metric_reading_a_record_is_na_for_a_sanitizer_that_does_not_record_it(registry, tmp_path):
    _, got = records_run(tmp_path, registry, "none", sanitizer='name = "darken"')
    status, _, reason = next(v for k, v in got.items() if k[0] == "replacement-agreement")
    assert status == "n/a" and "records no replacement per item" in reason
