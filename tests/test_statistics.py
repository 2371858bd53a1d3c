"""Leaderboard statistics: each test pins a fix, and fails if that fix were undone."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest

from ppbench.boards.statistics import (
    Interval,
    SeedItems,
    attack_interval,
    attribute_advantage,
    balanced_accuracy,
    leakage_floor,
    orient_binary,
    pareto_marks,
    student_t_interval,
    tiers,
    worst_case,
)
from ppbench.boards.statistics import _paired_bootstrap

NAN = math.nan


def _binary_truth(rng: np.random.Generator, n: int, minority: float = 0.3) -> np.ndarray:
    return (rng.random(n) < minority).astype(np.int64)


def _noisy(rng: np.random.Generator, truth: np.ndarray, advantage: float, k: int = 2) -> np.ndarray:
    """Predictions whose true normalized advantage is ``advantage``: right w.p. a, else uniform."""
    guess = rng.integers(0, k, truth.size)
    return np.where(rng.random(truth.size) < advantage, truth, guess)


def _at_chance(rng: np.random.Generator, m: int, seeds: int, k: int, n: int = 1000) -> dict:
    """m attacks whose predictions are independent of the truth (worst case truly 0)."""
    truths = [_binary_truth(rng, n) if k == 2 else rng.integers(0, k, n) for _ in range(seeds)]
    return {f"attack{a}": [SeedItems(t, rng.integers(0, k, n), k) for t in truths] for a in range(m)}


def _naive(attacks: dict, n_boot: int, seed: int) -> Interval:
    """The old board: max of the means, with the selected attack's own marginal interval."""
    means = {name: np.mean([attribute_advantage(it.truth, it.predicted, it.num_classes) for it in items])
             for name, items in attacks.items()}
    top = max(sorted(means), key=means.get)
    return attack_interval(attacks[top], n_boot=n_boot, seed=seed)


def _covers_zero(interval) -> bool:
    return interval.low <= 0.0 <= interval.high


# --- the figure of merit -------------------------------------------------------------------------

def test_balanced_accuracy_chance_is_one_over_k_on_imbalanced_truth():
    truth = np.array([0] * 730 + [1] * 270)
    for guess in (0, 1):
        constant = np.full_like(truth, guess)
        assert balanced_accuracy(truth, constant, 2) == pytest.approx(0.5, abs=1e-12)
        assert attribute_advantage(truth, constant, 2) == pytest.approx(0.0, abs=1e-12)
    # Plain accuracy against the majority class depends on which constant is guessed.
    plain = [np.mean(truth == guess) - 0.73 for guess in (0, 1)]
    assert plain == pytest.approx([0.0, -0.46])
    truth3 = np.array([0] * 600 + [1] * 300 + [2] * 100)
    for guess in range(3):
        assert balanced_accuracy(truth3, np.full_like(truth3, guess), 3) == pytest.approx(1 / 3)
        assert attribute_advantage(truth3, np.full_like(truth3, guess), 3) == pytest.approx(0.0, abs=1e-12)


def test_chance_does_not_move_with_the_test_sample():
    rng = np.random.default_rng(0)
    k, n, draws = 8, 1000, 400
    advantages, old_chance, old_excess = [], [], []
    for _ in range(draws):
        truth, predicted = rng.integers(0, k, n), rng.integers(0, k, n)
        advantages.append(attribute_advantage(truth, predicted, k))
        majority = np.bincount(truth, minlength=k).max() / n  # the old chance: the test split's
        old_chance.append(majority)
        old_excess.append(np.mean(truth == predicted) - majority)
    assert abs(np.mean(advantages)) < 0.005
    # E[max class frequency] is about 0.141 for 8 uniform classes and n = 1000, not 1/8.
    assert np.mean(old_chance) == pytest.approx(0.141, abs=0.004)
    assert np.mean(old_excess) < -0.01


