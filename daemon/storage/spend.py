"""Spend aggregates over the traces table: totals, per model / user / team, and a time series."""

from __future__ import annotations

from typing import Any

import aiosqlite

from daemon.core.spend import SpendWindow

# The group key columns. A call that failed before a model was chosen groups under its requested model.
GROUP_KEYS = {
    "model": "coalesce(served_model, requested_model, '(none)')",
    "user": "coalesce(user, '(none)')",
    "team": "coalesce(team, '(no team)')",
}
SUMS = (
    "count(*) AS requests,"
    " coalesce(sum(status != 'ok'), 0) AS errors,"
    " coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
    " coalesce(sum(completion_tokens), 0) AS completion_tokens,"
    " coalesce(sum(cost_usd), 0.0) AS cost_usd,"
    " coalesce(sum(shadow_cost_usd), 0.0) AS shadow_cost_usd"
)
LOCAL_SUMS = (
    " coalesce(sum(CASE WHEN shadow_cost_usd > 0 THEN cost_usd END), 0.0) AS local_cost_usd,"
    " coalesce(sum(CASE WHEN shadow_cost_usd > 0 THEN shadow_cost_usd END), 0.0) AS local_shadow_cost_usd"
)
WINDOW = " FROM traces WHERE ts >= :since AND ts < :until"


def _params(window: SpendWindow) -> dict[str, Any]:
    return {"since": window.since, "until": window.until,
            "size": window.bucket_seconds, "offset": window.utc_offset}  # fmt: skip


async def _all(conn: aiosqlite.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.execute(sql, params) as cursor:
        return [dict(row) for row in await cursor.fetchall()]


async def totals(conn: aiosqlite.Connection, window: SpendWindow) -> dict[str, Any]:
    rows = await _all(conn, f"SELECT {SUMS}, {LOCAL_SUMS}{WINDOW}", _params(window))
    return rows[0]


async def by_group(conn: aiosqlite.Connection, window: SpendWindow, group_by: str) -> list[dict[str, Any]]:
    """Largest spend first; ties (local models cost nothing) by request count."""
    key = GROUP_KEYS[group_by]
    sql = f"SELECT {key} AS key, {SUMS}{WINDOW} GROUP BY 1 ORDER BY cost_usd DESC, requests DESC, key"
    return await _all(conn, sql, _params(window))


async def series(conn: aiosqlite.Connection, window: SpendWindow) -> list[dict[str, Any]]:
    """Sparse buckets (only those with calls), oldest first; core.spend.fill_series adds the zeros."""
    start = "(CAST(ts AS INTEGER) + :offset) / :size * :size - :offset"
    sql = f"SELECT {start} AS start, {SUMS}{WINDOW} GROUP BY 1 ORDER BY 1"
    return await _all(conn, sql, _params(window))
