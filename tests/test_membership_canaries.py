"""Membership canaries (``canaries = N`` in a spec's ``[benchmark]`` table; ppbench.membership):
N atypical records shuffled into the sanitizer's fit split and N held out, scored apart by every
membership attack (canary AUC, canary TPR at low FPR with the FPR over the canary non-members),
while the average-case figures, the other attacks' views and canary-free runs stay as they were.

The spy sanitizer, the spy attack and the data set with aux data live in this module and reach
the runner as extra plugins of a registry built here; the releases, member-spy and dcr are the
testkit's and the built-ins.
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from ppbench import Attack, AttackResult, DatasetSpec, Sanitizer, Task, hookimpl
from ppbench.membership import MembershipResult, MembershipTruth, make_canaries, score_membership
from ppbench.registry import build_registry
from ppbench.runner import RunOptions, run
from ppbench.spec import SpecError, load_spec, spec_from_dict
from ppbench.store import ResultStore
from ppbench.testing import TOY_ATTRIBUTES, toy_splits

N_TRAIN, N_TEST = 120, 60

# --- plugins -------------------------------------------------------------------------------------


def load_small_with_aux(profile, seed, n_train=N_TRAIN, n_test=N_TEST, size=8):
    return toy_splits(seed, n_train, n_test, size, n_attack=n_train)  # toy_splits includes aux


SMALL_WITH_AUX = DatasetSpec(
    name="canary-tiny",
    description="the testkit's tiny data set, smaller, with public aux data",
    load=load_small_with_aux,
    attributes=TOY_ATTRIBUTES,
    tasks=(Task("canary-tiny", "secret", "secret", ("keep",)),),
    params={"n_train": N_TRAIN, "n_test": N_TEST, "size": 8},
)


class FitSpy(Sanitizer):
    """Writes down the split it is fitted on (to ``record_to``) and passes images through."""

    name = "fit-spy"

    def __init__(self, record_to: str = ""):
        self.record_to = record_to

    def fit(self, train, task, ctx):
        with open(self.record_to, "wb") as handle:
            pickle.dump({"images": train.images.clone(),
                         "labels": {k: v.clone() for k, v in train.labels.items()}}, handle)
        return self

    def transform(self, images, ctx):
        return images.clone()


class ViewSpy(Attack):
    """An attribute attack that writes down every image its view holds (to ``record_to``)."""

    name = "view-spy"
    threat_model = "raw-trained"
    requires = frozenset({"aux", "raw_train"})

    def __init__(self, record_to: str = ""):
        self.record_to = record_to

    def run(self, view, task, ctx):
        with open(self.record_to, "wb") as handle:
            pickle.dump({name: getattr(view, name).images.clone()
                         for name in ("attack", "test", "raw_train", "aux")}, handle)
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


@hookimpl
def ppbench_register_datasets(register):
    register(SMALL_WITH_AUX)


@hookimpl
def ppbench_register_sanitizers(register):
    register(FitSpy)


@hookimpl
def ppbench_register_attacks(register):
    register(ViewSpy)


@pytest.fixture
def registry(testkit):
    return build_registry(extra_plugins={"canaries": sys.modules[__name__]})


def _spec(dataset, sanitizers, attacks, canaries):
    return spec_from_dict({
        "benchmark": {"name": "canaries", "tasks": ["secret"], "seeds": 1, "canaries": canaries},
        "dataset": {"name": dataset}, "sanitizers": sanitizers, "attacks": attacks,
    }, "canaries.toml")


def _rows(images: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in images.flatten(1).to(torch.float32)}


# --- scoring -------------------------------------------------------------------------------------


def _truth(n_average: int, n_canaries: int, seed: int = 0):
    """Membership truths of an average-case set and of the same set with canaries after it, with
    shown orders, and scores (per set item) that know a little about the average case and a lot
    about the canaries."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    membership = torch.as_tensor(rng.permutation(np.r_[np.ones(n_average), np.zeros(n_average)])).long()
    tie_break = torch.randperm(2 * n_average, generator=g)
    canary = torch.as_tensor(rng.permutation(np.r_[np.ones(n_canaries), np.zeros(n_canaries)])).long()
    scores = np.r_[rng.normal(size=2 * n_average) + 0.5 * membership.numpy(),
                   rng.normal(size=2 * n_canaries) + 3.0 * canary.numpy()]
    plain = MembershipTruth(membership, torch.randperm(2 * n_average, generator=g), tie_break)
    total = 2 * n_average + 2 * n_canaries
    with_canaries = MembershipTruth(
        torch.cat([membership, canary]), torch.randperm(total, generator=g),
        torch.cat([tie_break, torch.randperm(2 * n_canaries, generator=g)]),
        torch.cat([torch.zeros(2 * n_average, dtype=torch.bool), torch.ones(2 * n_canaries, dtype=torch.bool)]))
    return plain, with_canaries, scores


