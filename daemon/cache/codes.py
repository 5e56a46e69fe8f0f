"""The semantic cache's search: the binary codes of the stored questions, in memory, scanned.

A question's code is the sign of each dimension of its embedding (384 bits for MiniLM: 48
bytes). The nearest codes by Hamming distance are the candidates that the lookup then rescores
exactly in float (cache/semantic.py). The codes are kept durably beside the float vectors in
sqlite-vec (storage/cache.py) and mirrored here, per vector table and space, column-major, so
that a scan is a few XOR-and-popcount passes over contiguous memory: 2.0-2.5 ms for 100k codes
on the 2-core machine where sqlite-vec's own scan of the same codes took 5.5-6.4 ms.

Pure: numpy only. The exact index (cache/exact.py) adds and removes codes as it stores and
forgets entries, so the mirror never holds an entry the index does not.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

INITIAL_CAPACITY = 64
CodeRow = tuple[str, str, str, bytes]  # a stored code: vector table, space, entry id, code


def code_of(vector: np.ndarray) -> bytes:
    """The binary code of an embedding: one bit per dimension, set where it is positive."""
    return np.packbits(np.asarray(vector) > 0).tobytes()


class _Space:
    """The codes of one space: 64-bit words in columns (word w of every code is one row)."""

    def __init__(self, words: int) -> None:
        self.words = np.zeros((words, INITIAL_CAPACITY), np.uint64)
        self.ids: list[str] = []
        self.slot: dict[str, int] = {}

    def add(self, entry_id: str, code: np.ndarray) -> None:
        at = self.slot.get(entry_id)
        if at is None:
            at = len(self.ids)
            if at == self.words.shape[1]:
                self.words = np.concatenate([self.words, np.zeros_like(self.words)], axis=1)
            self.ids.append(entry_id)
            self.slot[entry_id] = at
        self.words[:, at] = code

    def remove(self, entry_id: str) -> None:
        at = self.slot.pop(entry_id, None)
        if at is None:
            return
        last = len(self.ids) - 1
        if at != last:  # the last code takes the freed column
            moved = self.ids[last]
            self.words[:, at] = self.words[:, last]
            self.ids[at] = moved
            self.slot[moved] = at
        self.ids.pop()

    def nearest(self, code: np.ndarray, k: int) -> list[str]:
        count = len(self.ids)
        if not count:
            return []
        distance = np.bitwise_count(self.words[0, :count] ^ code[0]).astype(np.uint16)
        for word in range(1, len(code)):
            distance += np.bitwise_count(self.words[word, :count] ^ code[word])
        chosen = np.argpartition(distance, k - 1)[:k] if count > k else np.arange(count)
        return [self.ids[i] for i in chosen[np.argsort(distance[chosen], kind="stable")]]


class Codes:
    """Codes by vector table (one embedder) and space (one tenant, model and context)."""

    def __init__(self) -> None:
        self._spaces: dict[tuple[str, str], _Space] = {}

    @staticmethod
    def _words(code: bytes) -> np.ndarray:
        padded = code + bytes(-len(code) % 8)  # whole 64-bit words; the zero padding never differs
        return np.frombuffer(padded, np.uint64)

    def add(self, table: str, space: str, entry_id: str, code: bytes) -> None:
        words = self._words(code)
        held = self._spaces.get((table, space))
        if held is None or held.words.shape[0] != len(words):
            held = self._spaces[(table, space)] = _Space(len(words))
        held.add(entry_id, words)

    def load(self, rows: Iterable[CodeRow]) -> None:
        """Codes as stored: (vector table, space, entry id, code)."""
        for table, space, entry_id, code in rows:
            self.add(table, space, entry_id, code)

    def remove(self, table: str, space: str, entry_id: str) -> None:
        held = self._spaces.get((table, space))
        if held is not None:
            held.remove(entry_id)
            if not held.ids:
                del self._spaces[(table, space)]

    def forget(self, tables: Iterable[str]) -> None:
        """Drop the codes of former embedders."""
        gone = set(tables)
        for key in [key for key in self._spaces if key[0] in gone]:
            del self._spaces[key]

    def nearest(self, table: str, space: str, code: bytes, k: int) -> list[str]:
        """The ids of the (at most) `k` entries of the space whose codes are nearest, nearest first."""
        held = self._spaces.get((table, space))
        words = self._words(code)
        if held is None or held.words.shape[0] != len(words) or k < 1:
            return []
        return held.nearest(words, k)

    def __len__(self) -> int:
        return sum(len(held.ids) for held in self._spaces.values())
