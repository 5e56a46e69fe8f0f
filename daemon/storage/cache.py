"""The cache's entries, its bad-hit marks and its fences: loaded at start, written in the
transactions of the calls that change them (jobs), and summed for the cache view."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

import aiosqlite
import numpy as np
import orjson

from daemon.cache.codes import CodeRow, code_of
from daemon.cache.exact import CacheEntry
from daemon.cache.fences import LIMIT as FENCE_LIMIT
from daemon.core.cache_key import question_of, vector_table
from daemon.storage.db import sqlite_module

Job = Callable[[Any], Any]
Fence = tuple[str, bytes, bytes]  # a vector table, and the two questions' float32 vectors
# The vector itself lives in its sqlite-vec table, not in cache_entries.
_COLUMNS = tuple(f.name for f in fields(CacheEntry) if f.name != "vector")
_VALUES, _BODY = attrgetter(*_COLUMNS), _COLUMNS.index("body")
VECTOR_TABLE = re.compile(r"^cache_vectors_(\d+)_[0-9a-f]{8}$")
_INSERT = (
    f"INSERT OR REPLACE INTO cache_entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)
HITS = "cache IN ('hit-exact', 'hit-semantic')"


@dataclass(frozen=True)
class SavedCache:
    """The cache as the database holds it, read at start."""

    entries: list[CacheEntry] = field(default_factory=list)
    codes: list[CodeRow] = field(default_factory=list)  # see load_codes
    fences: list[Fence] = field(default_factory=list)


def load_saved(conn: Any, now: float) -> SavedCache:
    """Entries, codes and fences (a blocking connection, at start)."""
    entries = load(conn, now)
    return SavedCache(entries, load_codes(conn, entries), load_fences(conn))


def load(conn: Any, now: float) -> list[CacheEntry]:
    """Every live entry, least recently used first (a blocking connection, at start); expired ones
    are deleted on the way, with their vectors."""
    expired = conn.execute(
        "SELECT id, vector_table FROM cache_entries WHERE expires_at <= ?", (now,)
    ).fetchall()
    for key, held_in in expired:
        _delete_vector(conn, key, held_in)
    conn.execute("DELETE FROM cache_entries WHERE expires_at <= ?", (now,))
    rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM cache_entries ORDER BY last_hit_at").fetchall()
    entries = []
    for row in rows:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["body"] = orjson.loads(values["body"])
        entries.append(CacheEntry(**values))
    return entries


def save_job(changed: Sequence[CacheEntry], removed: Mapping[str, str | None]) -> Job:
    """Write the index's changes: entries stored or hit (upserted whole, with their vectors when
    new), and entries removed (with their vectors)."""
    rows: list[list[Any]] = []
    vectors: list[tuple[str, tuple[int, str, bytes, str, bytes]]] = []
    for entry in changed:
        row = list(_VALUES(entry))  # not dataclasses.astuple: it deep-copies the body
        row[_BODY] = orjson.dumps(entry.body).decode()
        rows.append(row)
        table, vector = entry.vector_table, entry.vector
        if vector is not None and table is not None:
            vectors.append((table, vector_row(entry.id, entry.space or "", vector)))
    gone = list(removed.items())

    def job(conn: Any) -> None:
        if rows:
            conn.executemany(_INSERT, rows)
        for into, row in vectors:
            _ensure_vector_table(conn, into)
            conn.execute(f"DELETE FROM {into} WHERE rowid = ?", (row[0],))  # vec0 has no upsert
            conn.execute(
                f"INSERT INTO {into} (rowid, space, bits, entry_id, vector) VALUES (?, ?, vec_bit(?), ?, ?)",
                row,
            )
        for key, held_in in gone:
            conn.execute("DELETE FROM cache_entries WHERE id = ?", (key,))
            _delete_vector(conn, key, held_in)

    return job


def vector_rowid(key: str) -> int:
    """A vector's rowid, from its entry's (random, hex) key: 60 bits, unique in practice."""
    return int(key[:15], 16)


def vector_row(key: str, space: str, vector: bytes) -> tuple[int, str, bytes, str, bytes]:
    return vector_rowid(key), space, code_of(np.frombuffer(vector, dtype=np.float32)), key, vector


def _ensure_vector_table(conn: Any, table: str) -> None:
    match = VECTOR_TABLE.match(table)
    if match is None:
        raise ValueError(f"not a vector table name: {table!r}")
    dimensions = int(match.group(1))
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING vec0("
        f"space text partition key, bits bit[{dimensions}], +entry_id text, +vector blob)"
    )


def _delete_vector(conn: Any, key: str, table: str | None) -> None:
    if table is not None and _has_table(conn, table):
        conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (vector_rowid(key),))


def _has_table(conn: Any, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None


def load_codes(conn: Any, entries: Iterable[CacheEntry]) -> list[CodeRow]:
    """The stored binary codes of the semantic ones among `entries`, as (vector table, space, entry
    id, code) (a blocking connection, at start): the semantic search's in-memory mirror
    (cache/codes.py) is loaded from these. Only rowids and codes are read (an entry's rowid comes
    from its key): vec0 reads auxiliary columns row by row, four times slower at 100k."""
    owners: dict[str, dict[int, tuple[str, str]]] = {}  # table -> rowid -> (space, entry id)
    for entry in entries:
        if entry.vector_table is not None and entry.space is not None:
            owners.setdefault(entry.vector_table, {})[vector_rowid(entry.id)] = (entry.space, entry.id)
    rows: list[CodeRow] = []
    for table in _vector_tables(conn):
        held = owners.get(table)
        if not held:
            continue
        for rowid, bits in conn.execute(f"SELECT rowid, bits FROM {table}"):
            owner = held.get(rowid)
            if owner is not None:
                rows.append((table, *owner, bytes(bits)))
    return rows


def vectors_of(conn: Any, table: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The float vectors of entries `keys` of `table`, by key (those not found are left out), in
    one statement of point lookups by rowid (vec0 scans the whole table for `rowid IN (...)`).
    Blocking, on the caller's thread: ten point lookups take ~0.1-0.4 ms, less than a hop to a
    reader thread and back (~0.8 ms at 100k entries)."""
    if not keys:
        return {}
    sql = " UNION ALL ".join([f"SELECT entry_id, vector FROM {table} WHERE rowid = ?"] * len(keys))
    try:
        rows = conn.execute(sql, [vector_rowid(key) for key in keys]).fetchall()
    except sqlite_module().OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise
    return {str(row[0]): np.frombuffer(row[1], dtype=np.float32) for row in rows}


