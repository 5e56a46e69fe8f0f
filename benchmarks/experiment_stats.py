"""The A/B statistics (daemon/core/stats.py) on experiment-sized inputs, and their A/A error rates.

Times each comparison on 50,000 values per arm (an experiment summary over 100k traces must stay
under 200 ms, SQL included, so each should take tens of ms at most): median of 7 runs after a warm
one. Then A/A experiments read after every observation: the sequential (mSPRT) p-value against
the classical test's, for ratings, two proportions and a skewed latency.

Run: .venv/bin/python benchmarks/experiment_stats.py [--per-arm N] [--experiments E]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.core import stats as ab  # noqa: E402
from tests.unit.test_stats import _classical_p_after_every_observation  # noqa: E402

BUDGET_MS = 200.0
ALPHA = 0.05


def median_ms(call: Callable[[], Any], runs: int = 7) -> float:
    call()  # warm: scipy.stats' import, numpy's first allocations
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def timings(n: int) -> None:
    rng = np.random.default_rng(0)
    stars = [rng.choice(5, n, p=[0.05, 0.1, 0.2, 0.35, 0.3]) + 1.0 for _ in "ab"]
    latency = [rng.lognormal(6.0, 0.8, n) for _ in "ab"]
    small = [x[: ab.BOOTSTRAP_UP_TO] for x in latency]
    cases: dict[str, Callable[[], Any]] = {
        "compare_means (Welch)": lambda: ab.compare_means(*stars, metric="rating", min_sample=100),
        "compare_means (Mann-Whitney)": lambda: ab.compare_means(
            *stars, metric="rating", min_sample=100, test="mann-whitney"
        ),
        "compare_proportions": lambda: ab.compare_proportions(
            int(0.3 * n), n, int(0.31 * n), n, metric="thumbs_up", min_sample=100
        ),
        "compare_skewed (normal CI)": lambda: ab.compare_skewed(*latency, metric="latency", min_sample=100),
        f"compare_skewed (bootstrap, {ab.BOOTSTRAP_UP_TO}/arm)": lambda: ab.compare_skewed(
            *small, metric="latency", min_sample=100
        ),
        "msprt_p_sequence": lambda: ab.msprt_p_sequence(*latency),
    }
    print(f"{n:,} values per arm (median of 7 runs):")
    total = 0.0
    for name, call in cases.items():
        ms = median_ms(call)
        total += ms if name != "msprt_p_sequence" else 0.0  # already inside the comparisons
        print(f"  {name:42s} {ms:7.1f} ms")
    print(
        f"  a summary of all five comparisons: {total:.1f} ms ({total / BUDGET_MS:.0%} of {BUDGET_MS:.0f} ms)"
    )


def false_positives(experiments: int, n: int) -> None:
    rng = np.random.default_rng(2017)
    draws: dict[str, Callable[[tuple[int, int]], np.ndarray]] = {
        "ratings (1-5 stars)": lambda s: rng.choice(5, s, p=[0.05, 0.1, 0.2, 0.35, 0.3]) + 1.0,
        "normal": lambda s: rng.normal(0.0, 1.0, s),
        "proportion 50 %": lambda s: (rng.random(s) < 0.5).astype(float),
        "proportion 10 %": lambda s: (rng.random(s) < 0.1).astype(float),
        "proportion 2 %": lambda s: (rng.random(s) < 0.02).astype(float),
        "latency (lognormal, sigma 1.5)": lambda s: rng.lognormal(0.0, 1.5, s),
    }
    print(f"\nA/A: {experiments} experiments x {n:,} per arm, read after every observation (alpha {ALPHA}):")
    print(f"  {'metric':32s} {'mSPRT':>7s} {'classical, peeking':>19s} {'classical, once':>16s}")
    for name, draw in draws.items():
        a, b = draw((experiments, n)), draw((experiments, n))
        sequential = (ab.msprt_p_sequence(a, b).min(axis=1) < ALPHA).mean()
        classical = _classical_p_after_every_observation(a, b)
        peeking, once = (classical.min(axis=1) < ALPHA).mean(), (classical[:, -1] < ALPHA).mean()
        print(f"  {name:32s} {sequential:7.1%} {peeking:19.1%} {once:16.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-arm", type=int, default=50_000)
    parser.add_argument("--experiments", type=int, default=500)
    parser.add_argument("--horizon", type=int, default=1_000, help="observations per arm in A/A")
    args = parser.parse_args()
    timings(args.per_arm)
    false_positives(args.experiments, args.horizon)


if __name__ == "__main__":
    main()
