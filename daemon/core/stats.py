"""The statistics of a prompt A/B experiment, pure: is arm b better than arm a on a metric, and may
the console say so yet?

The console refreshes after every trace, so a result is read after every observation. A
fixed-horizon test read that way finds a "significant" difference in 30-47 % of A/A experiments
of 1,000 observations per arm (benchmarks/experiment_stats.py). Decisions therefore use an
always-valid p-value from the mixture sequential probability ratio test (mSPRT, Johari et al.
2017, "Peeking at A/B tests"), not alpha spending: alpha spending needs a planned horizon and a
schedule of looks, and an experiment here has neither (it runs until someone stops it, and is
looked at whenever).

The mSPRT works on the difference of means b - a, normal by the CLT (a proportion is the mean of
0/1 values). With the mixture effect ~ N(0, tau^2) and an estimate of variance V,

    Lambda_n = sqrt(V / (V + tau^2)) * exp(tau^2 * diff^2 / (2 V (V + tau^2)))

and p_n = min(p_{n-1}, 1 / Lambda_n) is valid however often it is read (Ville's inequality). Even
one Lambda_n read on its own is valid; the running minimum only stops a winner from flickering.
V and tau are plug-in estimates, as in the paper:
- V is the larger of the pooled (under H0) and the per-arm (Welch) variance of the difference,
  so a rare event that one arm has not seen yet, or an uneven split with unequal variances,
  cannot shrink it;
- tau = MIXTURE_SD data standard deviations: the test is most sensitive near small effects.
Nothing is tested before BURN_IN observations per arm, where the plug-in variance is too noisy.

Classical tests (scipy) stand beside it for information: their p-value and intervals are the
familiar ones, but only `always_valid_p` declares a winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

MIXTURE_SD = 0.2  # tau in data sds: Cohen's "small" effect
BURN_IN = 20  # observations per arm before the sequential test starts
BOOTSTRAP_RESAMPLES = 1_000
BOOTSTRAP_UP_TO = 1_000  # values per arm (~18 ms); above, the CLT interval is as good and far cheaper
_FISHER_BELOW = 5  # any expected cell under this: Fisher's exact instead of the z test
_Z95 = 1.959963984540054

Floats = npt.NDArray[np.float64]
Interval = tuple[float, float]


@dataclass(frozen=True)
class Comparison:
    metric: str
    test: str
    n_a: int
    n_b: int
    estimate_a: float | None  # the arm's mean or proportion
    estimate_b: float | None
    interval_a: Interval | None  # 95 %
    interval_b: Interval | None
    effect: float | None  # b - a
    effect_interval: Interval | None
    p_value: float | None  # the classical test's, for information
    always_valid_p: float | None  # the mSPRT's: the one decisions use
    significant: bool
    enough: bool
    winner: Literal["a", "b"] | None
    note: str


# -- the sequential test ----------------------------------------------------------------------------


def _log_lambda(
    n_a: Any, mean_a: Any, var_a: Any, n_b: Any, mean_b: Any, var_b: Any, tau: float, floor: Any = 0.0
) -> Floats:
    """log Lambda from each arm's count, mean and sample variance (numpy arrays or scalars); 0 (no
    evidence) where the variance of all values is at most `floor`, the rounding of running sums."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n_a, n_b = np.asarray(n_a, dtype=np.float64), np.asarray(n_b, dtype=np.float64)
        diff = np.asarray(mean_b, dtype=np.float64) - mean_a
        squares = (n_a - 1) * var_a + (n_b - 1) * var_b + n_a * n_b / (n_a + n_b) * diff**2
        var_all = squares / (n_a + n_b - 1)
        v = np.maximum(var_all * (1 / n_a + 1 / n_b), var_a / n_a + var_b / n_b)
        r = tau**2 * var_all / v  # tau^2 / V
        log_lambda = -0.5 * np.log1p(r) + 0.5 * diff**2 / v * r / (1 + r)
        ready = (n_a >= BURN_IN) & (n_b >= BURN_IN) & (var_all > floor)
    return np.where(ready, np.nan_to_num(log_lambda, nan=0.0), 0.0)


def _p_from(log_lambda: Floats) -> Floats:
    return np.asarray(np.minimum(1.0, np.exp(-log_lambda)), dtype=np.float64)


def interleave(n_a: int, n_b: int) -> npt.NDArray[np.bool_]:
    """The arrival order assumed when none is given: each arm spread evenly over the experiment
    (a, b, a, b ... for an even split). True marks an observation of arm b."""
    at = np.concatenate([(np.arange(n_a) + 1) / max(n_a, 1), (np.arange(n_b) + 1) / max(n_b, 1)])
    return np.concatenate([np.zeros(n_a, bool), np.ones(n_b, bool)])[np.argsort(at, kind="stable")]