def _vector_tables(conn: Any) -> list[str]:
    names = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'cache_vectors_%'").fetchall()
    return [name for (name,) in names if VECTOR_TABLE.match(name)]


def drop_vector_tables_except(embedder: str | None) -> Job:
    """Drop the vector tables of embedders other than `embedder` (the one configured, named as
    core.cache_key.vector_table names it; None: no semantic cache): their vectors can never match
    again. Their entries stay, as exact entries; their fences go."""
    suffix = vector_table(embedder, 8).rpartition("_")[2] if embedder else None

    def job(conn: Any) -> list[str]:
        dropped = [name for name in _vector_tables(conn) if name.rpartition("_")[2] != suffix]
        for name in dropped:
            conn.execute(f"DROP TABLE {name}")
            conn.execute("DELETE FROM cache_fences WHERE vector_table = ?", (name,))
            conn.execute(
                "UPDATE cache_entries SET vector_table = NULL, space = NULL WHERE vector_table = ?", (name,)
            )
        return dropped

    return job


def bad_hit_job(
    entry: CacheEntry, trace_id: str | None, marked_by: str, now: float, fence: Fence | None = None
) -> Job:
    """Record that a hit of `entry` was wrong (the index evicts the entry; its next save deletes it),
    with the fence it set (vector table, question vector, entry vector), if the match was by
    meaning. Only the newest `FENCE_LIMIT` fences of a table are kept."""
    mark = (entry.id, entry.namespace, trace_id, entry.question, marked_by, now)

    def job(conn: Any) -> int:
        cursor = conn.execute(
            "INSERT INTO cache_bad_hits (entry_id, namespace, trace_id, question, marked_by, marked_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            mark,
        )
        mark_id = int(cursor.lastrowid)
        if fence is not None:
            table, question, entry_vector = fence
            conn.execute(
                "INSERT INTO cache_fences (vector_table, question, entry, bad_hit, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (table, question, entry_vector, mark_id, now),
            )
            conn.execute(
                "DELETE FROM cache_fences WHERE vector_table = ? AND id NOT IN"
                " (SELECT id FROM cache_fences WHERE vector_table = ? ORDER BY id DESC LIMIT ?)",
                (table, table, FENCE_LIMIT),
            )
        return mark_id

    return job


async def bad_hit_of(conn: aiosqlite.Connection, trace_id: str) -> int | None:
    """The mark already set on the call `trace_id`, if any."""
    async with conn.execute(
        "SELECT id FROM cache_bad_hits WHERE trace_id = ? LIMIT 1", (trace_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else None


def clear_fences_job() -> Job:
    """Delete every fence; how many."""

    def job(conn: Any) -> int:
        return int(conn.execute("DELETE FROM cache_fences").rowcount)

    return job


def load_fences(conn: Any) -> list[Fence]:
    """Every fence, oldest first (a blocking connection, at start)."""
    rows = conn.execute("SELECT vector_table, question, entry FROM cache_fences ORDER BY id").fetchall()
    return [(str(table), bytes(question), bytes(entry)) for table, question, entry in rows]


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
