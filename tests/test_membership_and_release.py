"""Release mode and the membership scoring kind: the harness's figures against scikit-learn's,
what a membership attack is (and is not) handed, and how every existing plugin meets a release."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from ppbench.membership import (MembershipResult, MembershipTruth, algorithm1_calls, score_membership,
                                tpr_at_fpr)


def _scored(scores: np.ndarray, membership: np.ndarray, seed: int = 0):
    n = len(scores)
    g = torch.Generator().manual_seed(seed)
    shown = torch.randperm(n, generator=g)
    truth = MembershipTruth(torch.as_tensor(membership), shown, torch.randperm(n, generator=g))
    # The attack answers in the order it was shown: shown position p is item shown[p].
    result = MembershipResult(torch.as_tensor(scores)[shown])
    scored = score_membership(result, None, "attack 'test'", truth)
    return {v.name: v for v in scored.values}, scored.items, truth


def _sklearn_tpr_at(membership, scores, target):
    fpr, tpr, _ = roc_curve(membership, scores)
    return float(tpr[fpr <= target].max())


@pytest.mark.parametrize("n, ties", [(400, False), (1200, False), (1000, True)])
def test_membership_scores_agree_with_scikit_learn(n, ties):
    rng = np.random.default_rng(n)
    membership = rng.permutation(np.r_[np.ones(n, int), np.zeros(n, int)])
    scores = rng.normal(size=2 * n) + 0.8 * membership
    if ties:  # coarse scores: many ties, also across the two groups
        scores = np.round(scores * 2) / 2
    values, items, _ = _scored(scores, membership)
    assert abs(values["auc"].value - roc_auc_score(membership, scores)) < 1e-9
    assert abs(values["tpr_at_1pct_fpr"].value - _sklearn_tpr_at(membership, scores, 0.01)) < 1e-9
    for target in (0.001, 0.01, 0.05, 0.2):
        assert abs(tpr_at_fpr(membership, scores, target) - _sklearn_tpr_at(membership, scores, target)) < 1e-9
    # LiRA's rule: TPR at 0.1% FPR only with at least 1,000 non-members.
    assert ("tpr_at_0.1pct_fpr" in values) == (n >= 1000)
    if n >= 1000:
        assert abs(values["tpr_at_0.1pct_fpr"].value - _sklearn_tpr_at(membership, scores, 0.001)) < 1e-9
    # Algorithm 1: exactly n called members; its accuracy, and TPR − FPR at that threshold.
    calls = items["predicted"]
    assert calls.sum() == n and np.array_equal(items["truth"], membership)
    accuracy = float((calls == membership).mean())
    assert values["accuracy"].value == accuracy and values["accuracy"].primary
    tpr, fpr = calls[membership == 1].mean(), calls[membership == 0].mean()
    assert values["advantage"].value == pytest.approx(tpr - fpr, abs=1e-12)
    if not ties:
        top = np.argsort(-scores)[:n]
        assert accuracy == pytest.approx((membership[top].sum() + (n - (1 - membership[top]).sum())) / (2 * n))
    for v in values.values():
        if not v.name.startswith("diag:"):
            assert v.ci_low <= v.value <= v.ci_high, v


def test_membership_figures_sit_at_chance_for_scores_that_know_nothing():
    rng = np.random.default_rng(1)
    n = 1000
    membership = rng.permutation(np.r_[np.ones(n, int), np.zeros(n, int)])
    values, _, _ = _scored(rng.normal(size=2 * n), membership)
    assert values["accuracy"].chance == 0.5 and values["auc"].chance == 0.5
    assert values["accuracy"].ci_low <= 0.5 <= values["accuracy"].ci_high
    assert abs(values["auc"].value - 0.5) < 0.05
    assert values["tpr_at_1pct_fpr"].value < 0.05


def test_ties_at_the_threshold_are_broken_by_the_withheld_order_not_by_position():
    """A constant score must not read membership from the order the harness chose."""
    membership = np.r_[np.ones(500, int), np.zeros(500, int)]  # members first, in the set's order
    values, _, _ = _scored(np.zeros(1000), membership)
    assert abs(values["accuracy"].value - 0.5) < 0.06
    assert values["auc"].value == 0.5


def test_algorithm1_calls_the_highest_scores():
    calls = algorithm1_calls(np.array([0.1, 0.9, 0.5, 0.7]), 2, np.arange(4))
    assert calls.tolist() == [0, 1, 0, 1]


def test_wrong_membership_answers_are_clear_errors():
    truth = MembershipTruth(torch.tensor([1, 0, 1, 0]), torch.arange(4), torch.arange(4))
    with pytest.raises(Exception, match="expected 4 scores"):
        score_membership(MembershipResult(torch.zeros(3)), None, "attack 'x'", truth)
    with pytest.raises(Exception, match="NaN or inf"):
        score_membership(MembershipResult(torch.tensor([0.0, float("nan"), 1.0, 2.0])), None, "attack 'x'", truth)
    with pytest.raises(Exception, match="must return a MembershipResult"):
        score_membership(object(), None, "attack 'x'", truth)


def _spec(sanitizers, attacks, metrics=(), seeds=1):
    from ppbench.spec import spec_from_dict

    return spec_from_dict({
        "benchmark": {"name": "releases", "tasks": ["secret"], "seeds": seeds},
        "dataset": {"name": "tiny"},
        "sanitizers": list(sanitizers), "attacks": list(attacks), "metrics": list(metrics),
    }, "releases.toml")


def test_a_membership_attack_in_a_sandbox_gets_unlabelled_shuffled_candidates_and_nothing_else(testkit, tmp_path):
    """Claim 5: in the process sandbox (--isolation process) the attack holds candidates without
    any label, shuffled so that neither their order nor anything else in the child tells members
    from non-members; the harness alone scores them."""
    from ppbench.runner import RunOptions, run
    from ppbench.store import ResultStore

    record = tmp_path / "seen.pkl"
    spec = _spec([{"name": "darken", "strength": 0.5}], [{"name": "member-spy", "record_to": str(record)}])
    run(spec, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache"), isolation="process"))
    frame = ResultStore(tmp_path / "r.db").frame()
    assert (frame["status"] == "ok").all(), frame["error"].unique()
    seen = pickle.loads(record.read_bytes())
    assert seen["view_type"] == "MembershipView"
    fields = seen["fields"]
    # Nothing is granted beyond the candidates: the attack requires nothing.
    assert fields["release"] is None and fields["aux"] is None and not fields["oracle"] and fields["handles"] == {}
    candidates = fields["candidates"]
    n = fields["n_members"]
    assert isinstance(candidates, torch.Tensor) and candidates.dim() == 4 and len(candidates) == 2 * n
    # Which shown candidates are members, found by the test (it can regenerate the data).
    from ppbench.cache import load_dataset
    from ppbench.registry import get_registry

    splits = load_dataset(get_registry(), "tiny", (), "quick", 0)
    train = splits.train.images.flatten(1)
    is_member = torch.tensor([bool((train == c.flatten()).all(dim=1).any()) for c in candidates])
    assert int(is_member.sum()) == n
    # Shuffled: the members are not where an order would put them.
    assert 0.3 < float(is_member[:n].float().mean()) < 0.7
    # No per-candidate tensor in the child (arguments, globals, anything the gc reaches) is the
    # membership or its complement.
    for values in seen["per_candidate"]:
        for target in (is_member.long(), 1 - is_member.long()):
            assert not torch.equal(values.long(), target)
    # The harness scored it: the brightness score knows nothing, so Algorithm 1 is near chance.
    accuracy = frame.loc[frame["metric"] == "accuracy", "value"].iloc[0]
    assert abs(accuracy - 0.5) < 0.15


def test_every_existing_plugin_meets_a_release_with_a_figure_or_a_reason(testkit, tmp_path):
    """A release is cached like sanitized splits; attribute attacks that declare it train on the
    release and predict real people; membership attacks score it; the rest are n/a, saying why."""
    from ppbench.runner import RunOptions, run
    from ppbench.store import ResultStore

    spec = _spec([{"name": "copy-release"}, {"name": "noise-release"}],
                 [{"name": "dcr"}, {"name": "adversarial-classifier"}, {"name": "threshold"},
                  {"name": "fixed-classifier"}, {"name": "reconstruction"}],
                 [{"name": "surrogate-utility"}, {"name": "mean-abs-change"}])
    options = RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache"))
    report = run(spec, options)
    assert report.fits_computed == 2
    frame = ResultStore(tmp_path / "r.db").frame()

    def value(sanitizer, plugin, metric):
        rows = frame[(frame["sanitizer"] == sanitizer) & (frame["plugin"] == plugin) & (frame["metric"] == metric)]
        assert len(rows) == 1 and rows["status"].iloc[0] == "ok", rows[["status", "error"]]
        return rows["value"].iloc[0]

    # A verbatim copy of the fit split: every member is at distance 0 from the release.
    assert value("copy-release", "dcr", "accuracy") == 1.0
    assert abs(value("noise-release", "dcr", "accuracy") - 0.5) < 0.1
    # The budget behind each figure is stored with it: the records dcr compared against, and the
    # raw-trained references and published items surrogate-utility's C and C' learned from.
    released = frame[(frame["sanitizer"] == "copy-release") & (frame["plugin"] == "dcr")
                     & (frame["metric"] == "budget:training_items")]
    assert len(released) == 1 and released["value"].iloc[0] > 0
    for name in ("budget:reference_models", "budget:training_items", "budget:max_epochs"):
        assert value("copy-release", "surrogate-utility", name) > 0, name
    # Trained on the release's labels, tested on real people: the copy leaks the attribute.
    assert value("copy-release", "adversarial-classifier", "advantage") > 0.8
    assert abs(value("noise-release", "adversarial-classifier", "advantage")) < 0.25
    # C' on the copy is C itself, up to training noise; on noise it learns nothing.
    assert abs(value("copy-release", "surrogate-utility", "gap")) < 0.1
    assert value("noise-release", "surrogate-utility", "accuracy") < value("copy-release", "surrogate-utility", "accuracy") - 0.2
    statuses = frame.drop_duplicates(["sanitizer", "plugin"]).set_index(["sanitizer", "plugin"])
    for plugin, reason in (("threshold", "does not apply to releases"),
                           ("fixed-classifier", "does not apply to releases"),
                           ("reconstruction", "does not apply to releases"),
                           ("mean-abs-change", "does not apply to releases")):
        assert statuses.loc[("copy-release", plugin), "status"] == "n/a"
        assert reason in statuses.loc[("copy-release", plugin), "error"]
    # The board: membership in its own group with its own worst case, which never flags.
    from ppbench.boards.build import boards_from_store
    from ppbench.boards.render import render

    board, = boards_from_store(ResultStore(tmp_path / "r.db"), standard_check="adversarial-classifier")
    headers = [c.header for c in board.columns]
    assert {"dcr adv", "dcr acc", "dcr tpr@1%", "membership worst-case adv"} <= set(headers), headers
    # surrogate-utility's C and gap C - C' are reported beside C' (never ranked).
    assert {"surrogate-utility", "surrogate-utility (real_accuracy)", "surrogate-utility (gap)"} <= set(headers)
    gap = board.table.set_index(["sanitizer", "column"]).loc[("copy-release", "surrogate-utility (gap)")]
    assert gap["mean"] == pytest.approx(value("copy-release", "surrogate-utility", "gap"))
    assert gap["ci_low"] <= gap["mean"] <= gap["ci_high"]
    ranking = board.ranking.set_index("sanitizer")
    assert ranking.loc["copy-release", "membership_worst_case"] == pytest.approx(1.0)
    assert ranking.loc["copy-release", "membership_worst_attack"] == "dcr"
    assert ranking.loc["copy-release", "worst_attack"] == "adversarial-classifier"  # attribute worst case apart
    assert not ranking["flag"].any()
    text = " ".join(board.footnotes)
    assert "Algorithm-1 accuracy" in text and "Release rows" in text
    assert "membership worst-case adv" in render([board], "md")
    # The ROC figure draws the strongest membership attack from the stored per-candidate scores.
    from ppbench.membership_roc import draw_membership_roc, strongest_membership

    assert strongest_membership(board)[:2] == ("copy-release", "dcr")
    keys = ResultStore(tmp_path / "r.db").frame()["cell_key"].unique().tolist()
    drawn = draw_membership_roc(ResultStore(tmp_path / "r.db"), [board], keys, tmp_path / "site")
    assert drawn == {board.slug: [(f"roc-{board.slug}.png", drawn[board.slug][0][1])]}
    assert (tmp_path / "site" / f"roc-{board.slug}.png").stat().st_size > 1000
    # Cached: one more attack costs no fit, and reads the same release.
    again = run(_spec([{"name": "copy-release"}], [{"name": "dcr"}, {"name": "linear-probe"}]), options)
    assert again.fits_computed == 0 and again.fits_reused == 1


def test_a_release_without_the_tasks_labels_is_the_sanitizers_error():
    from ppbench.release import check_release
    from ppbench.testing import TOY_TASK, toy_splits

    splits = toy_splits()
    attributes = splits.train.attributes
    release = splits.train.subset(slice(0, 10))
    checked = check_release(release, TOY_TASK, attributes, splits.train.shape, "sanitizer 'x'")
    assert set(checked.labels) == {"secret", "keep"} and checked.images.dtype == torch.float32
    from ppbench.data import ImageSet

    with pytest.raises(Exception, match="no labels of 'keep'"):
        check_release(ImageSet(release.images, {"secret": release.labels["secret"]}), TOY_TASK,
                      attributes, splits.train.shape, "sanitizer 'x'")
    with pytest.raises(Exception, match="item shape"):
        check_release(ImageSet(release.images[:, :, :4], dict(release.labels)), TOY_TASK, attributes,
                      splits.train.shape, "sanitizer 'x'")
    with pytest.raises(Exception, match=r"lie in 0\.\.1"):
        check_release(ImageSet(release.images, {**release.labels, "keep": release.labels["keep"] + 5}),
                      TOY_TASK, attributes, splits.train.shape, "sanitizer 'x'")


def test_an_attack_that_does_not_apply_to_its_handle_is_na_with_the_reason(testkit, tmp_path):
    """logan-whitebox needs a discriminator that scores realness; a bare function is another form."""
    from ppbench.runner import RunOptions, run
    from ppbench.store import ResultStore

    run(_spec([{"name": "with-discriminator"}], [{"name": "logan-whitebox"}, {"name": "dcr"}]),
        RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")))
    frame = ResultStore(tmp_path / "r.db").frame().drop_duplicates("plugin").set_index("plugin")
    assert frame.loc["logan-whitebox", "status"] == "n/a"
    assert "no realness(images, ctx)" in frame.loc["logan-whitebox", "error"]
    assert frame.loc["dcr", "status"] == "n/a" and "release" in frame.loc["dcr", "error"]


def test_a_release_fitted_in_the_sandbox_is_checked_and_scored_alike(testkit, tmp_path):
    from ppbench.runner import RunOptions, run
    from ppbench.store import ResultStore

    run(_spec([{"name": "copy-release"}], [{"name": "dcr"}]),
        RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache"), isolation="process"))
    frame = ResultStore(tmp_path / "r.db").frame()
    assert frame.loc[frame["metric"] == "accuracy", "value"].iloc[0] == 1.0


def test_query_distortion_reads_a_filter_that_remembered_its_fit_split(testkit, tmp_path):
    """The loss attack through query access: a filter that leaves its fit images untouched and
    changes others is read perfectly; a fixed transform that fits nothing sits at chance; a
    release has no transform to query and its cell says so."""
    from ppbench.runner import RunOptions, run
    from ppbench.store import ResultStore

    spec = _spec([{"name": "memorising-filter"}, {"name": "darken", "strength": 0.5},
                  {"name": "copy-release"}], [{"name": "query-distortion"}], seeds=2)
    run(spec, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")))
    frame = ResultStore(tmp_path / "r.db").frame()
    accuracy = frame[frame["metric"] == "accuracy"].groupby("sanitizer")["value"].mean()
    assert accuracy["memorising-filter"] == 1.0
    assert abs(accuracy["darken"] - 0.5) < 0.12
    # Its budget: the oracle queries it made.
    queries = frame[frame["metric"] == "budget:queries"].groupby("sanitizer")["value"].first()
    assert set(queries.index) == {"memorising-filter", "darken"} and (queries > 0).all()
    release = frame[frame["sanitizer"] == "copy-release"]
    assert set(release["status"]) == {"n/a"}
    assert "no transform to query" in release["error"].iloc[0]


def test_surrogate_utility_measures_a_transform_and_a_release_on_one_column(testkit, tmp_path):
    """On a transform C' learns the sanitized images (true labels) and is tested on sanitized
    test images; C is tested on real ones. A transform that keeps `keep` (darken scales channel 0,
    the secret's, only) costs a learner nothing, nor does a verbatim release: release and
    transform rows fill one utility column."""
    from ppbench.boards.build import boards_from_store
    from ppbench.runner import RunOptions, run
    from ppbench.store import ResultStore

    spec = _spec([{"name": "darken", "strength": 1.0}, {"name": "copy-release"}],
                 [{"name": "adversarial-classifier"}], [{"name": "surrogate-utility"}])
    run(spec, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")))
    frame = ResultStore(tmp_path / "r.db").frame()
    utility = frame[(frame["plugin"] == "surrogate-utility")]
    assert set(utility["status"]) == {"ok"}, utility["error"].unique()
    gap = utility[utility["metric"] == "gap"].set_index("sanitizer")["value"]
    assert abs(gap["darken"]) < 0.1
    assert abs(gap["copy-release"]) < 0.1
    board, = boards_from_store(ResultStore(tmp_path / "r.db"), standard_check="adversarial-classifier")
    column = board.table[board.table["column"] == "surrogate-utility"]
    assert len(column) == 2 and (column["status"] == "ok").all()
