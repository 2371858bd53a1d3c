"""Martinsson et al.'s claims on gaussians2d, held by the harness's own runs (quick profile, CPU).

1. At every budget, filter + generator's adversary is no further from chance than the filter
   alone's (GAP); at the largest budget it is within 0.08 of 0.5.
2. The realised mean distortion stays within 15% of eps: never above 1.15·eps on any seed, and not
   below 0.85·eps where every method needs the whole budget. Hiding the class costs about 1.0 in
   mean L1 (moving every point onto the boundary between the Gaussians), so below eps = 1 the
   budget binds; above it a method may stop short (the filter with likelihood at eps 1.5 uses
   1.2: flipping the clusters does not need more).
3. Entropy is no worse than likelihood for the filter, the comparison of the paper's Fig. 4
   (baseline with likelihood against the "improved baseline" with entropy), judged by the
   distance of the adversary's balanced accuracy from chance (so below chance counts as leakage).
4. synthfaces, smiling, eps = 0.05: the standard check's advantage is smallest for filter +
   generator, and its fool rate is at least 0.7. (Real-fake detecting generator-only better than
   filter + generator does not hold at the quick profile: both are detected perfectly. The test
   says so as a strict xfail, which fails the day it starts to hold.)
5. The same seed gives the same numbers.

Claim 2 on faces holds at eps 0.02 and 0.05 (the test below checks 0.05), not at eps <= 0.01, and
no setting of this profile makes it: measured on synthfaces smiling, seed 0 (2,000 train images,
batch 64, 31 steps per epoch):

- at the paper's lambda = 1e5 the game settles over budget. Gap-filter at eps 0.001 stays at 0.0020
  (train-mode batch MSE) from epoch 50 to 100 (test MSE 0.0018); filter-generator at 0.0035-0.0040
  from epoch 30 to 60 (test 0.0050): the fool terms gain more than lambda·(D - eps)^2 costs there;
- at the quick profile's 10 epochs the UNet cannot yet reproduce its input that closely: trained
  on reconstruction alone it reaches MSE 0.0013 after 300 steps and 0.0008 after 600, so a larger
  lambda (1e7) leaves 0.0035 (gap-filter) and 0.0039 (filter-generator) at eps 0.001.

The published synthfaces board shows the realised MSE beside every eps.

The default suite checks the budgets where the methods part (eps 1 and 2) on the published
board's first seed; ``-m slow`` runs the published sweep itself (five budgets, both losses, three
seeds: about 5 minutes with two workers) and checks every claim on the seed means. The faces
claims are checked on the published synthfaces-smiling board (three seeds) by default, and run
live on its first seed under ``-m slow`` (about two and a half minutes on two cores).

"The adversary" is the larger distance from chance of the two attacks run, the retrained
classifier (the paper's) and the linear probe: on the published sweep's gap-filter at eps 2, the
classifier stopped at a constant guess on one seed where the probe still read the class (0.65).

A tie is judged with a tolerance of 0.02 in balanced accuracy: the binomial standard error of one
seed's accuracy on the 2,560 test points is at most 0.01, and the methods tie exactly where both
reach chance (large budgets) or neither moves the classes (eps 0.1).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from ppbench.runner import RunOptions, run
from ppbench.spec import BenchmarkSpec, load_spec, spec_from_dict
from ppbench.store import ResultStore
from ppbench.sweep_curves import split_label

PUBLISHED = Path(__file__).resolve().parents[1] / "leaderboards" / "gaussians2d" / "benchmark.toml"
TIE = 0.02
SETTINGS = {"epochs": 40, "batch_size": 1024, "width": 64}  # the published spec's


def reduced_spec(seed: int = 0) -> BenchmarkSpec:
    return spec_from_dict({
        "benchmark": {"name": "gaussians2d-claims", "tasks": ["s"], "seeds": 1, "seed": seed,
                      "standard_check": "adversarial-classifier"},
        "dataset": {"name": "gaussians2d", "n_train": 20000, "n_attack": 4000},
        "sanitizers": [{"name": "gap-filter", "loss": ["entropy", "likelihood"], "eps": [1.0, 2.0], **SETTINGS},
                       {"name": "filter-generator", "loss": "entropy", "eps": [1.0, 2.0], **SETTINGS}],
        "attacks": [{"name": "adversarial-classifier"}, {"name": "linear-probe"}],
        "metrics": [{"name": "fixed-utility"}],
    }, "gaussians2d-claims.toml")


def figures(store: Path) -> pd.DataFrame:
    """One row per sanitizer configuration: the adversary's distance from chance (balanced
    accuracy, averaged over seeds) and the realised mean L1 distortion per coordinate."""
    frame = ResultStore(store).frame()
    assert (frame["status"] == "ok").all(), frame.loc[frame["status"] != "ok", "error"].unique()
    frame = frame[frame["sanitizer"] != "identity"]
    params = frame.drop_duplicates("sanitizer_label").set_index("sanitizer_label")["sanitizer_params"]
    # The adversary's distance from chance is the larger over the attacks run (the retrained
    # classifier, and the linear probe where the spec has it): on a seed where the classifier stops
    # at a constant guess, the probe may still read the class.
    bacc = frame[frame["metric"] == "balanced_accuracy"].groupby(["sanitizer_label", "plugin"])["value"].mean()
    distance = (bacc - 0.5).abs().groupby(level="sanitizer_label").max()
    # fixed-utility's synthetic score is 1 - mean|x - h(x)| / 2 (epsilon_max = 2).
    utility = frame[(frame["plugin"] == "fixed-utility") & (frame["metric"] == "utility")]
    worst_distortion = (2 * (1 - utility["value"])).groupby(utility["sanitizer_label"]).max()
    mean_distortion = (2 * (1 - utility["value"])).groupby(utility["sanitizer_label"]).mean()
    rows = []
    for label, text in params.items():
        p = json.loads(text)
        rows.append({"label": label, "method": label.split("(")[0], "loss": p["loss"],
                     "eps": float(p["eps"]), "distance": distance[label],
                     "distortion": mean_distortion[label], "worst_distortion": worst_distortion[label]})
    return pd.DataFrame(rows).set_index(["method", "loss", "eps"]).sort_index()


def check_claims(table: pd.DataFrame) -> None:
    gap = table["distance"]
    eps_values = sorted(table.index.get_level_values("eps").unique())
    # Claim 1 (entropy, the paper's choice for both methods).
    for eps in eps_values:
        ours, baseline = gap[("filter-generator", "entropy", eps)], gap[("gap-filter", "entropy", eps)]
        assert ours <= baseline + TIE, (f"eps={eps}: filter-generator's adversary is {ours:.3f} from "
                                        f"chance, gap-filter's {baseline:.3f}")
    assert gap[("filter-generator", "entropy", max(eps_values))] <= 0.08
    # Claim 2.
    for (method, loss, eps), row in table.iterrows():
        assert row["worst_distortion"] <= 1.15 * eps, (method, loss, eps, row["worst_distortion"])
        if eps < 1.0:
            assert row["distortion"] >= 0.85 * eps, (method, loss, eps, row["distortion"])
    # Claim 3.
    for eps in eps_values:
        entropy, likelihood = gap[("gap-filter", "entropy", eps)], gap[("gap-filter", "likelihood", eps)]
        assert entropy <= likelihood + TIE, (f"eps={eps}: entropy's adversary is {entropy:.3f} from "
                                             f"chance, likelihood's {likelihood:.3f}")


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("claims")
    run(reduced_spec(), RunOptions(store=str(root / "r.db"), cache_dir=str(root / "cache")))
    return root


def test_the_claims_hold_where_the_methods_part(reduced_run):
    table = figures(reduced_run / "r.db")
    assert len(table) == 6
    check_claims(table)
    # And the sweep does part them: at eps 1 the generator hides the class better than the filter.
    gap = table["distance"]
    assert gap[("filter-generator", "entropy", 1.0)] < gap[("gap-filter", "entropy", 1.0)] - 0.05


def test_the_same_seed_gives_the_same_numbers(reduced_run, tmp_path):
    spec = reduced_spec()
    spec = dataclasses.replace(spec, sanitizers=tuple(
        c for c in spec.sanitizers if c.name == "filter-generator" and dict(c.params)["eps"] == 1.0))
    run(spec, RunOptions(store=str(tmp_path / "again.db"), cache_dir=str(tmp_path / "cache")))
    again = ResultStore(tmp_path / "again.db").frame()
    first = ResultStore(reduced_run / "r.db").frame()
    columns = ["sanitizer_label", "plugin", "metric"]
    first = first[first["sanitizer_label"].isin(again["sanitizer_label"])].set_index(columns)["value"]
    again = again.set_index(columns)["value"]
    assert len(again) > 5
    pd.testing.assert_series_equal(first.sort_index(), again.sort_index(), check_exact=True)


@pytest.mark.slow
def test_the_claims_hold_on_the_published_sweep(tmp_path):
    spec = load_spec(PUBLISHED)
    run(spec, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")),
        executor="process", workers=2)
    table = figures(tmp_path / "r.db")
    assert len(table) == 20
    check_claims(table)


# --- synthfaces, smiling (claim 4, and claim 2 on images) -----------------------------------------

FACES_EPS = 0.05
FACES_BOARD = Path(__file__).resolve().parents[1] / "leaderboards" / "synthfaces-smiling" / "leaderboard.json"


def check_faces_claims(advantage, fool_rate: float, mse) -> None:
    """``advantage``/``mse``: per sanitizer name at eps = FACES_EPS; ``fool_rate``: filter-generator's."""
    others = advantage.drop("filter-generator")
    assert advantage["filter-generator"] < others.min() - 0.1, advantage.to_dict()
    assert fool_rate >= 0.7
    # Claim 2 on images: MSE per pixel within 15% of eps (generator-only needs less: it passes the
    # input through when the drawn smile is the true one).
    assert (mse <= 1.15 * FACES_EPS).all(), mse.to_dict()