def msprt_p_sequence(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    arrival: npt.ArrayLike | None = None,
    tau: float = MIXTURE_SD,
) -> Floats:
    """The always-valid p-value after each observation (n_a + n_b of them, along the last axis).

    `a` and `b` are each in arrival order; `arrival` (True = arm b) says how they interleave, else
    `interleave`. Leading axes are independent experiments (the tests simulate 500 at once)."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    is_b = interleave(xa.shape[-1], xb.shape[-1]) if arrival is None else np.asarray(arrival, bool)
    if is_b.sum() != xb.shape[-1] or is_b.size != xa.shape[-1] + xb.shape[-1]:
        raise ValueError("arrival must mark exactly len(b) of len(a) + len(b) observations as b")
    if is_b.size == 0:
        return np.ones(xa.shape[:-1] + (0,))
    x = np.empty(xa.shape[:-1] + (is_b.size,))
    x[..., ~is_b], x[..., is_b] = xa, xb
    x -= x.mean(axis=-1, keepdims=True)  # running sums of squares lose less precision near 0
    floor = 1e-12 * np.max(x * x, axis=-1, keepdims=True)  # below it, "variance" is rounding noise

    def running(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.int64], Floats, Floats]:
        n = np.cumsum(mask, dtype=np.int64)
        total, squares = np.cumsum(x * mask, axis=-1), np.cumsum(x * x * mask, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total / n
            var = np.maximum(squares - total * mean, 0.0) / (n - 1)
        return n, mean, var

    log_lambda = _log_lambda(*running(~is_b), *running(is_b), tau, floor)
    return np.asarray(np.minimum.accumulate(_p_from(log_lambda), axis=-1), dtype=np.float64)


def msprt_p_value(
    a: npt.ArrayLike, b: npt.ArrayLike, *, arrival: npt.ArrayLike | None = None, tau: float = MIXTURE_SD
) -> float | None:
    """The always-valid p-value now, after all of `a` and `b`; None before BURN_IN in each arm."""
    xa, xb = np.ravel(np.asarray(a, dtype=np.float64)), np.ravel(np.asarray(b, dtype=np.float64))
    if min(xa.size, xb.size) < BURN_IN:
        return None
    return float(msprt_p_sequence(xa, xb, arrival=arrival, tau=tau)[-1])


def msprt_p_now(a: npt.ArrayLike, b: npt.ArrayLike, *, tau: float = MIXTURE_SD) -> float | None:
    """1 / Lambda from the arms' totals alone, in O(n) without the history. It is valid whenever it
    is read: the mSPRT bounds the chance that 1 / Lambda ever falls below alpha, at any time; the
    running minimum (`msprt_p_value`) only keeps it from rising again. For the metrics a decision
    does not rest on, where reading fast matters more than a monotone figure."""
    xa, xb = np.ravel(np.asarray(a, dtype=np.float64)), np.ravel(np.asarray(b, dtype=np.float64))
    if min(xa.size, xb.size) < BURN_IN:
        return None
    centre = np.concatenate([xa, xb]).mean()
    floor = 1e-12 * max(np.max((xa - centre) ** 2), np.max((xb - centre) ** 2))
    log_lambda = _log_lambda(
        xa.size, xa.mean(), xa.var(ddof=1), xb.size, xb.mean(), xb.var(ddof=1), tau, floor
    )
    return float(_p_from(log_lambda))


def msprt_p_from_counts(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, previous: float | None = None
) -> float | None:
    """The always-valid p-value of two proportions from counts alone. Without the history this is
    1 / Lambda now, min'd with the `previous` p the caller kept; both are valid at any peek."""
    if min(n_a, n_b) < BURN_IN:
        return None
    p_a, p_b = successes_a / n_a, successes_b / n_b
    var_a, var_b = p_a * (1 - p_a) * n_a / (n_a - 1), p_b * (1 - p_b) * n_b / (n_b - 1)
    p = float(_p_from(_log_lambda(n_a, p_a, var_a, n_b, p_b, var_b, MIXTURE_SD)))
    return p if previous is None else min(p, previous)


# -- the comparisons --------------------------------------------------------------------------------


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    value = float(x)
    return value if np.isfinite(value) else None


def _interval(low: Any, high: Any) -> Interval | None:
    lo, hi = _finite(low), _finite(high)
    return None if lo is None or hi is None else (lo, hi)


