"""The traces repository: insert (through the writer) and filtered, cursor-paginated reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from itertools import compress
from operator import attrgetter, is_not
from typing import Any

import aiosqlite
import orjson

from daemon.core.search import fts_query
from daemon.core.trace import SUMMARY_FIELDS, Attempt, Trace

# The table's columns are the Trace's fields (a migration adds the column when Trace gains one).
COLUMNS = tuple(f.name for f in fields(Trace))
# The latest human rating of each listed trace (feedback_trace index: a probe per row).
LATEST_RATING = ", ".join(
    f"(SELECT {column} FROM feedback WHERE trace_id = traces.id ORDER BY id DESC LIMIT 1) AS {alias}"
    for column, alias in (("score", "rating"), ("kind", "rating_kind"))
)
# The list view leaves out the large text columns, as the live events do.
SUMMARY_COLUMNS = SUMMARY_FIELDS


@lru_cache(maxsize=64)
def _insert_sql(columns: tuple[str, ...]) -> str:
    return f"INSERT INTO traces ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_VALUES = attrgetter(*COLUMNS)
_NONES = (None,) * len(COLUMNS)
_STREAM, _METADATA = COLUMNS.index("stream"), COLUMNS.index("metadata")
_DECISIONS = COLUMNS.index("decisions")

ATTEMPT_COLUMNS = tuple(f.name for f in fields(Attempt))
_ATTEMPT_VALUES = attrgetter(*ATTEMPT_COLUMNS)
_ATTEMPT_NONES = (None,) * len(ATTEMPT_COLUMNS)


@lru_cache(maxsize=64)
def _attempt_sql(columns: tuple[str, ...]) -> str:
    names = ", ".join(("trace_seq", "n", *columns))
    return f"INSERT INTO attempts ({names}) VALUES ({', '.join('?' * (len(columns) + 2))})"


def _row(trace: Trace) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The columns that have a value, and their values. A missing column is NULL all the same, and
    binding None costs the sqlite3 module ~3 µs (the adapter protocol): half a trace's insert."""
    values = list(_VALUES(trace))  # not dataclasses.asdict: it deep-copies (90 µs a trace)
    values[_STREAM] = int(trace.stream)
    values[_METADATA] = orjson.dumps(trace.metadata).decode() if trace.metadata else None
    if trace.decisions:
        values[_DECISIONS] = orjson.dumps(trace.decisions).decode()
    present = list(map(is_not, values, _NONES))
    return tuple(compress(COLUMNS, present)), tuple(compress(values, present))


def _attempt_row(attempt: Attempt) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    values = _ATTEMPT_VALUES(attempt)
    present = list(map(is_not, values, _ATTEMPT_NONES))
    return tuple(compress(ATTEMPT_COLUMNS, present)), tuple(compress(values, present))


def record_job(
    trace: Trace, attempts: Sequence[Attempt] = (), extra: Sequence[Callable[[Any], Any]] = ()
) -> Callable[[Any], int]:
    """One write for a call: its trace, its attempts and what stages add, in the caller's transaction.
    Returns the trace's seq."""
    columns, row = _row(trace)
    sql = _insert_sql(columns)
    attempt_rows = [_attempt_row(attempt) for attempt in attempts]

    def job(conn: Any) -> int:
        seq = int(conn.execute(sql, row).lastrowid)
        for n, (names, values) in enumerate(attempt_rows):
            conn.execute(_attempt_sql(names), (seq, n, *values))
        for write in extra:
            write(conn)
        return seq

    return job


def insert_job(trace: Trace) -> Callable[[Any], int]:
    return record_job(trace)


@dataclass(frozen=True, slots=True)
class TraceQuery:
    model: str | None = None
    route: str | None = None
    user: str | None = None
    team: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    cursor: int | None = None  # the seq of the last trace of the previous page
    limit: int = 50


# A word matching at most this many traces is looked up through the index; a more common one is
# cheaper to check row by row while reading the listing in time order (matches are dense then).
FTS_CANDIDATES = 20_000
SCAN_TEXT = "(instr(request, ?) > 0 OR instr(response, ?) > 0 OR instr(error, ?) > 0)"