def test_inverted_binary_classifier_is_leakage_and_random_one_is_not():
    rng = np.random.default_rng(1)
    truth = _binary_truth(rng, 1000)
    assert attribute_advantage(truth, 1 - truth, 2) == pytest.approx(1.0)
    mostly_inverted = 1 - _noisy(rng, truth, 0.8)
    assert attribute_advantage(truth, mostly_inverted, 2) == pytest.approx(0.8, abs=0.06)
    assert orient_binary(truth, 1 - truth, 2).tolist() == truth.tolist()
    cross_fitted, naive = [], []
    for _ in range(400):
        truth, predicted = _binary_truth(rng, 1000), rng.integers(0, 2, 1000)
        cross_fitted.append(attribute_advantage(truth, predicted, 2))
        naive.append(2 * abs(balanced_accuracy(truth, predicted, 2) - 0.5))  # max(bacc, 1 - bacc)
    assert abs(np.mean(cross_fitted)) < 0.01
    assert np.mean(naive) > 0.015  # the uncross-fitted flip reads leakage into pure noise


def test_student_t_interval():
    interval = student_t_interval([1.0, 2.0, 3.0])
    assert interval.mean == 2.0
    assert interval.high - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    single = student_t_interval([0.4])
    assert single.mean == 0.4 and math.isnan(single.low) and math.isnan(single.high)


# --- intervals -----------------------------------------------------------------------------------

def test_bootstrap_matches_an_item_by_item_reference():
    rng = np.random.default_rng(2)
    for k in (2, 3):
        truth = rng.integers(0, k, 37)
        groups = [[SeedItems(truth, rng.integers(0, k, 37), k)],
                  [SeedItems(truth, _noisy(rng, truth, 0.5, k), k)]]
        fast = _paired_bootstrap(groups, 40, seed=7)
        idx = np.random.default_rng(7).integers(0, 37, (40, 37))

        def replicate(i: np.ndarray, predicted: np.ndarray) -> float:
            # The orientation is cross-fitted again in the replicate, each item keeping its half.
            oriented, half = predicted[i].copy(), i % 2
            for h in (0, 1) if k == 2 else ():
                other = half != h
                if other.any() and balanced_accuracy(truth[i][other], predicted[i][other], 2) < 0.5:
                    oriented[half == h] = 1 - predicted[i][half == h]
            return (balanced_accuracy(truth[i], oriented, k) - 1 / k) / (1 - 1 / k)

        slow = [[replicate(i, g[0].predicted) for i in idx] for g in groups]
        np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_bootstrap_redecides_the_orientation_near_chance():
    # Holding the orientation fixed in the replicates covered a true advantage of 0.03 about 0.8 of
    # the time: it ignores the chance of a wrong flip.
    rng = np.random.default_rng(3)
    covered = 0
    for draw in range(200):
        truth = _binary_truth(rng, 1000)
        interval = attack_interval([SeedItems(truth, _noisy(rng, truth, 0.03), 2)], n_boot=400, seed=draw)
        covered += interval.low <= 0.03 <= interval.high
    assert covered / 200 >= 0.92


def test_worst_case_covers_chance_on_the_max_t_path():
    rng = np.random.default_rng(4)
    for m in (3, 6):
        draws = [worst_case(_at_chance(rng, m, 1, 2), n_boot=400, seed=d) for d in range(300)]
        assert all(w.method == f"max-t bootstrap (simultaneous over {m} attacks)" for w in draws)
        assert np.mean([_covers_zero(w) for w in draws]) >= 0.92


def test_naive_worst_case_under_covers_where_max_t_does_not():
    # K = 4 has no orientation, so this isolates the selection of the max over 6 attacks.
    rng = np.random.default_rng(5)
    new, naive = [], []
    for draw in range(300):
        attacks = _at_chance(rng, 6, 1, 4)
        new.append(_covers_zero(worst_case(attacks, n_boot=400, seed=draw)))
        naive.append(_covers_zero(_naive(attacks, n_boot=400, seed=draw)))
    assert np.mean(new) >= 0.92
    assert np.mean(naive) < 0.9


