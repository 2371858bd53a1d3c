"""The detector scoring kind and the real-fake attack: candidates from disjoint halves of the
test split, membership withheld, AUC with its interval, shown beside the ranking."""

from __future__ import annotations

import gc
import sys
import textwrap
import warnings

import pytest
import torch

from ppbench import (AUX, Attack, DetectionResult, DetectorView, PluginContractError,
                     hookimpl)
from ppbench.boards.build import build_leaderboards
from ppbench.boards.board import DETECTION
from ppbench.detection import build_detector_view, score_detection
from ppbench.kinds import ATTACK_KINDS, ViewInputs
from ppbench.registry import build_registry
from ppbench.runner import RunOptions, run
from ppbench.sandbox import close_sandboxes
from ppbench.spec import load_spec
from ppbench.store import ResultStore
from ppbench.testing import toy_splits


def test_a_perfect_detector_scores_one_and_a_blind_one_chance():
    membership = torch.tensor([1, 0] * 200)
    perfect = score_detection(DetectionResult(membership.float()), None, "attack d", membership)
    values = {v.name: v for v in perfect.values}
    assert values["auc"].value == 1.0 and values["detection_advantage"].value == 1.0
    assert values["auc"].primary and values["auc"].chance == 0.5
    blind = score_detection(DetectionResult(torch.randn(400, generator=torch.Generator().manual_seed(0))),
                            None, "attack d", membership)
    auc = next(v for v in blind.values if v.name == "auc")
    assert auc.ci_low < 0.5 < auc.ci_high and abs(auc.value - 0.5) < 0.08
    assert set(blind.items) == {"membership", "scores"}


@pytest.mark.parametrize("scores, message", [(torch.zeros(3), "expected 4 scores"),
                                             (torch.tensor([0.0, float("nan"), 1, 2]), "NaN"),
                                             ([0.1, 0.2, 0.3, 0.4], "must be a tensor")])
def test_bad_scores_are_refused_with_the_rule(scores, message):
    with pytest.raises(PluginContractError, match=message):
        score_detection(DetectionResult(scores), None, "attack d", torch.tensor([0, 1, 0, 1]))


def test_candidates_are_disjoint_halves_and_the_membership_stays_with_the_harness():
    splits = toy_splits(seed=0, n_test=100)
    sanitized = splits.test.with_images(1 - splits.test.images)  # recognisably different
    inputs = ViewInputs(attack=None, sanitizer=None, raw=splits, sanitized_attack=splits.attack,
                        sanitized_test=sanitized, ctx=None, granted=frozenset({AUX}), secret_seed=5)
    view, membership = build_detector_view(inputs)
    assert isinstance(view, DetectorView) and set(vars(view)) == {"sanitized", "raw", "candidates"}
    assert len(view.candidates) == 100 and int(membership.sum()) == 50
    assert not view.sanitized.labels and not view.raw.labels
    # Each candidate is either some item's raw image or its sanitized one, never both for one item.
    raw_rows = {tuple(row.flatten().tolist()) for row in splits.test.images}
    from_raw = torch.tensor([tuple(c.flatten().tolist()) in raw_rows for c in view.candidates])
    assert torch.equal(from_raw.long(), 1 - membership)
    used = [int(torch.nonzero((splits.test.images == c).all(dim=(1, 2, 3)) |
                              (sanitized.images == c).all(dim=(1, 2, 3)))[0]) for c in view.candidates]
    assert len(set(used)) == 100
    # The draw depends on the harness's secret seed.
    other, _ = build_detector_view(ViewInputs(**{**vars(inputs), "secret_seed": 6}))
    assert not torch.equal(other.candidates, view.candidates)


def test_the_detector_kind_is_shown_beside_the_ranking():
    kind = ATTACK_KINDS["detector"]
    assert not kind.ranked and kind.primary == "auc" and kind.result_type is DetectionResult


class MembershipHunter(Attack):
    """A detector that looks for the withheld membership in its process instead of detecting."""

    name = "membership-hunter"
    kind = "detector"
    requires = frozenset({AUX})
    threat_model = "distinguisher"

    def run(self, view, task, ctx):
        n = len(view.candidates)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for obj in gc.get_objects():
                if isinstance(obj, torch.Tensor) and obj.dtype == torch.long and obj.shape == (n,) \
                        and set(obj.unique().tolist()) == {0, 1} and int(obj.sum()) == n // 2:
                    return DetectionResult(obj.float(), {"found": 1.0})
        return DetectionResult(torch.zeros(n), {"found": 0.0})


@hookimpl
def ppbench_register_attacks(register):
    register(MembershipHunter)


SPEC = textwrap.dedent("""
    [benchmark]
    name = "detection"
    tasks = ["smiling"]
    seeds = 1
    profile = "quick"

    [dataset]
    name = "synthfaces"
    n_train = 300
    n_attack = 300
    n_test = 300
    n_aux = 300

    [[sanitizers]]
    name = "identity"

    [[sanitizers]]
    name = "blackout"

    [[attacks]]
    name = "real-fake"

    [[attacks]]
    name = "membership-hunter"

    [[attacks]]
    name = "linear-probe"
    """)


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_real_fake_tells_blackout_from_raw_and_not_identity(tmp_path, isolation):
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(SPEC)
    registry = build_registry(extra_plugins={"hunter": sys.modules[__name__]})
    try:
        report = run(load_spec(spec_path), RunOptions(store=str(tmp_path / "r.db"),
                                                      cache_dir=str(tmp_path / "cache"),
                                                      isolation=isolation), registry=registry)
    finally:
        close_sandboxes()
    assert report.count("error") == 0, report.errors
    frame = ResultStore(tmp_path / "r.db").frame()
    auc = frame[(frame.plugin == "real-fake") & (frame.metric == "auc")].set_index("sanitizer").value
    assert auc["blackout"] > 0.98
    assert abs(auc["identity"] - 0.5) < 0.1
    # The detector's training budget is stored with its figures.
    budget = frame[(frame.plugin == "real-fake") & frame.metric.str.startswith("budget:")]
    assert {"budget:epochs", "budget:max_epochs", "budget:training_items", "budget:width"} <= set(budget.metric)
    if isolation == "process":  # in a sandbox the withheld membership is out of reach
        found = frame[(frame.plugin == "membership-hunter") & (frame.metric == "diag:found")].value
        assert (found == 0.0).all()
        hunted = frame[(frame.plugin == "membership-hunter") & (frame.metric == "auc")].value
        assert (hunted == 0.5).all()

    store = ResultStore(tmp_path / "r.db")
    frame = store.frame()
    (board,) = build_leaderboards(frame, store.items(frame.cell_key.unique()), store.facts())
    detection = [c for c in board.columns if c.key.kind == DETECTION]
    assert {c.key.plugin for c in detection} == {"real-fake", "membership-hunter"}
    # The worst case is over attribute attacks only: a detector never decides a row's rank.
    assert set(board.ranking["worst_attack"]) == {"linear-probe"}
