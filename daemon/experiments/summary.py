"""An experiment's results: per arm, its calls, ratings, thumbs, latency, tokens, cost, errors and
cache hits; each other arm against the control on every metric (daemon/core/stats.py: the test
that suits the metric, with the always-valid p-value that decisions use); the winner on the
experiment's metric; and the metric over time per arm. Pure: it reads the rows the database gave,
one a call, oldest first (experiments/calls.py).

Each metric is a `Metric`: where its values come from, which way is better, and which test suits
it. A new score (a judge's, once LLM-as-judge lands) is one more entry in METRICS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from daemon.core import stats
from daemon.core.experiment import Experiment

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Calls:
    """The experiment's calls as columns, oldest first."""

    arm: npt.NDArray[np.int64]  # the arm's index in the experiment (-1: an arm no longer listed)
    ts: Floats
    ok: Floats  # 1 answered, 0 failed
    latency_ms: Floats  # NaN where unknown
    cost_usd: Floats
    tokens: Floats
    cache_hit: Floats
    stars: Floats  # the latest star rating, NaN where none
    thumbs: Floats  # 1 up, 0 down, NaN where none

    @classmethod
    def of(cls, table: Floats, rated: Floats) -> Calls:
        """From the calls' columns (arm, ts, ok, latency or -1, cost, tokens, cache hit, seq), oldest
        first, and the ratings' (seq, is stars, score), oldest first (experiments/calls.py)."""
        arm, ts, ok, latency, cost, tokens, hit, seq = table.T
        stars, thumbs = np.full(len(table), np.nan), np.full(len(table), np.nan)
        if len(rated) and len(table):
            order = np.argsort(seq)
            found = np.clip(np.searchsorted(seq[order], rated[:, 0]), 0, len(order) - 1)
            position = order[found]
            known = seq[position] == rated[:, 0]
            # The latest rating of a call wins: keep each call's last row.
            last = len(rated) - 1 - np.unique(position[known][::-1], return_index=True)[1]
            rows, where = rated[known][last], position[known][last]
            is_stars = rows[:, 1] > 0
            stars[where[is_stars]] = rows[is_stars, 2]
            thumbs[where[~is_stars]] = (rows[~is_stars, 2] > 0) * 1.0
        latency = np.where(latency < 0, np.nan, latency)
        return cls(arm.astype(np.int64), ts, ok, latency, cost, tokens, hit, stars, thumbs)


Kind = Literal["mean", "proportion", "skewed"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    label: str
    kind: Kind
    values: Callable[[Calls], Floats]  # one value a call, NaN where the call has none
    higher_is_better: bool


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("rating", "mean rating (1-5 stars)", "mean", lambda c: c.stars, True),
        Metric("thumbs_up", "thumbs-up rate", "proportion", lambda c: c.thumbs, True),
        Metric("error_rate", "error rate", "proportion", lambda c: 1.0 - c.ok, False),
        Metric(
            "cost", "cost per call (USD)", "skewed", lambda c: np.where(c.ok > 0, c.cost_usd, np.nan), False
        ),
        Metric(
            "latency", "latency (ms)", "skewed", lambda c: np.where(c.ok > 0, c.latency_ms, np.nan), False
        ),
        Metric("cache_hit", "cache hit rate", "proportion", lambda c: c.cache_hit, True),
    )
}


def arm_figures(calls: Calls, mask: npt.NDArray[np.bool_]) -> dict[str, Any]:
    """One arm's plain figures."""
    n = int(mask.sum())
    ok = mask & (calls.ok > 0)
    latency = calls.latency_ms[ok]
    stars, thumbs = calls.stars[mask], calls.thumbs[mask]
    rated, thumbed = stars[~np.isnan(stars)], thumbs[~np.isnan(thumbs)]
    return {
        "calls": n,
        "errors": int(n - ok.sum()),
        "ratings": int(rated.size), "mean_rating": _mean(rated),
        "thumbs": int(thumbed.size), "thumbs_up_rate": _mean(thumbed),
        "latency_p50_ms": _quantile(latency, 0.5), "latency_p95_ms": _quantile(latency, 0.95),
        "tokens_per_call": _mean(calls.tokens[mask]), "cost_per_call_usd": _mean(calls.cost_usd[mask]),
        "cost_usd": float(calls.cost_usd[mask].sum()),
        "error_rate": float(1 - ok.sum() / n) if n else None, "cache_hit_rate": _mean(calls.cache_hit[mask]),
    }  # fmt: skip