def test_worst_case_covers_chance_on_the_bonferroni_path():
    rng = np.random.default_rng(6)
    for m in (3, 6):
        new, naive = [], []
        for _ in range(300):
            attacks = _at_chance(rng, m, 3, 2)
            result = worst_case(attacks)
            assert result.method == f"Bonferroni Student-t ({m} attacks, 3 seeds)"
            new.append(_covers_zero(result))
            naive.append(_covers_zero(_naive(attacks, n_boot=0, seed=0)))
        assert np.mean(new) >= 0.92
        if m == 6:
            assert np.mean(naive) < 0.85


def test_worst_case_picks_the_strongest_attack_and_pays_for_the_selection():
    rng = np.random.default_rng(7)
    for seeds in (1, 3):
        truths = [_binary_truth(rng, 1000) for _ in range(seeds)]
        attacks = {name: [SeedItems(t, _noisy(rng, t, a), 2) for t in truths]
                   for name, a in (("weak", 0.1), ("strong", 0.4), ("middle", 0.3))}
        result = worst_case(attacks, n_boot=1000)
        assert result.attack == "strong"
        assert result.mean == pytest.approx(attack_interval(attacks["strong"]).mean)
        marginal = attack_interval(attacks["strong"], n_boot=1000)
        assert result.high - result.low > marginal.high - marginal.low
        assert set(result.per_attack) == set(attacks)
        alone = worst_case({"strong": attacks["strong"]}, n_boot=1000)
        assert (alone.low, alone.high) == (marginal.low, marginal.high)  # m = 1: the marginal interval
    truth = _binary_truth(rng, 200)
    same = SeedItems(truth, truth, 2)
    assert worst_case({"b": [same], "a": [same]}, n_boot=100).attack == "a"  # ties: sorted order


def test_worst_case_is_fast_and_deterministic():
    rng = np.random.default_rng(8)
    truths = [rng.integers(0, 50, 1000) for _ in range(2)]
    attacks = {f"a{i}": [SeedItems(t, _noisy(rng, t, 0.3, 50), 50) for t in truths] for i in range(3)}
    start = time.perf_counter()
    first = worst_case(attacks)
    assert time.perf_counter() - start < 1.5
    assert worst_case(attacks) == first


def test_items_must_be_shared():
    rng = np.random.default_rng(9)
    a, b = _binary_truth(rng, 100), _binary_truth(rng, 100)
    with pytest.raises(ValueError):
        worst_case({"x": [SeedItems(a, a, 2)], "y": [SeedItems(b, b, 2)]})
    with pytest.raises(ValueError):
        worst_case({"x": [SeedItems(a, a, 2)], "y": [SeedItems(a, a, 2)] * 2})
    with pytest.raises(ValueError):
        tiers({"r": {"x": [SeedItems(a, a, 2)]}, "s": {"x": [SeedItems(b, b, 2)]}})


# --- ranking -------------------------------------------------------------------------------------

def test_tiers_do_not_rank_noise_but_separate_real_differences():
    rng = np.random.default_rng(10)
    shared = 0
    for draw in range(30):
        truth = _binary_truth(rng, 1000)
        rows = {row: {attack: [SeedItems(truth, _noisy(rng, truth, a), 2)] for attack in ("p", "q")}
                for row, a in (("private", 0.0), ("leaky_a", 0.5), ("leaky_b", 0.5))}
        result = tiers(rows, n_boot=500, seed=draw)
        assert result["private"] == 1 and result["leaky_a"] >= 2 and result["leaky_b"] >= 2
        shared += result["leaky_a"] == result["leaky_b"]
    # Equal rows are split at about 2 * alpha: the order is chosen from the same data.
    assert shared >= 24


