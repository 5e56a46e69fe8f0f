"""RouteLLM's router metrics: PGR along the strong-share sweep, its area (APGR), and CPT.

A router scores each prompt (higher = more likely to need the strong model). Sending the top k of
n prompts to the strong model and the rest to the weak one gives an accuracy; PGR at that point is
`(accuracy - weak_accuracy) / (strong_accuracy - weak_accuracy)`, APGR is the area under PGR as the
strong share k/n goes from 0 to 1 (trapezoids over every k), and CPT(x) is the smallest strong
share at which PGR reaches x. Definitions as in `../shared/data/routing/README.md`.

Ties. Prompts with equal scores cannot be told apart by a threshold, so within a run of equal
scores the curve is the expected one under a random order (a straight line between the run's
ends). That makes the figures deterministic, and a constant scorer gets exactly the random
router's diagonal (APGR 0.5, CPT(x) = x).

Pure: numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ArrayLike = Sequence[float] | Sequence[bool] | np.ndarray


@dataclass(frozen=True)
class Summary:
    apgr: float
    cpt50: float  # strong share needed for 50 % of the gap, 0..1
    cpt80: float
    cpt95: float


def pgr_curve(
    scores: ArrayLike, weak_correct: ArrayLike, strong_correct: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """(strong share, PGR) at k = 0..n prompts sent to the strong model, highest scores first."""
    s = np.asarray(scores, dtype=np.float64)
    weak = np.asarray(weak_correct, dtype=np.float64)
    strong = np.asarray(strong_correct, dtype=np.float64)
    n = len(s)
    if n == 0 or not len(weak) == len(strong) == n:
        raise ValueError("scores, weak_correct and strong_correct need the same, non-zero length")
    gap = strong.mean() - weak.mean()
    if gap <= 0:
        raise ValueError("PGR needs the strong model to be more accurate than the weak one")
    order = np.argsort(-s, kind="stable")
    ranked = s[order]
    gain = np.concatenate([[0.0], np.cumsum(strong[order] - weak[order])])
    # runs of equal scores: every k inside a run interpolates between the run's two ends
    starts = np.flatnonzero(np.concatenate([[True], ranked[1:] != ranked[:-1]]))
    ends = np.append(starts[1:], n)
    run = np.searchsorted(starts, np.arange(n + 1), side="right") - 1
    run = np.minimum(run, len(starts) - 1)
    lo, hi = starts[run], ends[run]
    k = np.arange(n + 1)
    gained = gain[lo] + (k - lo) / (hi - lo) * (gain[hi] - gain[lo])
    return k / n, gained / n / gap


def apgr(scores: ArrayLike, weak_correct: ArrayLike, strong_correct: ArrayLike) -> float:
    share, pgr = pgr_curve(scores, weak_correct, strong_correct)
    return float(np.sum((pgr[1:] + pgr[:-1]) / 2 * np.diff(share)))


def cpt(scores: ArrayLike, weak_correct: ArrayLike, strong_correct: ArrayLike, level: float) -> float:
    """The smallest strong share (0..1) at which PGR reaches `level` (0.8 for CPT(80 %))."""
    share, pgr = pgr_curve(scores, weak_correct, strong_correct)
    return float(share[np.argmax(pgr >= level - 1e-12)])  # PGR is exactly 1 at share 1


def summarize(scores: ArrayLike, weak_correct: ArrayLike, strong_correct: ArrayLike) -> Summary:
    share, pgr = pgr_curve(scores, weak_correct, strong_correct)
    area = float(np.sum((pgr[1:] + pgr[:-1]) / 2 * np.diff(share)))

    def at(level: float) -> float:
        return float(share[np.argmax(pgr >= level - 1e-12)])

    return Summary(apgr=area, cpt50=at(0.5), cpt80=at(0.8), cpt95=at(0.95))