def _mean_interval(x: Floats) -> Interval | None:
    from scipy import stats  # scipy.stats takes a second to import: only when an experiment is read

    if x.size < 2:
        return None
    mean, sem = float(x.mean()), float(stats.sem(x))
    return (mean, mean) if sem == 0 else _interval(*stats.t.interval(0.95, x.size - 1, mean, sem))


@dataclass(frozen=True)
class _Setup:
    """What a comparison was asked, before any estimate."""

    metric: str
    test: str
    n_a: int
    n_b: int
    min_sample: int
    alpha: float
    higher_is_better: bool


def _conclude(
    setup: _Setup,
    estimates: tuple[float | None, float | None],
    intervals: tuple[Interval | None, Interval | None],
    effect: float | None,
    effect_interval: Interval | None,
    p_value: float | None,
    always_valid_p: float | None,
    why_not: str = "",
) -> Comparison:
    """The verdict, the same for every metric: a winner only if significant and enough."""
    s = setup
    short = [(arm, n) for arm, n in (("a", s.n_a), ("b", s.n_b)) if n < s.min_sample]
    significant = always_valid_p is not None and always_valid_p < s.alpha
    winner: Literal["a", "b"] | None = None
    if why_not:
        note = f"not enough data: {why_not}"
    elif short:
        counts = ", ".join(f"{n} of {s.min_sample} {_noun(s.metric)} in arm {arm}" for arm, n in short)
        note = f"not yet: {counts}"
    elif always_valid_p is None or effect is None or not significant:
        shown = "none yet" if always_valid_p is None else f"{always_valid_p:.3g} >= {s.alpha:g}"
        note = f"not yet: no significant difference (always-valid p {shown})"
    else:
        winner = "b" if (effect > 0) == s.higher_is_better else "a"
        better = "higher" if s.higher_is_better else "lower"
        note = f"{winner} wins: {better} {s.metric} (always-valid p {always_valid_p:.2g})"
    return Comparison(
        s.metric, s.test, s.n_a, s.n_b, *estimates, *intervals, effect, effect_interval,
        p_value, always_valid_p, significant, not short, winner, note,
    )  # fmt: skip


def _noun(metric: str) -> str:
    return {"rating": "ratings", "cost": "requests", "latency": "requests"}.get(metric, "observations")


def _why_not(xa: Floats, xb: Floats) -> str:
    if min(xa.size, xb.size) < 2:
        return f"{min(xa.size, xb.size)} value(s) in arm {'a' if xa.size <= xb.size else 'b'}"
    if np.ptp(np.concatenate([xa, xb])) == 0:
        return "every value is the same"
    return ""


def compare_means(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    metric: str,
    min_sample: int,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    test: Literal["welch", "mann-whitney"] = "welch",
    arrival: npt.ArrayLike | None = None,
    history: bool = True,
) -> Comparison:
    """Ratings and other roughly normal metrics: the difference of means with Welch's interval.
    The classical p is Welch's t, or Mann-Whitney U (ordinal ratings, no normality assumed)."""
    from scipy import stats

    xa, xb = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    name = "Welch's t" if test == "welch" else "Mann-Whitney U"
    setup = _Setup(metric, name, xa.size, xb.size, min_sample, alpha, higher_is_better)
    estimates = (_finite(xa.mean()) if xa.size else None, _finite(xb.mean()) if xb.size else None)
    intervals = (_mean_interval(xa), _mean_interval(xb))
    if why_not := _why_not(xa, xb):
        effect = None if None in estimates else float(xb.mean() - xa.mean())
        return _conclude(setup, estimates, intervals, effect, None, None, None, why_not)
    effect, effect_interval, p = float(xb.mean() - xa.mean()), None, None
    if np.ptp(xa) > 0 or np.ptp(xb) > 0:  # else Welch's t divides rounding noise by zero
        welch = stats.ttest_ind(xb, xa, equal_var=False)  # b first: the effect is b - a
        effect_interval, p = _interval(*welch.confidence_interval(0.95)), welch.pvalue
    if test == "mann-whitney":
        p = stats.mannwhitneyu(xb, xa).pvalue
    always_valid_p = msprt_p_value(xa, xb, arrival=arrival) if history else msprt_p_now(xa, xb)
    return _conclude(setup, estimates, intervals, effect, effect_interval, _finite(p), always_valid_p)


def _wilson(successes: int, n: int) -> Interval | None:
    from scipy import stats

    return None if n == 0 else _interval(*stats.binomtest(successes, n).proportion_ci(0.95, "wilson"))