def test_the_published_faces_board_holds_the_claims():
    """The default suite's check of the faces claims, on the published board (three seeds); the
    live run of them (about two and a half minutes on two cores) is under ``-m slow``."""
    board = json.loads(FACES_BOARD.read_text())[0]
    rows = {}
    for row in board["rows"]:
        name, params = split_label(row["sanitizer"])
        if params.get("eps") == str(FACES_EPS):
            rows[name] = {key: value["mean"] for key, value in row["values"].items()
                          if isinstance(value, dict) and value.get("mean") is not None}
    assert set(rows) == {"gap-filter", "generator-only", "filter-generator"}
    table = pd.DataFrame(rows).T
    check_faces_claims(table["adversarial-classifier adv"], table.loc["filter-generator", "fool-rate (fool_rate)"],
                       table["distortion (mse)"])


@pytest.fixture(scope="module")
def faces_run(tmp_path_factory):
    """The synthfaces-smiling board's eps = 0.05 row for its first seed (about 2 minutes)."""
    root = tmp_path_factory.mktemp("faces")
    spec = spec_from_dict({
        "benchmark": {"name": "faces-claims", "tasks": ["smiling"], "seeds": 1,
                      "standard_check": "adversarial-classifier"},
        "dataset": {"name": "synthfaces"},
        "sanitizers": [{"name": name, "eps": FACES_EPS, "epochs": 10}
                       for name in ("gap-filter", "generator-only", "filter-generator")],
        "attacks": [{"name": "adversarial-classifier"}, {"name": "real-fake"}],
        "metrics": [{"name": "fool-rate"}, {"name": "distortion"}],
    }, "faces-claims.toml")
    run(spec, RunOptions(store=str(root / "r.db"), cache_dir=str(root / "cache")),
        executor="process", workers=2)
    frame = ResultStore(root / "r.db").frame()
    frame = frame[frame["status"] == "ok"]
    return frame.pivot_table(index="sanitizer", columns=["plugin", "metric"], values="value")


@pytest.mark.slow
def test_on_faces_filter_generator_passes_the_standard_check_best_and_renders_the_drawn_smile(faces_run):
    check_faces_claims(faces_run[("adversarial-classifier", "advantage")],
                       faces_run.loc["filter-generator", ("fool-rate", "fool_rate")],
                       faces_run[("distortion", "mse")])


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="at the quick profile (16x16, 10 epochs) the detector tells every "
                                       "sanitizer's outputs from raw faces perfectly (AUC 1.000 for both), "
                                       "so it cannot rank generator-only above filter-generator")
def test_on_faces_real_fake_detects_generator_only_better_than_filter_generator(faces_run):
    auc = faces_run[("real-fake", "auc")]
    assert auc["generator-only"] > auc["filter-generator"], auc.to_dict()
