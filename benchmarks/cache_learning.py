"""A cache that learns: QQP replayed through the semantic cache, with simulated "bad hit" feedback.

The replay. Every question of the verifier's held-out QQP fold (`_semantic_data.py`, fold 0: it
never saw them) is asked 1 + Poisson(`--repeats`, default 2) times, in a random order, of a cache
that starts empty and runs as the daemon's does: a question already cached word for word is the
exact cache's; any other is looked up by meaning (its 10 nearest entries by cosine, rescored by
the shipped verifier, chosen by `daemon.cache.semantic.choose`); a miss is answered and stored, a
hit is not (so a question matched wrongly is matched wrongly again each time it comes back,
until someone says so).

The labels. A hit is *right* when the two questions are labelled duplicates (transitively), and
*false* when they are a labelled hard-negative pair; other hits are unlabelled (QQP does not say).
The false-hit rate is false hits over the lookups that could go wrong that way (the question's
hard-negative partner was in the cache); the hit rate is right hits over the lookups that could
hit (a labelled duplicate was in the cache): the static protocol's two rates, as the cache runs.

The feedback. A user marks a share (default 30 %) of the false hits as bad hits. Three caches see
the same stream: one without feedback, one where a bad hit only evicts the entry, and the
daemon's, where it also fences the pair (`daemon/cache/fences.py`). The rates are printed over
successive fifths of the replay, and in total.

    .venv/bin/python benchmarks/cache_learning.py [--seeds 10] [--repeats 2] [--feedback 0.3]
        [--radius 0.93] [--margin 0.01]

Needs ../shared and the `[local]` MiniLM (the vectors are cached in benchmarks/.cache/).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _semantic_data import QQP, load_qqp  # noqa: E402

from daemon.cache.fences import Fences  # noqa: E402
from daemon.cache.semantic import choose  # noqa: E402
from daemon.cache.verify import Verifier  # noqa: E402

TEST_FOLD = 0
WINDOWS = 5
K = 10  # candidates, as the profile's default
NEIGHBOURS = 64
TABLE = "replay"


@dataclass
class Tally:
    """One window's counts."""

    lookups: int = 0
    right: int = 0
    false: int = 0
    could_hit: int = 0
    could_go_wrong: int = 0
    unlabelled: int = 0

    def false_rate(self) -> float:
        return self.false / max(self.could_go_wrong, 1)

    def line(self) -> str:
        hit = self.right / max(self.could_hit, 1)
        return f"{100 * hit:5.1f} % {100 * self.false_rate():6.2f} %"


@dataclass
class Replay:
    """The fold's questions, their labels and the stream of asks."""

    vectors: np.ndarray
    group: np.ndarray  # per question: its labelled-duplicate cluster
    partners: list[set[int]]  # per question: its hard-negative partners
    duplicates: list[set[int]]  # per question: the other questions of its cluster
    stream: np.ndarray  # question indexes, in the order they are asked
    neighbours: np.ndarray  # per question, the NEIGHBOURS nearest others by cosine, nearest first
    last_cosine: np.ndarray  # per question, the cosine of the farthest of them


def replay_of(data: QQP, seed: int, repeats: float) -> Replay:
    dup = data.dup[data.dup_fold == TEST_FOLD]
    neg = data.neg[data.neg_fold == TEST_FOLD]
    texts = np.unique(np.concatenate([dup.ravel(), neg.ravel()]))
    local = {int(t): i for i, t in enumerate(texts)}
    group = data.dup_group[texts]
    partners: list[set[int]] = [set() for _ in texts]
    for a, b in neg:
        partners[local[int(a)]].add(local[int(b)])
        partners[local[int(b)]].add(local[int(a)])
    members: dict[int, set[int]] = {}
    for i, g in enumerate(group):
        members.setdefault(int(g), set()).add(i)
    duplicates = [members[int(g)] - {i} for i, g in enumerate(group)]
    rng = np.random.default_rng(seed)
    vectors = data.vectors[texts]
    asks = np.repeat(np.arange(len(texts)), 1 + rng.poisson(repeats, len(texts)))
    neighbours, last_cosine = nearest_others(vectors)
    return Replay(vectors, group, partners, duplicates, rng.permutation(asks), neighbours, last_cosine)


