"""What the semantic cache learns from a bad hit (daemon/cache/fences.py), on small fixed vectors:
a fence raises the bar only between the neighbourhoods of the two questions it was set for."""

from __future__ import annotations

import numpy as np

from daemon.cache.fences import Fences, cosine_pairs
from daemon.cache.semantic import choose


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, np.float32)
    return vector / np.linalg.norm(vector)


# Axis 0 is the shared topic; axes 1 and 2 tell the two questions apart; axis 3 is elsewhere.
ASKED = unit(1.0, 0.25, 0.0, 0.0)  # the question that got a wrong answer
ANSWERED = unit(1.0, 0.0, 0.25, 0.0)  # the entry's question that gave it
NEAR_ASKED = unit(1.0, 0.26, 0.0, 0.02)  # a rewording of the asked question
ELSEWHERE = unit(0.0, 0.0, 0.0, 1.0)
WRONG_SCORE = float(ASKED @ ANSWERED)


def fenced(**options: float) -> Fences:
    fences = Fences(radius=0.99, margin=0.01, **options)  # type: ignore[arg-type]
    fences.add("t", ASKED, ANSWERED)
    return fences


def bars(fences: Fences, query: np.ndarray, *candidates: np.ndarray, table: str = "t") -> list[float]:
    return [float(bar) for bar in fences.bars(table, query, np.stack(candidates), cosine_pairs)]


def test_the_pair_needs_more_than_its_wrong_score_either_way_round_and_from_nearby() -> None:
    fences = fenced()
    assert WRONG_SCORE > 0.9  # a near pair: the kind of mistake a threshold lets through
    for query, candidate in ((ASKED, ANSWERED), (ANSWERED, ASKED), (NEAR_ASKED, ANSWERED)):
        assert bars(fences, query, candidate) == [np.float32(WRONG_SCORE + 0.01)]


def test_a_fence_holds_nothing_outside_its_two_neighbourhoods() -> None:
    fences = fenced()
    assert bars(fences, ASKED, ELSEWHERE, NEAR_ASKED) == [-np.inf, -np.inf]  # its own side is not fenced
    assert bars(fences, ELSEWHERE, ANSWERED) == [-np.inf]
    assert bars(fences, ASKED, ANSWERED, table="another embedder") == [-np.inf]


def test_choose_skips_a_fenced_candidate_and_says_so_but_takes_the_next_one() -> None:
    fences = fenced()
    candidates = [("wrong", ANSWERED), ("rewording", NEAR_ASKED)]
    match, _ = choose(ASKED, candidates, 0.9, fences=fences, table="t")
    assert match is not None and match.entry_id == "rewording"
    match, why = choose(ASKED, candidates[:1], 0.9, fences=fences, table="t")
    assert match is None and "fence" in why and f"{WRONG_SCORE + 0.01:.3f}" in why
    unfenced, _ = choose(ASKED, candidates[:1], 0.9)
    assert unfenced is not None and unfenced.entry_id == "wrong"


def test_fences_load_as_stored_keep_the_newest_and_are_forgotten_with_their_embedder() -> None:
    fences = Fences(radius=0.99, limit=2)
    other = (unit(0.0, 1.0, 0.0, 0.0), unit(0.0, 0.0, 1.0, 0.0))
    rows = [("t", ASKED.tobytes(), ANSWERED.tobytes()), ("u", ASKED.tobytes(), ANSWERED.tobytes())]
    rows += [("t", a.tobytes(), b.tobytes()) for a, b in (other, other)]
    rows.append(("odd", ASKED[:2].tobytes(), ANSWERED.tobytes()))  # of two shapes: not usable
    fences.load(rows)
    assert fences.count("t") == 2 and fences.count("u") == 1 and fences.count("odd") == 0
    assert bars(fences, ASKED, ANSWERED) == [-np.inf]  # the oldest of "t" went over the limit
    assert bars(fences, ASKED, ANSWERED, table="u") != [-np.inf]
    fences.forget(["u"])
    assert fences.count() == 2
