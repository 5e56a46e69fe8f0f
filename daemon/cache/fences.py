"""What the semantic cache learns from a bad hit: a fence around the wrong match.

A bad hit on a match by meaning says: this question is not the entry's question, though they
scored s. Evicting the entry mends that entry only: the mistake comes back when the entry's
question is cached again, when the wrongly answered question is cached and the other one asked,
or when a rewording of one meets a rewording of the other. A fence keeps the two places (the
question's vector and the entry's): a later match of a query near one end (cosine >= `radius`)
with an entry near the other end must score above the fence's own pair, by `margin`. So the
threshold is tightened where the mistake happened, for that pair of neighbourhoods, and nowhere
else: a question still matches its own word-for-word rewording (which scores near 1).

Pure: numpy only; the fences are loaded from and written to the database by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

RADIUS = 0.93  # how near a question must be to a fence's end to be held by it
MARGIN = 0.01  # how much more than the wrong pair's score a match inside the fence needs
LIMIT = 10_000  # fences kept per embedder; beyond it the oldest go

# The score of each row of one matrix against the same row of the other: the lookup's scorer
# (the verifier, or plain cosine), so that a fence's bar is in the unit its threshold is in.
PairScore = Callable[[np.ndarray, np.ndarray], np.ndarray]


def cosine_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    scores: np.ndarray = (a * b).sum(axis=1)
    return scores


@dataclass
class _Ends:
    questions: np.ndarray  # (n, d): the questions answered wrongly
    entries: np.ndarray  # (n, d): the entries' questions that answered them


@dataclass
class Fences:
    radius: float = RADIUS
    margin: float = MARGIN
    limit: int = LIMIT
    _tables: dict[str, _Ends] = field(default_factory=dict)

    def add(self, table: str, question: np.ndarray, entry: np.ndarray) -> None:
        """Fence the pair (L2-normalised vectors of the embedder whose vector table is `table`)."""
        self._extend(table, np.asarray(question, np.float32)[None, :], np.asarray(entry, np.float32)[None, :])

    def load(self, rows: Iterable[tuple[str, bytes, bytes]]) -> None:
        """Fences as stored: (vector table, question vector, entry vector), oldest first."""
        grouped: dict[str, list[tuple[bytes, bytes]]] = {}
        for table, question, entry in rows:
            grouped.setdefault(table, []).append((question, entry))
        for table, pairs in grouped.items():
            questions, entries = (
                [np.frombuffer(v, np.float32) for v in end] for end in zip(*pairs, strict=True)
            )
            if len({v.shape for v in questions + entries}) == 1:  # one embedder, one dimension
                self._extend(table, np.stack(questions), np.stack(entries))

    def _extend(self, table: str, questions: np.ndarray, entries: np.ndarray) -> None:
        ends = self._tables.get(table)
        if ends is not None and ends.questions.shape[1] == questions.shape[1]:
            questions = np.concatenate([ends.questions, questions])
            entries = np.concatenate([ends.entries, entries])
        self._tables[table] = _Ends(questions[-self.limit :], entries[-self.limit :])

    def count(self, table: str | None = None) -> int:
        tables = self._tables.values() if table is None else filter(None, [self._tables.get(table)])
        return sum(len(ends.questions) for ends in tables)

    def clear(self) -> None:
        self._tables.clear()

    def forget(self, tables: Iterable[str]) -> None:
        """Forget the fences of former embedders (their vectors can never be compared again)."""
        for table in tables:
            self._tables.pop(table, None)

    def bars(self, table: str | None, query: np.ndarray, vectors: np.ndarray, score: PairScore) -> np.ndarray:
        """Per candidate (rows of `vectors`), the score a match of `query` with it must exceed
        because of fences; -inf where no fence holds the pair."""
        none = np.full(len(vectors), -np.inf, np.float32)
        ends = self._tables.get(table) if table is not None else None
        if ends is None or ends.questions.shape[1] != query.shape[0] or not len(vectors):
            return none
        near_question = ends.questions @ query >= self.radius
        near_entry = ends.entries @ query >= self.radius
        held = np.flatnonzero(near_question | near_entry)
        if not held.size:
            return none  # the usual case: one matrix-vector product per end, and done
        questions, entries = ends.questions[held], ends.entries[held]
        # the query near one end and the candidate near the other, either way round
        applies = (near_question[held] & (vectors @ entries.T >= self.radius)) | (
            near_entry[held] & (vectors @ questions.T >= self.radius)
        )
        bar = score(questions, entries) + self.margin
        result: np.ndarray = np.where(applies, bar[None, :], -np.inf).max(axis=1).astype(np.float32)
        return result
