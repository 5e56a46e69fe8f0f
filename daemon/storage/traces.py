"""The traces repository: insert (through the writer) and filtered, cursor-paginated reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite
import orjson

from daemon.core.trace import Trace

COLUMNS = (
    "id", "ts", "endpoint", "key_id", "user", "team", "requested_model", "served_model", "provider",
    "stream", "status", "http_status", "error", "request", "response", "finish_reason",
    "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "shadow_cost_usd",
    "latency_ms", "ttft_ms", "overhead_ms", "cache", "route", "prompt_name", "prompt_version",
    "experiment", "arm", "metadata",
)  # fmt: skip
_STREAM, _METADATA = COLUMNS.index("stream"), COLUMNS.index("metadata")
INSERT_SQL = f"INSERT INTO traces ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
# The latest human rating of each listed trace (feedback_trace index: a probe per row).
LATEST_RATING = ", ".join(
    f"(SELECT {column} FROM feedback WHERE trace_id = traces.id ORDER BY id DESC LIMIT 1) AS {alias}"
    for column, alias in (("score", "rating"), ("kind", "rating_kind"))
)
# The list view leaves out the large text columns.
SUMMARY_COLUMNS = tuple(c for c in COLUMNS if c not in ("request", "response", "metadata"))


def _row(trace: Trace) -> tuple[Any, ...]:
    # getattr, not dataclasses.asdict: asdict deep-copies and cost 90 µs a trace on the hot path
    values = [getattr(trace, column) for column in COLUMNS]
    values[_STREAM] = int(trace.stream)
    values[_METADATA] = orjson.dumps(trace.metadata).decode() if trace.metadata else None
    return tuple(values)


def insert_job(trace: Trace) -> Any:
    row = _row(trace)

    def job(conn: Any) -> int:
        return int(conn.execute(INSERT_SQL, row).lastrowid)

    return job


@dataclass(frozen=True, slots=True)
class TraceQuery:
    model: str | None = None
    user: str | None = None
    team: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    cursor: int | None = None  # return traces older than this seq
    limit: int = 50


def _where(query: TraceQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.model:
        clauses.append("(served_model = ? OR requested_model = ?)")
        params += [query.model, query.model]
    for column in ("user", "team", "status"):
        value = getattr(query, column)
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.since is not None:
        clauses.append("ts >= ?")
        params.append(query.since)
    if query.until is not None:
        clauses.append("ts < ?")
        params.append(query.until)
    if query.text:
        clauses.append("(instr(request, ?) > 0 OR instr(response, ?) > 0 OR instr(error, ?) > 0)")
        params += [query.text] * 3
    if query.cursor is not None:
        clauses.append("seq < ?")
        params.append(query.cursor)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


async def list_traces(
    conn: aiosqlite.Connection, query: TraceQuery
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first. Returns the page and the cursor for the next (older) page, or None at the end."""
    where, params = _where(query)
    columns = ", ".join(SUMMARY_COLUMNS)
    sql = f"SELECT seq, {columns}, {LATEST_RATING} FROM traces{where} ORDER BY seq DESC LIMIT ?"
    async with conn.execute(sql, [*params, query.limit + 1]) as cursor:
        rows = [_summary(dict(row)) for row in await cursor.fetchall()]
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return rows, (rows[-1]["seq"] if more and rows else None)


async def get_trace(conn: aiosqlite.Connection, trace_id: str) -> dict[str, Any] | None:
    async with conn.execute(f"SELECT seq, {', '.join(COLUMNS)} FROM traces WHERE id = ?", (trace_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    trace = _summary(dict(row))
    for column in ("request", "metadata"):
        if trace[column]:
            trace[column] = orjson.loads(trace[column])
    return trace


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    row["stream"] = bool(row["stream"])
    return row
