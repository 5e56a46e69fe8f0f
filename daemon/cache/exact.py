"""The exact cache's index: entries by key, least recently used first, in memory.

The database holds the same entries (storage/cache.py): it is loaded at start, so a restart keeps
the cache, and every change here is written in the transaction of the call that made it. A lookup
never touches the disk: a hit costs a dict access. Only the event loop uses the index.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


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


class ExactIndex:
    def __init__(self, entries: Iterable[CacheEntry] = ()) -> None:
        """`entries` oldest use first, as storage loads them."""
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict((entry.id, entry) for entry in entries)
        # Hits not written yet: a hit's counters are saved in batches, not in the transaction of the
        # call it answered (a hit should cost as little as possible; a crash loses a few counts).
        self._hit_since_flush: set[str] = set()

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
        self._hit_since_flush.add(entry.id)

    def take_hits(self) -> list[CacheEntry]:
        """The entries hit since the last call, still in the index, for storage to save."""
        keys, self._hit_since_flush = self._hit_since_flush, set()
        return [entry for key in keys if (entry := self._entries.get(key)) is not None]

    def not_saved(self, entries: Iterable[CacheEntry]) -> None:
        """`take_hits` handed these out but saving them failed: hand them out again next time."""
        self._hit_since_flush.update(entry.id for entry in entries)

    def put(self, entry: CacheEntry, max_entries: int) -> list[str]:
        """Add or replace `entry`; the ids evicted to stay within `max_entries`, oldest use first."""
        self._entries[entry.id] = entry
        self._entries.move_to_end(entry.id)
        evicted = []
        while len(self._entries) > max_entries:
            evicted.append(self._entries.popitem(last=False)[0])
        return evicted

    def remove(self, key: str) -> CacheEntry | None:
        return self._entries.pop(key, None)

    def clear(self, namespace: str | None = None) -> list[str]:
        """Remove every entry (of one namespace); their ids."""
        gone = [
            key for key, entry in self._entries.items() if namespace is None or entry.namespace == namespace
        ]
        for key in gone:
            del self._entries[key]
        return gone

    def expired(self, now: float) -> list[str]:
        return [key for key, entry in self._entries.items() if entry.expires_at <= now]