def compare_proportions(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    metric: str,
    min_sample: int,
    alpha: float = 0.05,
    higher_is_better: bool = True,
    previous_always_valid_p: float | None = None,
) -> Comparison:
    """Rates (thumbs up, errors, cache hits): Wilson interval per arm, Newcombe's hybrid score
    interval for the difference, two-proportion z or Fisher's exact when a cell expects < 5."""
    from scipy import stats

    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b):
        raise ValueError("successes must be within 0..n in each arm")
    ci_a, ci_b = _wilson(successes_a, n_a), _wilson(successes_b, n_b)
    table = np.array([[successes_a, n_a - successes_a], [successes_b, n_b - successes_b]])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / max(table.sum(), 1)
    fisher = bool((expected < _FISHER_BELOW).any())
    name = "Fisher's exact" if fisher else "two-proportion z"
    setup = _Setup(metric, name, n_a, n_b, min_sample, alpha, higher_is_better)
    p_a = successes_a / n_a if n_a else None
    p_b = successes_b / n_b if n_b else None
    if p_a is None or p_b is None or ci_a is None or ci_b is None:
        return _conclude(
            setup, (p_a, p_b), (ci_a, ci_b), None, None, None, None, "an arm has no observations"
        )
    effect = p_b - p_a
    newcombe = (
        effect - float(np.hypot(p_b - ci_b[0], ci_a[1] - p_a)),
        effect + float(np.hypot(ci_b[1] - p_b, p_a - ci_a[0])),
    )
    if fisher:
        p_value = _finite(stats.fisher_exact(table).pvalue)
    else:
        pooled = (successes_a + successes_b) / (n_a + n_b)
        z = effect / np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
        p_value = _finite(2 * stats.norm.sf(abs(z)))
    always_valid = msprt_p_from_counts(successes_a, n_a, successes_b, n_b, previous=previous_always_valid_p)
    return _conclude(setup, (p_a, p_b), (ci_a, ci_b), effect, newcombe, p_value, always_valid)


def _bootstrap_means(x: Floats, rng: np.random.Generator) -> Floats:
    return np.asarray(x[rng.integers(0, x.size, (BOOTSTRAP_RESAMPLES, x.size))].mean(axis=1))


def compare_skewed(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    metric: str,
    min_sample: int,
    alpha: float = 0.05,
    higher_is_better: bool = False,
    seed: int = 0,
    arrival: npt.ArrayLike | None = None,
    history: bool = True,
) -> Comparison:
    """Cost and latency: the difference of MEANS, with a percentile bootstrap interval (the CLT
    interval above BOOTSTRAP_UP_TO values per arm), and Mann-Whitney U's p for information.

    Means, not medians: the sequential test that decides compares means, and the effect shown must
    be the one it decided on; mean cost is also what the bill adds up to."""
    from scipy import stats

    xa, xb = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    bootstrap = max(xa.size, xb.size) <= BOOTSTRAP_UP_TO
    name = "Mann-Whitney U; bootstrap CI" if bootstrap else "Mann-Whitney U; normal CI"
    setup = _Setup(metric, name, xa.size, xb.size, min_sample, alpha, higher_is_better)
    estimates = (_finite(xa.mean()) if xa.size else None, _finite(xb.mean()) if xb.size else None)
    if why_not := _why_not(xa, xb):
        intervals = (_mean_interval(xa), _mean_interval(xb))
        effect = None if None in estimates else float(xb.mean() - xa.mean())
        return _conclude(setup, estimates, intervals, effect, None, None, None, why_not)
    effect = float(xb.mean() - xa.mean())
    if bootstrap:
        rng = np.random.default_rng(seed)
        boot_a, boot_b = _bootstrap_means(xa, rng), _bootstrap_means(xb, rng)

        def percentile(x: Floats) -> Interval | None:
            return _interval(*np.percentile(x, [2.5, 97.5]))

        intervals = (percentile(boot_a), percentile(boot_b))
        effect_interval = percentile(boot_b - boot_a)
    else:
        intervals = (_mean_interval(xa), _mean_interval(xb))
        se = float(np.hypot(stats.sem(xa), stats.sem(xb)))
        effect_interval = (effect - _Z95 * se, effect + _Z95 * se)
    return _conclude(
        setup,
        estimates,
        intervals,
        effect,
        effect_interval,
        _finite(stats.mannwhitneyu(xb, xa).pvalue),
        msprt_p_value(xa, xb, arrival=arrival) if history else msprt_p_now(xa, xb),
    )
