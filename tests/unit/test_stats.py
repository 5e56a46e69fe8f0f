"""The A/B statistics: reference values (textbook and scipy), the sequential test's false-positive
rate when read after every observation, its power, and when a winner may be declared."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import astuple

import numpy as np
import pytest
from scipy import stats

from daemon.core.stats import (
    BURN_IN,
    MIXTURE_SD,
    Comparison,
    compare_means,
    compare_proportions,
    compare_skewed,
    interleave,
    msprt_p_from_counts,
    msprt_p_sequence,
    msprt_p_value,
)

ALPHA = 0.05
Draw = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]

# Welch's t-test, Wikipedia, example 1: t = -2.46, df = 24.99, p = 0.021
A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def standardized(x: np.ndarray) -> np.ndarray:
    return np.asarray((x - x.mean()) / x.std(ddof=1))


def no_nan(c: Comparison) -> None:
    for value in astuple(c):
        for x in value if isinstance(value, tuple) else (value,):
            assert not (isinstance(x, float) and not math.isfinite(x)), c


# -- classical tests against references ------------------------------------------------------------


def test_welch_matches_the_textbook_and_scipy() -> None:
    c = compare_means(A1, A2, metric="rating", min_sample=10)
    assert c.test == "Welch's t" and (c.n_a, c.n_b) == (15, 15)
    assert c.p_value == pytest.approx(0.021, abs=5e-4)
    reference = stats.ttest_ind(A2, A1, equal_var=False)
    assert reference.statistic == pytest.approx(2.46, abs=5e-3) and reference.df == pytest.approx(
        24.99, abs=0.01
    )
    assert c.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    # the interval by hand: difference +- t(0.975, Welch-Satterthwaite df) * se
    se = math.hypot(np.std(A1, ddof=1) / math.sqrt(15), np.std(A2, ddof=1) / math.sqrt(15))
    half = stats.t.ppf(0.975, reference.df) * se
    assert c.effect == pytest.approx(np.mean(A2) - np.mean(A1))
    assert c.effect_interval == pytest.approx((c.effect - half, c.effect + half))
    assert c.interval_a == pytest.approx(stats.t.interval(0.95, 14, np.mean(A1), stats.sem(A1)))


def test_mann_whitney_matches_scipy() -> None:
    c = compare_means(A1, A2, metric="rating", min_sample=10, test="mann-whitney")
    assert c.test == "Mann-Whitney U"
    assert c.p_value == pytest.approx(stats.mannwhitneyu(A2, A1).pvalue, rel=1e-12)


def test_fisher_on_the_lady_tasting_tea() -> None:
    # 3 of 4 cups right by chance: one-sided 17/70 = 0.2429, two-sided 34/70 = 0.4857
    assert stats.fisher_exact([[3, 1], [1, 3]], alternative="greater").pvalue == pytest.approx(17 / 70)
    c = compare_proportions(3, 4, 1, 4, metric="thumbs_up", min_sample=1)
    assert c.test == "Fisher's exact" and c.p_value == pytest.approx(34 / 70) == pytest.approx(
        0.4857, abs=1e-4
    )


def test_two_proportion_z_by_hand() -> None:
    # 45/100 vs 60/100: pooled 0.525, se = sqrt(0.525 * 0.475 * 2/100) = 0.070622, z = 0.15 / se = 2.1240
    c = compare_proportions(45, 100, 60, 100, metric="thumbs_up", min_sample=1)
    assert c.test == "two-proportion z"
    assert c.p_value == pytest.approx(2 * stats.norm.sf(2.1240), abs=1e-4) == pytest.approx(0.0337, abs=1e-4)
    # z^2 is Pearson's chi-square without continuity correction
    chi2 = stats.chi2_contingency([[45, 55], [60, 40]], correction=False)
    assert c.p_value == pytest.approx(chi2.pvalue, rel=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),  # Newcombe 1998, "Two-sided confidence intervals for the single proportion"
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_intervals_match_newcombe(k: int, n: int, low: float, high: float) -> None:
    c = compare_proportions(k, n, k, n, metric="error_rate", min_sample=1)
    assert c.interval_a == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize(
    ("a", "n_a", "b", "n_b", "low", "high"),  # Newcombe 1998, difference of proportions, method 10
    [(48, 80, 56, 70, 0.0524, 0.3339), (3, 10, 9, 10, 0.1705, 0.8090)],
)
def test_newcombe_difference_interval(a: int, n_a: int, b: int, n_b: int, low: float, high: float) -> None:
    c = compare_proportions(a, n_a, b, n_b, metric="thumbs_up", min_sample=1)
    assert c.effect == pytest.approx(b / n_b - a / n_a)
    assert c.effect_interval == pytest.approx((low, high), abs=1e-4)


def test_skewed_bootstrap_is_seeded_and_covers_the_difference() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(0.0, 1.0, 400), rng.lognormal(0.3, 1.0, 400)
    c = compare_skewed(a, b, metric="latency", min_sample=100)
    assert c == compare_skewed(a, b, metric="latency", min_sample=100)  # deterministic
    assert c != compare_skewed(a, b, metric="latency", min_sample=100, seed=1)
    assert c.test == "Mann-Whitney U; bootstrap CI"
    assert c.p_value == pytest.approx(stats.mannwhitneyu(b, a).pvalue, rel=1e-12)
    assert c.effect == pytest.approx(b.mean() - a.mean())
    assert c.effect_interval is not None and c.effect is not None
    assert c.effect_interval[0] < c.effect < c.effect_interval[1]
    # the bootstrap agrees with the normal interval to within a tenth of its width
    welch = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    width = welch.high - welch.low
    assert c.effect_interval == pytest.approx((welch.low, welch.high), abs=0.1 * width)
    big = compare_skewed(rng.lognormal(0, 1, 5_000), rng.lognormal(0, 1, 5_000), metric="cost", min_sample=1)
    assert big.test == "Mann-Whitney U; normal CI" and big.effect_interval is not None


# -- the sequential test ---------------------------------------------------------------------------


def test_lambda_is_johari_s_formula() -> None:
    # 30/100 vs 45/100, by the paper's formula with this module's plug-in V and tau
    p_a, p_b, n = 0.30, 0.45, 100
    var_a, var_b = p_a * (1 - p_a) * n / (n - 1), p_b * (1 - p_b) * n / (n - 1)
    diff = p_b - p_a
    var_all = ((n - 1) * (var_a + var_b) + n / 2 * diff**2) / (2 * n - 1)
    v = max(var_all * 2 / n, (var_a + var_b) / n)
    tau2 = MIXTURE_SD**2 * var_all
    lam = math.sqrt(v / (v + tau2)) * math.exp(tau2 * diff**2 / (2 * v * (v + tau2)))
    assert msprt_p_from_counts(30, 100, 45, 100) == pytest.approx(min(1.0, 1 / lam), rel=1e-12)
    assert msprt_p_from_counts(30, 100, 45, 100, previous=0.01) == 0.01
    assert msprt_p_from_counts(3, BURN_IN - 1, 4, 100) is None


def test_the_sequence_is_the_running_minimum_of_the_counts_version() -> None:
    rng = np.random.default_rng(5)
    a, b = (rng.random(300) < 0.3).astype(float), (rng.random(300) < 0.4).astype(float)
    sequence = msprt_p_sequence(a, b)
    assert sequence.shape == (600,) and np.all(np.diff(sequence) <= 0)
    assert np.all(sequence[: 2 * BURN_IN - 2] == 1.0)  # nothing before the burn-in
    is_b = interleave(300, 300)
    pointwise = []
    for t in range(1, 601):
        n_b = int(is_b[:t].sum())
        n_a = t - n_b
        p = msprt_p_from_counts(int(a[:n_a].sum()), n_a, int(b[:n_b].sum()), n_b)
        pointwise.append(1.0 if p is None else p)
    assert sequence == pytest.approx(np.minimum.accumulate(pointwise), rel=1e-9)
    assert msprt_p_value(a, b) == sequence[-1]


def test_arrival_order_is_respected_and_checked() -> None:
    assert interleave(2, 4).tolist() == [True, False, True, True, False, True]  # a at 1/2, 2/2
    a, b = np.arange(30.0), np.arange(30.0) + 5
    late_b = [False] * 30 + [True] * 30
    assert msprt_p_sequence(a, b, arrival=late_b)[:30].tolist() == [1.0] * 30
    with pytest.raises(ValueError):
        msprt_p_sequence(a, b, arrival=[True] * 60)


def _classical_p_after_every_observation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The fixed-horizon z test (Welch's statistic) read after each observation, from the burn-in."""
    n = a.shape[1]
    is_b = interleave(n, n)
    x = np.empty((a.shape[0], 2 * n))
    x[:, ~is_b], x[:, is_b] = a, b

    def running(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        count = np.cumsum(mask)
        total, squares = np.cumsum(x * mask, axis=1), np.cumsum(x * x * mask, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return count, total / count, (squares - total**2 / count) / (count - 1)

    n_a, mean_a, var_a = running(~is_b)
    n_b, mean_b, var_b = running(is_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (mean_b - mean_a) / np.sqrt(var_a / n_a + var_b / n_b)
    p = 2 * stats.norm.sf(np.abs(z))
    return np.where((n_a >= BURN_IN) & (n_b >= BURN_IN) & np.isfinite(p), p, 1.0)


@pytest.mark.parametrize(
    "draw",
    [
        pytest.param(
            lambda rng, shape: rng.choice(5, shape, p=[0.05, 0.1, 0.2, 0.35, 0.3]) + 1.0, id="stars"
        ),
        pytest.param(lambda rng, shape: (rng.random(shape) < 0.1).astype(float), id="proportion-10%"),
        pytest.param(lambda rng, shape: (rng.random(shape) < 0.02).astype(float), id="proportion-2%"),
        pytest.param(lambda rng, shape: rng.lognormal(0.0, 1.5, shape), id="latency"),
    ],
)
def test_a_a_false_positives_when_read_after_every_observation(draw: Draw) -> None:
    experiments, n = 500, 1_000
    rng = np.random.default_rng(2017)
    a, b = draw(rng, (experiments, n)), draw(rng, (experiments, n))
    tolerance = 2 * math.sqrt(ALPHA * (1 - ALPHA) / experiments)  # two binomial sds: 0.0195

    sequential = msprt_p_sequence(a, b)
    sequential_fpr = float((sequential.min(axis=1) < ALPHA).mean())
    assert sequential_fpr <= ALPHA + tolerance

    classical = _classical_p_after_every_observation(a, b)
    assert float((classical[:, -1] < ALPHA).mean()) <= ALPHA + tolerance  # read once, it is fine
    peeking_fpr = float((classical.min(axis=1) < ALPHA).mean())
    assert peeking_fpr > 4 * ALPHA, peeking_fpr  # read after every observation, it is not


def test_power_half_a_star_is_found_in_500_ratings() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(3.5, 1.0, 500), rng.normal(4.0, 1.0, 500)
    c = compare_means(a, b, metric="rating", min_sample=100)
    assert c.winner == "b" and c.significant and c.enough and c.note.startswith("b wins")
    assert c.always_valid_p is not None and c.p_value is not None and c.always_valid_p >= c.p_value
    # the sequential test would have stopped well before 500 per arm
    assert int(np.argmax(msprt_p_sequence(a, b) < ALPHA)) < 400
    assert compare_means(a, b, metric="rating", min_sample=100, test="mann-whitney").winner == "b"
    lower_wins = compare_means(a, b, metric="latency_s", min_sample=100, higher_is_better=False)
    assert lower_wins.winner == "a"


def test_power_on_proportions_and_the_direction_of_error_rates() -> None:
    thumbs = compare_proportions(300, 3_000, 450, 3_000, metric="thumbs_up", min_sample=500)
    assert thumbs.test == "two-proportion z" and thumbs.winner == "b"
    errors = compare_proportions(
        300, 3_000, 450, 3_000, metric="error_rate", min_sample=500, higher_is_better=False
    )
    assert (
        errors.winner == "a"
        and errors.note == f"a wins: lower error_rate (always-valid p {errors.always_valid_p:.2g})"
    )


def test_lower_cost_and_latency_win() -> None:
    rng = np.random.default_rng(4)
    slow, fast = rng.lognormal(6.0, 0.5, 2_000), rng.lognormal(5.7, 0.5, 2_000)
    assert compare_skewed(slow, fast, metric="latency", min_sample=200).winner == "b"
    assert compare_skewed(fast, slow, metric="cost", min_sample=200).winner == "a"
    assert (
        compare_skewed(fast, slow, metric="tokens_per_s", min_sample=200, higher_is_better=True).winner == "b"
    )


# -- when a winner may be declared -----------------------------------------------------------------


def test_no_winner_without_the_minimum_sample_even_if_significant() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(2.0, 1.0, 200), rng.normal(4.0, 1.0, 37)
    c = compare_means(a, b, metric="rating", min_sample=100)
    assert c.significant and not c.enough and c.winner is None
    assert c.note == "not yet: 37 of 100 ratings in arm b"


def test_no_winner_without_significance_even_with_enough() -> None:
    rng = np.random.default_rng(9)
    c = compare_means(rng.normal(3, 1, 300), rng.normal(3, 1, 300), metric="rating", min_sample=100)
    assert c.enough and not c.significant and c.winner is None
    assert c.note.startswith("not yet: no significant difference (always-valid p ")


def test_the_decision_uses_the_always_valid_p_not_the_classical_one() -> None:
    rng = np.random.default_rng(13)
    a, b = (standardized(rng.normal(0, 1, 400)) + shift for shift in (0.0, 0.18))  # Welch's p = 0.011
    c = compare_means(a, b, metric="rating", min_sample=100)
    assert c.p_value == pytest.approx(0.0111, abs=1e-4)
    assert c.always_valid_p is not None and c.always_valid_p >= ALPHA  # 0.12
    assert not c.significant and c.winner is None


# -- edge cases: no NaN ever leaves ----------------------------------------------------------------


@pytest.mark.parametrize("compare", [compare_means, compare_skewed])
@pytest.mark.parametrize(
    ("a", "b", "note"),
    [
        ([], [], "not enough data: 0 value(s) in arm a"),
        ([1.0, 2.0], [], "not enough data: 0 value(s) in arm b"),
        ([], [1.0, 2.0], "not enough data: 0 value(s) in arm a"),
        ([3.0], [1.0, 2.0], "not enough data: 1 value(s) in arm a"),
        ([4.0] * 50, [4.0] * 50, "not enough data: every value is the same"),
    ],
)
def test_degenerate_samples(
    compare: Callable[..., Comparison], a: list[float], b: list[float], note: str
) -> None:
    c = compare(a, b, metric="rating", min_sample=1)
    no_nan(c)
    assert c.p_value is None and c.always_valid_p is None and c.winner is None and c.note == note
    assert c.estimate_a == (np.mean(a) if a else None)


def test_constant_arms_that_differ() -> None:
    c = compare_means([5.0] * 50, [1.0] * 50, metric="rating", min_sample=10)
    no_nan(c)
    assert c.p_value is None and c.effect_interval is None  # Welch's t has no standard error
    assert c.interval_a == (5.0, 5.0) and c.effect == -4.0 and c.winner == "a"  # the mSPRT still decides
    ranks = compare_means([5.0] * 50, [1.0] * 50, metric="rating", min_sample=10, test="mann-whitney")
    assert ranks.p_value == pytest.approx(stats.mannwhitneyu([1.0] * 50, [5.0] * 50).pvalue)


def test_degenerate_proportions() -> None:
    empty = compare_proportions(0, 0, 3, 10, metric="thumbs_up", min_sample=1)
    no_nan(empty)
    assert empty.estimate_a is None and empty.p_value is None and empty.note.startswith("not enough data")
    none_seen = compare_proportions(0, 500, 0, 500, metric="error_rate", min_sample=100)
    no_nan(none_seen)
    assert none_seen.test == "Fisher's exact" and none_seen.p_value == 1.0 and none_seen.always_valid_p == 1.0
    assert none_seen.effect == 0.0 and none_seen.winner is None
    with pytest.raises(ValueError):
        compare_proportions(5, 4, 1, 4, metric="thumbs_up", min_sample=1)


def test_the_p_value_now_is_the_last_step_before_the_running_minimum() -> None:
    from daemon.core import stats as ours

    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 400), rng.normal(0.15, 1, 400)
    now, running = ours.msprt_p_now(a, b), ours.msprt_p_value(a, b)
    assert now is not None and running is not None and now >= running
    # From the arms' totals alone: 1 / Lambda now, what the sequence reaches before its minimum.
    lam = ours._log_lambda(400, a.mean(), a.var(ddof=1), 400, b.mean(), b.var(ddof=1), ours.MIXTURE_SD)
    assert now == pytest.approx(float(ours._p_from(lam)))
    assert ours.msprt_p_now(a[:5], b[:5]) is None  # before the burn-in