def _where(
    query: TraceQuery, cursor_ts: float | None, text_clause: tuple[str, list[Any]] | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column in ("model", "route", "user", "team", "status"):
        value = getattr(query, column)
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.status and query.status != "ok":
        clauses.append("status != 'ok'")  # the condition of the rare statuses' partial index
    if query.since is not None:
        clauses.append("ts >= ?")
        params.append(query.since)
    if query.until is not None:
        clauses.append("ts < ?")
        params.append(query.until)
    if text_clause is not None:
        clauses.append(text_clause[0])
        params += text_clause[1]
    if query.cursor is not None and cursor_ts is not None:
        # keyset pagination on (ts, seq): the first term is an index range, the second breaks ties
        clauses.append("ts <= ? AND (ts < ? OR seq < ?)")
        params += [cursor_ts, cursor_ts, query.cursor]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


async def _text_clause(conn: aiosqlite.Connection, text: str) -> tuple[str, list[Any]]:
    """Indexed traces through FTS5, the few not indexed yet by scanning them."""
    match = fts_query(text)
    if match is None:
        return SCAN_TEXT, [text] * 3
    async with conn.execute("SELECT indexed_seq FROM traces_fts_state WHERE id = 1") as cursor:
        row = await cursor.fetchone()
    indexed = row[0] if row is not None else 0
    async with conn.execute(
        "SELECT rowid FROM traces_fts WHERE traces_fts MATCH ? LIMIT ?", (match, FTS_CANDIDATES + 1)
    ) as cursor:
        candidates = [row[0] for row in await cursor.fetchall()]
    unindexed = f"SELECT seq FROM traces WHERE seq > ? AND {SCAN_TEXT}"
    if len(candidates) > FTS_CANDIDATES:
        # Dense matches: read in time order and test membership; the page fills quickly.
        matched = "seq IN (SELECT rowid FROM traces_fts WHERE traces_fts MATCH ?)"
        return f"({matched} OR (seq > ? AND {SCAN_TEXT}))", [match, indexed, *[text] * 3]
    # One IN over rowids lets SQLite fetch the few matches directly instead of scanning in time order.
    listed = ",".join(f"({int(seq)})" for seq in candidates)
    matched = f"SELECT column1 FROM (VALUES {listed})" if listed else "SELECT NULL WHERE 0"
    return f"seq IN ({matched} UNION ALL {unindexed})", [indexed, *[text] * 3]


async def list_traces(
    conn: aiosqlite.Connection, query: TraceQuery
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first. Returns the page and the cursor for the next (older) page, or None at the end."""
    cursor_ts = None
    if query.cursor is not None:
        async with conn.execute("SELECT ts FROM traces WHERE seq = ?", (query.cursor,)) as cursor:
            found = await cursor.fetchone()
        if found is None:
            return [], None
        cursor_ts = found[0]
    text_clause = await _text_clause(conn, query.text) if query.text else None
    where, params = _where(query, cursor_ts, text_clause)
    columns = ", ".join(SUMMARY_COLUMNS)
    sql = f"SELECT seq, {columns}, {LATEST_RATING} FROM traces{where} ORDER BY ts DESC, seq DESC LIMIT ?"
    async with conn.execute(sql, [*params, query.limit + 1]) as cursor:
        rows = [_summary(dict(row)) for row in await cursor.fetchall()]
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return rows, (rows[-1]["seq"] if more and rows else None)


async def get_trace(conn: aiosqlite.Connection, trace_id: str) -> dict[str, Any] | None:
    """One trace with its request, metadata, stage decisions and attempts."""
    async with conn.execute(f"SELECT seq, {', '.join(COLUMNS)} FROM traces WHERE id = ?", (trace_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    trace = _summary(dict(row))
    for column in ("request", "metadata", "decisions"):
        if trace[column]:
            trace[column] = orjson.loads(trace[column])
    trace["decisions"] = trace["decisions"] or []
    async with conn.execute(
        f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM attempts WHERE trace_seq = ? ORDER BY n", (trace["seq"],)
    ) as cur:
        trace["attempts"] = [dict(row) for row in await cur.fetchall()]
    return trace


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    row["stream"] = bool(row["stream"])
    return row
