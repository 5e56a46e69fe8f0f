"""The routing statistics' storage: shadow calls, and the reads behind /admin/routing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite


@dataclass(frozen=True, slots=True)
class ShadowCall:
    trace_id: str
    ts: float
    route: str
    model: str
    status: str
    error: str | None
    response: str | None
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    experiment: str | None = None  # an experiment's arm, not a route's shadow
    arm: str | None = None


def shadow_job(call: ShadowCall) -> Callable[[Any], None]:
    def job(conn: Any) -> None:
        conn.execute(
            "INSERT INTO shadow_calls (trace_id, ts, route, model, status, error, response, latency_ms,"
            " prompt_tokens, completion_tokens, cost_usd, experiment, arm)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                call.trace_id, call.ts, call.route, call.model, call.status, call.error, call.response,
                call.latency_ms, call.prompt_tokens, call.completion_tokens, call.cost_usd, call.experiment,
                call.arm,
            ),
        )  # fmt: skip

    return job


async def route_rows(reader: aiosqlite.Connection, since: float, until: float) -> list[dict[str, Any]]:
    """Per route, served model and tier: calls, errors, cost, and the calls that escalated (a cheap
    answer judged unsure) or fell back (a candidate failed, or was skipped for its open circuit)."""
    cursor = await reader.execute(
        """
        SELECT t.route, t.served_model, t.route_tier, COUNT(*) AS calls,
               SUM(t.status != 'ok') AS errors, SUM(t.cost_usd) AS cost_usd,
               SUM(EXISTS (SELECT 1 FROM attempts a WHERE a.trace_seq = t.seq AND a.status = 'escalated'))
                 AS escalated,
               SUM(EXISTS (SELECT 1 FROM attempts a
                           WHERE a.trace_seq = t.seq AND a.status IN ('error', 'skipped'))) AS fell_back,
               AVG(t.latency_ms) AS mean_latency_ms
        FROM traces t
        WHERE t.route IS NOT NULL AND t.ts >= ? AND t.ts < ?
        GROUP BY t.route, t.served_model, t.route_tier
        ORDER BY t.route, calls DESC
        """,
        (since, until),
    )
    return [dict(row) for row in await cursor.fetchall()]


async def route_series(
    reader: aiosqlite.Connection, since: float, until: float, bucket: float
) -> list[dict[str, Any]]:
    """Calls per time bucket, route and served model: the traffic shares over time."""
    cursor = await reader.execute(
        """
        SELECT CAST((ts - ?) / ? AS INTEGER) AS bucket, route, served_model, COUNT(*) AS calls
        FROM traces WHERE route IS NOT NULL AND ts >= ? AND ts < ?
        GROUP BY bucket, route, served_model ORDER BY bucket
        """,
        (since, bucket, since, until),
    )
    return [
        {"t": since + b * bucket, "route": route, "model": model, "calls": calls}
        for b, route, model, calls in await cursor.fetchall()
    ]


async def recent_shadows(
    reader: aiosqlite.Connection, since: float, until: float, limit: int
) -> list[dict[str, Any]]:
    """Shadow calls beside the answers that were served."""
    cursor = await reader.execute(
        """
        SELECT s.id, s.trace_id, s.ts, s.route, s.model AS shadow_model, s.status AS shadow_status,
               s.error AS shadow_error, s.response AS shadow_response, s.latency_ms AS shadow_latency_ms,
               s.prompt_tokens + s.completion_tokens AS shadow_tokens, s.cost_usd AS shadow_cost_usd,
               t.served_model, t.response AS served_response, t.latency_ms AS served_latency_ms,
               t.prompt_tokens + t.completion_tokens AS served_tokens, t.cost_usd AS served_cost_usd
        FROM shadow_calls s LEFT JOIN traces t ON t.id = s.trace_id
        WHERE s.ts >= ? AND s.ts < ? AND s.experiment IS NULL ORDER BY s.id DESC LIMIT ?
        """,
        (since, until, limit),
    )
    return [dict(row) for row in await cursor.fetchall()]


async def shadow_totals(reader: aiosqlite.Connection, since: float, until: float) -> list[dict[str, Any]]:
    cursor = await reader.execute(
        """
        SELECT route, model, COUNT(*) AS calls, SUM(status != 'ok') AS errors, SUM(cost_usd) AS cost_usd,
               AVG(latency_ms) AS mean_latency_ms
        FROM shadow_calls WHERE ts >= ? AND ts < ? AND experiment IS NULL GROUP BY route, model
        """,
        (since, until),
    )
    return [dict(row) for row in await cursor.fetchall()]