def compare(
    calls: Calls,
    names: Sequence[str],
    arm_index: int,
    metric: Metric,
    min_sample: int,
    alpha: float,
    decisive: bool = True,
) -> dict[str, Any]:
    """Arm `arm_index` against the control (arm 0) on `metric`, in arrival order. The decisive
    metric's always-valid p is the running minimum over the calls' history (a verdict that never
    flickers); the others' is its value now (as valid, and a tenth of the work)."""
    control, arm = names[0], names[arm_index]
    values = metric.values(calls)
    keep = ((calls.arm == 0) | (calls.arm == arm_index)) & ~np.isnan(values)
    x, is_b = values[keep], calls.arm[keep] == arm_index
    a, b = x[~is_b], x[is_b]
    name, better = metric.name, metric.higher_is_better
    if metric.kind == "mean":
        result = stats.compare_means(
            a, b, metric=name, min_sample=min_sample, alpha=alpha, higher_is_better=better, arrival=is_b,
            history=decisive,
        )  # fmt: skip
    elif metric.kind == "skewed":
        result = stats.compare_skewed(
            a, b, metric=name, min_sample=min_sample, alpha=alpha, higher_is_better=better, arrival=is_b,
            history=decisive,
        )  # fmt: skip
    else:
        # The counts give the classical test; the sequence, in arrival order, the running minimum
        # of the always-valid p (valid however often it is read).
        varied = decisive and a.size and b.size and np.ptp(x) > 0  # all alike: nothing to test
        running = stats.msprt_p_value(a, b, arrival=is_b) if varied else None
        result = stats.compare_proportions(
            int(a.sum()), int(a.size), int(b.sum()), int(b.size), metric=name, min_sample=min_sample,
            alpha=alpha, higher_is_better=better, previous_always_valid_p=running,
        )  # fmt: skip
    said = asdict(result)
    said["winner"] = {"a": control, "b": arm}.get(result.winner) if result.winner else None
    said["label"] = metric.label
    said["arm"] = arm
    said["note"] = _named(result.note, control, arm)
    return said


def series(
    calls: Calls, arms: Sequence[str], metric: Metric, since: float, bucket: float
) -> list[dict[str, Any]]:
    """The metric's mean per arm in each time bucket (None where an arm had no value)."""
    values = metric.values(calls)
    if not calls.ts.size:
        return []
    index = np.maximum((calls.ts - since) // bucket, 0).astype(np.int64)
    buckets = int(index.max()) + 1
    means = []
    for number in range(len(arms)):
        mine = (calls.arm == number) & ~np.isnan(values)
        count = np.bincount(index[mine], minlength=buckets)
        total = np.bincount(index[mine], weights=values[mine], minlength=buckets)
        means.append(np.where(count > 0, total / np.maximum(count, 1), np.nan))
    return [
        {"start": since + b * bucket, **{arm: _number(means[n][b]) for n, arm in enumerate(arms)}}
        for b in range(buckets)
    ]


def summarize(experiment: Experiment, calls: Calls, since: float, bucket: float) -> dict[str, Any]:
    names = [a.name for a in experiment.arms]
    primary = METRICS.get(experiment.metric, METRICS["rating"])
    arms = [{**a.as_dict(), **arm_figures(calls, calls.arm == n)} for n, a in enumerate(experiment.arms)]
    comparisons = [
        compare(calls, names, n, metric, experiment.min_sample, experiment.alpha, metric is primary)
        for n in range(1, len(names))
        for metric in METRICS.values()
    ]
    decisive = [c for c in comparisons if c["metric"] == primary.name]
    winner = next((c["winner"] for c in decisive if c["winner"]), None)
    return {
        "metric": primary.name,
        "metric_label": primary.label,
        "arms": arms,
        "comparisons": comparisons,
        "winner": winner,
        "verdict": _verdict(winner, decisive),
        "series": series(calls, names, primary, since, bucket),
    }


def _verdict(winner: str | None, decisive: list[dict[str, Any]]) -> str:
    if winner is not None:
        return f"{winner} wins"
    notes = "; ".join(c["note"] for c in decisive)
    return f"not yet: {notes}" if notes and not notes.startswith("not yet") else notes or "not yet"


def _named(note: str, control: str, arm: str) -> str:
    """The statistics' notes say arm a and arm b: the arms' names instead."""
    for letter, name in (("a", control), ("b", arm)):
        note = note.replace(f"arm {letter}", f"arm {name}")
        if note.startswith(f"{letter} wins"):
            note = name + note[1:]
    return note


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _mean(values: Floats) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def _quantile(values: Floats, q: float) -> float | None:
    values = values[~np.isnan(values)]
    return float(np.quantile(values, q)) if values.size else None
