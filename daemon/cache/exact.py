"""The exact cache's index: entries by key, least recently used first, in memory.

The index is the truth; the database (storage/cache.py) is its copy, loaded at start so that a
restart keeps the cache. Changes are written behind, in batches (`take_changes`, every second and
at shutdown), never in the transaction of the call that made them: a lookup, a hit or a stored
answer costs a dict operation, and a crash loses at most the last second's entries and counters
(which costs misses later, not wrong answers). Only the event loop uses the index.

The index also keeps the semantic search's codes (cache/codes.py) in step with its entries: a
code is added with its entry and goes with it (evicted, expired, cleared, or its embedder gone).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daemon.cache.codes import CodeRow, Codes, code_of


@dataclass(slots=True)
class CacheEntry:
    id: str  # the exact key
    kind: str
    namespace: str
    model: str
    question: str
    body: dict[str, Any]  # the chat.completion replayed on a hit
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    trace_id: str | None
    created_at: float
    expires_at: float
    last_hit_at: float = field(default=0.0)
    hits: int = 0
    # A semantic entry's place (its vector table and space) and, until saved, its vector (float32).
    vector_table: str | None = None
    space: str | None = None
    vector: bytes | None = None


class ExactIndex:
    def __init__(self, entries: Iterable[CacheEntry] = (), codes: Iterable[CodeRow] = ()) -> None:
        """`entries` oldest use first, as storage loads them, and the binary codes of the semantic
        ones (vector table, space, entry id, code): only those of entries held are kept."""
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict((entry.id, entry) for entry in entries)
        self._changed: set[str] = set()  # stored or hit since the last take_changes
        self._removed: dict[str, str | None] = {}  # key -> its vector table, if it had one
        self.codes = Codes()  # the semantic search's mirror (cache/codes.py), kept with the entries
        self.codes.load(row for row in codes if self._held_in(row[2], row[0], row[1]))

    def _held_in(self, key: str, table: str, space: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.vector_table == table and entry.space == space

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[CacheEntry]:
        return iter(self._entries.values())

    def get(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    def hit(self, entry: CacheEntry, now: float) -> None:
        entry.hits += 1
        entry.last_hit_at = now
        self._entries.move_to_end(entry.id)
        self._changed.add(entry.id)

    def put(self, entry: CacheEntry, max_entries: int) -> None:
        """Add or replace `entry`; the least recently used go to stay within `max_entries`."""
        old = self._entries.get(entry.id)
        if old is not None and old is not entry:
            self._forget_code(old)
        self._entries[entry.id] = entry
        self._entries.move_to_end(entry.id)
        self._changed.add(entry.id)
        self._removed.pop(entry.id, None)
        if entry.vector is not None and entry.vector_table is not None and entry.space is not None:
            self.codes.add(
                entry.vector_table, entry.space, entry.id, code_of(np.frombuffer(entry.vector, np.float32))
            )
        while len(self._entries) > max_entries:
            self._forget(self._entries.popitem(last=False)[1])

    def remove(self, key: str) -> CacheEntry | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._forget(entry)
        return entry

    def clear(self, namespace: str | None = None) -> int:
        """Remove every entry (of one namespace); how many."""
        gone = [entry for entry in self._entries.values() if namespace in (None, entry.namespace)]
        for entry in gone:
            del self._entries[entry.id]
            self._forget(entry)
        return len(gone)

    def _forget(self, entry: CacheEntry) -> None:
        self._changed.discard(entry.id)
        self._removed[entry.id] = entry.vector_table
        self._forget_code(entry)

    def _forget_code(self, entry: CacheEntry) -> None:
        if entry.vector_table is not None and entry.space is not None:
            self.codes.remove(entry.vector_table, entry.space, entry.id)

    def forget_vectors(self, tables: Iterable[str]) -> None:
        """The vector tables of former embedders were dropped: their entries stay, as exact ones."""
        gone = set(tables)
        self.codes.forget(gone)
        for entry in self._entries.values():
            if entry.vector_table in gone:
                entry.vector_table = entry.space = entry.vector = None

    def take_changes(self) -> tuple[list[CacheEntry], dict[str, str | None]]:
        """What to write since the last call: entries stored or hit (whole: an upsert, with a vector
        not saved yet), and the keys removed (with their vector tables)."""
        changed = [entry for key in self._changed if (entry := self._entries.get(key)) is not None]
        removed = self._removed
        self._changed, self._removed = set(), {}
        return changed, removed

    def not_saved(self, changed: Iterable[CacheEntry], removed: dict[str, str | None]) -> None:
        """Writing what `take_changes` gave failed: give it again next time (unless changed since)."""
        self._changed.update(entry.id for entry in changed if entry.id in self._entries)
        self._removed.update((key, table) for key, table in removed.items() if key not in self._entries)