def _score(truth: MembershipTruth, scores: np.ndarray):
    shown = torch.as_tensor(scores)[truth.shown]  # the attack answers in the order it was shown
    scored = score_membership(MembershipResult(shown), None, "attack 'test'", truth)
    return {v.name: v for v in scored.values}, scored.items


def test_canaries_leave_the_average_case_figures_and_items_exactly_as_they_were():
    plain, with_canaries, scores = _truth(200, 100)
    before, items_before = _score(plain, scores[:400])
    after, items_after = _score(with_canaries, scores)
    for name, value in before.items():
        assert (after[name].value, after[name].ci_low, after[name].ci_high) == \
            (value.value, value.ci_low, value.ci_high), name
    for name in ("truth", "predicted", "scores"):
        assert np.array_equal(items_before[name], items_after[name]), name
    assert set(after) - set(before) == {"canary_auc", "canary_tpr_at_1pct_fpr"}
    assert not {"canary_truth", "canary_scores"} & set(items_before)


def test_canary_figures_agree_with_scikit_learn_on_the_canaries_alone():
    """AUC and TPR at 1% FPR of the canary members against the canary non-members (the threshold
    set on the canary non-members); 0.1% only with 1,000 of them, 1% only with 100 (LiRA's rule,
    as for the average-case figures)."""
    _, with_canaries, scores = _truth(200, 100, seed=3)
    values, items = _score(with_canaries, scores)
    truth, canary_scores = items["canary_truth"], items["canary_scores"]
    assert len(truth) == 200 and truth.sum() == 100
    assert np.array_equal(canary_scores, scores[400:])  # in the set's order
    assert values["canary_auc"].value == pytest.approx(roc_auc_score(truth, canary_scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(truth, canary_scores)
    assert values["canary_tpr_at_1pct_fpr"].value == pytest.approx(float(tpr[fpr <= 0.01].max()), abs=1e-12)
    assert "canary_tpr_at_0.1pct_fpr" not in values
    for name in ("canary_auc", "canary_tpr_at_1pct_fpr"):
        value = values[name]
        assert value.role == "leakage" and not value.primary and value.better == "lower"
        assert value.ci_low <= value.value <= value.ci_high
    assert values["canary_auc"].chance == 0.5 and values["canary_tpr_at_1pct_fpr"].chance == 0.01
    # Below 100 canary non-members a 1% FPR is less than one false positive: AUC only.
    _, few, scores = _truth(200, 50, seed=4)
    values, _ = _score(few, scores)
    assert "canary_auc" in values and "canary_tpr_at_1pct_fpr" not in values


def test_canaries_are_atypical_deterministic_and_disjoint_from_the_data():
    splits = toy_splits(0, N_TRAIN, N_TEST, 8, n_attack=N_TRAIN)
    canaries = make_canaries(splits.train, 20, seed=11)
    again = make_canaries(splits.train, 20, seed=11)
    assert torch.equal(canaries.members.images, again.members.images)
    assert torch.equal(canaries.order, again.order)
    assert not torch.equal(make_canaries(splits.train, 20, seed=12).members.images, canaries.members.images)
    assert make_canaries(splits.train, 0, seed=11) is None
    made = torch.cat([canaries.members.images, canaries.non_members.images])
    assert made.shape == (40, *splits.train.shape) and 0.0 <= float(made.min()) <= float(made.max()) <= 1.0
    assert len(_rows(made)) == 40 and not _rows(made) & set().union(*(_rows(s.images) for _, s in splits.items()))
    # Far from every item of the data: farther than the data's items are from one another.
    data = splits.train.images.flatten(1)
    to_data = torch.cdist(made.flatten(1), data).min(dim=1).values
    within = torch.cdist(data[:50], data[50:]).min(dim=1).values
    assert float(to_data.min()) > float(within.max())
    assert set(canaries.members.labels) == {"secret", "keep"}
    # Vector data: points far out from the train mean.
    vectors = splits.train.with_images(torch.randn(N_TRAIN, 2))
    points = make_canaries(vectors, 10, seed=1).members.images
    assert points.shape == (10, 2) and float(points.norm(dim=1).min()) > 3.0


# --- a run ---------------------------------------------------------------------------------------


def test_the_fit_sees_exactly_n_canaries_no_attack_view_holds_them_and_fits_are_keyed_by_n(
        registry, tmp_path):
    """Claim (a): with canaries = N the fit split is train + N canary members; the attribute
    attack's attack, test, raw_train and aux views hold none of them; the membership candidates
    hold the N members and N others no split holds, beside the unchanged average-case set; the
    fit's cache entry is keyed by N (a canary-free fit is never reused, and the other way round),
    and a batch job finds the canary fit (its cell joins the batch)."""
    count = 16
    cache = str(tmp_path / "cache")

    def one_run(name: str, canaries: int):
        folder = tmp_path / name
        folder.mkdir()
        # One record_to for every run: the fit configurations differ by the canaries alone.
        spec = _spec("canary-tiny", [{"name": "fit-spy", "record_to": str(tmp_path / "fit.pkl")}],
                     [{"name": "view-spy", "record_to": str(folder / "view.pkl")},
                      {"name": "member-spy", "record_to": str(folder / "members.pkl")},
                      {"name": "batch-threshold"}], canaries)
        report = run(spec, RunOptions(store=str(folder / "r.db"), cache_dir=cache, batch_attacks=True),
                     registry=registry)
        frame = ResultStore(folder / "r.db").frame()
        assert (frame["status"] == "ok").all(), frame[["plugin", "status", "error"]]
        return report, frame, folder

    report, frame, folder = one_run("with", count)
    assert report.fits_computed == 1
    fit = pickle.loads((tmp_path / "fit.pkl").read_bytes())
    assert len(fit["images"]) == N_TRAIN + count and len(fit["labels"]["secret"]) == N_TRAIN + count
    raw_train = pickle.loads((folder / "view.pkl").read_bytes())["raw_train"]
    assert len(raw_train) == N_TRAIN
    extra = _rows(fit["images"]) - _rows(raw_train)
    assert len(extra) == count and _rows(raw_train) <= _rows(fit["images"])
    # Shuffled in, not appended: some canary sits among the first N_TRAIN items of the fit split.
    assert _rows(fit["images"][:N_TRAIN]) & extra
    views = pickle.loads((folder / "view.pkl").read_bytes())
    assert len(views["attack"]) == N_TRAIN and len(views["test"]) == N_TEST and len(views["aux"]) == N_TEST
    for name, images in views.items():
        assert not _rows(images) & extra, f"a canary reached the {name} view"
    seen = pickle.loads((folder / "members.pkl").read_bytes())["fields"]
    candidates = _rows(seen["candidates"])
    average = 2 * min(N_TRAIN, N_TEST)
    assert len(seen["candidates"]) == average + 2 * count and seen["n_members"] == average // 2 + count
    assert extra <= candidates
    in_data = set().union(*(_rows(images) for images in views.values()))
    held_out = candidates - extra - in_data
    assert len(held_out) == count, "the canary non-members are in no split"
    # Shuffled in: the canaries are not where an order would put them (the last 2N).
    positions = [i for i, row in enumerate(seen["candidates"].flatten(1)) if row.numpy().tobytes() in extra | held_out]
    assert min(positions) < average
    provenance = frame.drop_duplicates("plugin").set_index("plugin")["provenance"]
    assert '"canaries": 16' in provenance["member-spy"] and '"batch"' in provenance["batch-threshold"]
    assert {"canary_auc", "accuracy"} <= set(frame.loc[frame["plugin"] == "member-spy", "metric"])

    # Without canaries: a fit of its own, not the canary fit; the same average-case candidates.
    report, frame, plain = one_run("without", 0)
    assert report.fits_computed == 1 and report.fits_reused == 0
    assert len(pickle.loads((tmp_path / "fit.pkl").read_bytes())["images"]) == N_TRAIN
    seen_plain = pickle.loads((plain / "members.pkl").read_bytes())["fields"]
    assert _rows(seen_plain["candidates"]) == candidates - extra - held_out
    assert "canary_auc" not in set(frame["metric"])
    # With them again: the canary fit is found in the cache.
    report, _, _ = one_run("again", count)
    assert report.fits_computed == 0 and report.fits_reused == 1


def test_a_memorising_release_gives_canary_tpr_near_1_and_one_that_ignores_its_fit_set_chance(
        registry, tmp_path):
    """Claim (b): dcr against a release that copies its fit split finds every canary member (TPR
    1 at 1% FPR over the canary non-members, AUC 1); against noise that ignores the fit split the
    canary figures sit at chance. The board shows the canary column where cells stored it and
    skips it where they did not."""
    from ppbench.boards.build import boards_from_store

    spec = _spec("tiny", [{"name": "copy-release"}, {"name": "noise-release"}], [{"name": "dcr"}], 100)
    run(spec, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")), registry=registry)
    frame = ResultStore(tmp_path / "r.db").frame()
    assert (frame["status"] == "ok").all(), frame["error"].unique()
    values = frame.set_index(["sanitizer", "metric"])

    def value(sanitizer, metric):
        return float(values.loc[(sanitizer, metric), "value"])

    assert value("copy-release", "canary_tpr_at_1pct_fpr") == 1.0
    assert value("copy-release", "canary_auc") == 1.0
    assert value("copy-release", "accuracy") == 1.0  # the average case, as without canaries
    assert ("copy-release", "canary_tpr_at_0.1pct_fpr") not in values.index  # 100 < 1,000
    assert abs(value("noise-release", "canary_auc") - 0.5) < 0.12
    assert value("noise-release", "canary_tpr_at_1pct_fpr") < 0.1
    low, high = values.loc[("noise-release", "canary_auc"), ["ci_low", "ci_high"]]
    assert low <= 0.5 <= high
    board, = boards_from_store(ResultStore(tmp_path / "r.db"))
    assert "dcr canary tpr@1%" in [c.header for c in board.columns]

    plain = _spec("tiny", [{"name": "copy-release"}], [{"name": "dcr"}], 0)
    run(plain, RunOptions(store=str(tmp_path / "plain.db"), cache_dir=str(tmp_path / "cache")), registry=registry)
    board, = boards_from_store(ResultStore(tmp_path / "plain.db"))
    headers = [c.header for c in board.columns]
    assert "dcr tpr@1%" in headers and not any("canary" in h for h in headers)


# --- the spec ------------------------------------------------------------------------------------


def test_canaries_in_the_spec_are_checked_written_and_change_every_key(registry, tmp_path):
    """Claim (c): a non-negative integer or one SpecError line naming the file and the field;
    written back by to_toml; canaries = 0 plans the keys of a spec without the field, N > 0 other
    cell keys and other fit keys."""
    from ppbench.planning import fit_key, group_jobs, plan

    base = {"benchmark": {"tasks": ["secret"]}, "dataset": {"name": "tiny"},
            "sanitizers": [{"name": "darken"}], "attacks": [{"name": "dcr"}]}
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(SpecError, match=r"^x\.toml: \[benchmark\] canaries must be a non-negative "
                                            r"integer .*got " + repr(bad).replace(".", r"\.")) as error:
            spec_from_dict({**base, "benchmark": {"tasks": ["secret"], "canaries": bad}}, "x.toml")
        assert "\n" not in str(error.value)
    assert spec_from_dict(base, "x.toml").canaries == 0
    spec = spec_from_dict({**base, "benchmark": {"tasks": ["secret"], "canaries": 25}}, "x.toml")
    path = tmp_path / "spec.toml"
    path.write_text(spec.to_toml())
    assert "canaries = 25" in path.read_text() and load_spec(path).canaries == 25
    assert "canaries" not in spec_from_dict(base, "x.toml").to_toml()

    zero = spec_from_dict({**base, "benchmark": {"tasks": ["secret"], "canaries": 0}}, "x.toml")
    keys = {n: [c.key for c in plan(s, registry)] for n, s in
            (("absent", spec_from_dict(base, "x.toml")), ("zero", zero), ("some", spec))}
    assert keys["absent"] == keys["zero"] and not set(keys["some"]) & set(keys["zero"])
    job, = group_jobs(plan(spec, registry))
    assert job.canaries == 25 and all(cell.canaries == 25 for cell in job.cells)
    arguments = (registry, job.dataset, job.dataset_params, job.task, job.sanitizer, job.seed, job.profile)
    assert fit_key(*arguments) == fit_key(*arguments, canaries=0) != fit_key(*arguments, canaries=25)