def nearest_others(vectors: np.ndarray, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's NEIGHBOURS nearest others, once: the live cache's K nearest are among them
    (or, rarely, the whole cache is scanned: see `Cache.candidates`)."""
    order = np.empty((len(vectors), NEIGHBOURS), np.int64)
    for start in range(0, len(vectors), block):
        sims = vectors[start : start + block] @ vectors.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        top = np.argpartition(-sims, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
        ranked = np.take_along_axis(sims, top, 1).argsort(axis=1)[:, ::-1]
        order[start : start + block] = np.take_along_axis(top, ranked, 1)
    last = (vectors[order[:, -1]] * vectors).sum(axis=1)
    return order, last


@dataclass
class Cache:
    """The semantic cache as the daemon runs it, over precomputed vectors."""

    replay: Replay
    verifier: Verifier
    learn: str  # "none" | "evict" | "fence"
    feedback: float
    fences: Fences
    rng: np.random.Generator
    live: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.live = np.zeros(len(self.replay.vectors), bool)

    def ask(self, question: int, tally: Tally) -> None:
        if self.live[question]:
            return  # word for word: the exact cache's
        replay, vector = self.replay, self.replay.vectors[question]
        tally.lookups += 1
        tally.could_hit += any(self.live[d] for d in replay.duplicates[question])
        tally.could_go_wrong += any(self.live[p] for p in replay.partners[question])
        nearest = self.candidates(question)
        if len(nearest):
            candidates = [(str(i), replay.vectors[i]) for i in nearest]
            match, _ = choose(vector, candidates, self.verifier.threshold, self.verifier,
                              fences=self.fences, table=TABLE)  # fmt: skip
            if match is not None:
                self.hit(question, int(match.entry_id), tally)
                return
        self.live[question] = True  # a miss is answered and stored

    def candidates(self, question: int) -> np.ndarray:
        """The K live entries nearest `question`, as sqlite-vec's search would give them (exactly:
        from the precomputed neighbours, or by a scan when fewer than K of those are live and
        the rest could still pass the verifier's prefilter)."""
        replay = self.replay
        near = replay.neighbours[question]
        live = near[self.live[near]][:K]
        if len(live) == K or replay.last_cosine[question] < self.verifier.prefilter:
            return live
        alive = np.flatnonzero(self.live)
        cosines = replay.vectors[alive] @ replay.vectors[question]
        return alive[np.argsort(-cosines)[:K]]

    def hit(self, question: int, entry: int, tally: Tally) -> None:
        replay = self.replay
        if replay.group[question] == replay.group[entry]:
            tally.right += 1
        elif entry in replay.partners[question]:
            tally.false += 1
            if self.learn != "none" and self.rng.random() < self.feedback:
                self.live[entry] = False  # a bad hit evicts the entry...
                if self.learn == "fence":  # ...and fences the pair
                    self.fences.add(TABLE, replay.vectors[question], replay.vectors[entry])
        else:
            tally.unlabelled += 1


def run(replay: Replay, verifier: Verifier, learn: str, args: argparse.Namespace, seed: int) -> list[Tally]:
    fences = Fences(radius=args.radius, margin=args.margin)
    cache = Cache(replay, verifier, learn, args.feedback, fences, np.random.default_rng(seed + 1))
    windows = [Tally() for _ in range(WINDOWS)]
    for at, question in enumerate(replay.stream):
        cache.ask(int(question), windows[at * WINDOWS // len(replay.stream)])
    return windows


def added(a: Tally, b: Tally) -> Tally:
    return Tally(*(getattr(a, f) + getattr(b, f) for f in Tally.__dataclass_fields__))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feedback", type=float, default=0.3, help="share of false hits marked bad")
    parser.add_argument("--repeats", type=float, default=2.0, help="mean extra asks of each question")
    parser.add_argument("--radius", type=float, default=Fences.radius)
    parser.add_argument("--margin", type=float, default=Fences.margin)
    parser.add_argument(
        "--seeds", type=int, default=10, help="replays (other orders and feedback draws), summed"
    )
    args = parser.parse_args()
    verifier = Verifier.load()
    data = load_qqp()
    names = {"none": "no feedback", "evict": "bad hit evicts", "fence": "evicts + fence"}
    results = {name: [Tally() for _ in range(WINDOWS)] for name in names}
    for seed in range(args.seeds):
        replay = replay_of(data, seed, args.repeats)
        if seed == 0:
            print(
                f"QQP held-out fold {TEST_FOLD}: {len(replay.vectors)} questions asked {len(replay.stream)} "
                f"times a replay (1 + Poisson({args.repeats}) each), {args.seeds} replays summed; "
                f"{100 * args.feedback:.0f} % of false hits marked bad; verifier threshold "
                f"{verifier.threshold:.4f}; fences: radius {args.radius}, margin {args.margin}"
            )
        started = time.perf_counter()
        for name, windows in results.items():
            for w, tally in enumerate(run(replay, verifier, name, args, seed)):
                windows[w] = added(windows[w], tally)
        print(f"  replay {seed + 1}: {time.perf_counter() - started:.0f} s", flush=True)
    print("\nhit rate (right hits / lookups that could hit) and false-hit rate (false hits / lookups that")
    print("could go wrong), per fifth of the replay; then the false-hit rate against no feedback:")
    print(f"  {'fifth':>5}  " + "  ".join(f"{names[n]:>16}" for n in results) + "    evicts  fence")
    for w in range(WINDOWS):
        rates = [results[n][w].false_rate() for n in results]
        relative = "  ".join(f"{rate / max(rates[0], 1e-9) - 1:+6.0%}" for rate in rates[1:])
        print(
            f"  {w + 1:>5}  " + "  ".join(f"{results[n][w].line():>16}" for n in results) + f"    {relative}"
        )
    for name, windows in results.items():
        total = windows[0]
        for tally in windows[1:]:
            total = added(total, tally)
        print(
            f"  {names[name]:>16}: all {total.line()} ({total.false} false hits of {total.could_go_wrong} "
            f"chances, {total.right} right hits, {total.unlabelled} unlabelled, {total.lookups} lookups)"
        )


if __name__ == "__main__":
    main()