def test_tiers_are_monotone_in_the_worst_case_order():
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 3, 800)
    rows = {f"row{i}": {"x": [SeedItems(truth, _noisy(rng, truth, a, 3), 3)],
                        "y": [SeedItems(truth, _noisy(rng, truth, a / 2, 3), 3)]}
            for i, a in enumerate((0.0, 0.05, 0.1, 0.2, 0.3, 0.5))}
    result = tiers(rows, n_boot=500)
    worst = {r: max(attribute_advantage(truth, it[0].predicted, 3) for it in rows[r].values()) for r in rows}
    ordered = [result[r] for r in sorted(rows, key=lambda r: (worst[r], r))]
    assert ordered[0] == 1
    assert all(0 <= b - a <= 1 for a, b in zip(ordered, ordered[1:]))
    assert result["row0"] < result["row5"]
    assert tiers({"only": rows["row0"]}) == {"only": 1}


def test_pareto_marks():
    def box(w_low, w_high, u_low, u_high):
        return (Interval((w_low + w_high) / 2, w_low, w_high, ""),
                Interval((u_low + u_high) / 2, u_low, u_high, ""))

    marks = pareto_marks({
        "a": box(0.10, 0.20, 0.80, 0.90),  # nobody could beat it on both
        "b": box(0.15, 0.25, 0.60, 0.75),  # a might dominate it, not for sure
        "c": box(0.50, 0.60, 0.30, 0.40),  # a dominates it for sure
        "d": box(0.00, 0.05, 0.10, 0.20),  # the most private: on the front whatever its utility
        "e": (Interval(NAN, NAN, NAN, ""), Interval(0.9, 0.8, 1.0, "")),
    })
    assert marks == {"a": "front", "b": "possible", "c": "", "d": "front", "e": ""}
    # Without intervals the means are used; equal points do not dominate each other.
    point = (Interval(0.3, NAN, NAN, ""), Interval(0.9, NAN, NAN, ""))
    worse = (Interval(0.4, NAN, NAN, ""), Interval(0.8, NAN, NAN, ""))
    assert pareto_marks({"x": point, "y": point, "z": worse}) == {"x": "front", "y": "front", "z": ""}


# --- leakage floor -------------------------------------------------------------------------------

def test_leakage_floor():
    rng = np.random.default_rng(12)
    n = 2000
    utility = {"u": rng.integers(0, 4, n), "v": rng.integers(0, 3, n)}
    classes = {"u": 4, "v": 3}
    assert leakage_floor({}, {}, rng.integers(0, 2, n), 2) is None
    determined = leakage_floor(utility, classes, utility["u"] % 2, 2)
    assert attack_interval([determined]).mean > 0.99
    independent = attack_interval([leakage_floor(utility, classes, rng.integers(0, 3, n), 3)])
    assert _covers_zero(independent) and abs(independent.mean) < 0.05
    rare = rng.integers(0, 3, n)
    rare[:2] = 3  # fewer members than folds
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        floor = leakage_floor(utility, classes, rare, 4, seed=1)
    assert floor.predicted.shape == (n,)
    assert attack_interval([floor]).mean > -0.05  # learning the rare class from 1 item pushed it to -0.14


def test_rows_without_per_item_results_are_tiered_over_seeds():
    from ppbench.boards.statistics import seed_tiers, seed_worst_case

    tiers_found = seed_tiers({"private": [0.01, 0.0, 0.02], "same": [0.02, 0.01, 0.0],
                              "leaky": [0.6, 0.7, 0.65]})
    assert tiers_found == {"private": 1, "same": 1, "leaky": 2}
    assert seed_tiers({"a": [0.1, 0.2], "b": [0.5, 0.6]}) is None  # two seeds: no t-test
    attack, interval = seed_worst_case({"weak": [0.1, 0.1, 0.1], "strong": [0.5, 0.6, 0.7]})
    assert attack == "strong" and interval.low < 0.6 < interval.high <= 1.0
    assert "Bonferroni" in interval.method
