"""The cache's entries and its bad-hit marks: loaded at start, written in the transactions of the
calls that change them (jobs), and summed for the cache view."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any

import aiosqlite
import orjson

from daemon.cache.exact import CacheEntry
from daemon.core.cache_key import question_of

Job = Callable[[Any], Any]
_COLUMNS = tuple(f.name for f in fields(CacheEntry))
_VALUES, _BODY = attrgetter(*_COLUMNS), _COLUMNS.index("body")
_INSERT = (
    f"INSERT OR REPLACE INTO cache_entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)
HITS = "cache IN ('hit-exact', 'hit-semantic')"


def load(conn: Any, now: float) -> list[CacheEntry]:
    """Every live entry, least recently used first (a blocking connection, at start); expired ones
    are deleted on the way."""
    conn.execute("DELETE FROM cache_entries WHERE expires_at <= ?", (now,))
    rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM cache_entries ORDER BY last_hit_at").fetchall()
    entries = []
    for row in rows:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["body"] = orjson.loads(values["body"])
        entries.append(CacheEntry(**values))
    return entries


def save_job(changed: Sequence[CacheEntry], removed: Sequence[str]) -> Job:
    """Write the index's changes: entries stored or hit (upserted whole), entries removed."""
    rows = []
    for entry in changed:
        row = list(_VALUES(entry))  # not dataclasses.astuple: it deep-copies the body
        row[_BODY] = orjson.dumps(entry.body).decode()
        rows.append(row)
    keys = [(key,) for key in removed]

    def job(conn: Any) -> None:
        if rows:
            conn.executemany(_INSERT, rows)
        if keys:
            conn.executemany("DELETE FROM cache_entries WHERE id = ?", keys)

    return job


def bad_hit_job(entry: CacheEntry, trace_id: str | None, marked_by: str, now: float) -> Job:
    """Record that a hit of `entry` was wrong (the index evicts the entry; its next save deletes it)."""
    mark = (entry.id, entry.namespace, trace_id, entry.question, marked_by, now)

    def job(conn: Any) -> int:
        cursor = conn.execute(
            "INSERT INTO cache_bad_hits (entry_id, namespace, trace_id, question, marked_by, marked_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            mark,
        )
        return int(cursor.lastrowid)

    return job


async def bad_hits(conn: aiosqlite.Connection, limit: int) -> list[dict[str, Any]]:
    async with conn.execute("SELECT * FROM cache_bad_hits ORDER BY id DESC LIMIT ?", (limit,)) as cursor:
        return [dict(row) for row in await cursor.fetchall()]


async def recent_hits(conn: aiosqlite.Connection, limit: int) -> list[dict[str, Any]]:
    """The latest calls the cache answered, with what they asked (the entry's question is in their
    metadata), newest first. (The partial index traces_cache_hits serves this condition.)"""
    sql = (
        "SELECT id, ts, user, team, requested_model, served_model, cache, saved_usd, saved_tokens, request,"
        f" metadata FROM traces WHERE {HITS} ORDER BY seq DESC LIMIT ?"
    )
    async with conn.execute(sql, (limit,)) as cursor:
        rows = [dict(row) for row in await cursor.fetchall()]
    for row in rows:
        row["metadata"] = orjson.loads(row["metadata"]) if row["metadata"] else {}
        row["question"] = question_of(orjson.loads(row.pop("request")) if row.get("request") else {})
    return rows
