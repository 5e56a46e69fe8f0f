"""Spend aggregates: totals, per model / user / team, and a time series, read from `spend_rollup`.

The rollup (migration 0002) holds hourly sums per model, user and team, kept by triggers on
`traces`; a window's numbers are sums over its buckets, so a 30-day query reads thousands of rows,
not every trace. Totals and the series come from the `model` dimension: each trace is counted there
exactly once.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from daemon.core.spend import ROLLUP_SECONDS, SpendWindow

SUMS = (
    "coalesce(sum(requests), 0) AS requests,"
    " coalesce(sum(errors), 0) AS errors,"
    " coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
    " coalesce(sum(completion_tokens), 0) AS completion_tokens,"
    " coalesce(sum(cost_usd), 0.0) AS cost_usd,"
    " coalesce(sum(shadow_cost_usd), 0.0) AS shadow_cost_usd,"
    " coalesce(sum(saved_usd), 0.0) AS saved_usd,"
    " coalesce(sum(saved_tokens), 0) AS saved_tokens,"
    " coalesce(sum(cache_lookups), 0) AS cache_lookups,"
    " coalesce(sum(cache_hits), 0) AS cache_hits,"
    " coalesce(sum(semantic_hits), 0) AS semantic_hits"
)
WINDOW = " FROM spend_rollup WHERE dim = :dim AND bucket >= :since AND bucket < :until"


def _params(window: SpendWindow, dim: str = "model") -> dict[str, Any]:
    if window.utc_offset % ROLLUP_SECONDS or window.since % ROLLUP_SECONDS:
        raise ValueError("a spend window must start on a whole hour: see core.spend.spend_window")
    return {"dim": dim, "since": int(window.since), "until": int(window.until),
            "size": window.bucket_seconds, "offset": window.utc_offset}  # fmt: skip


async def _all(conn: aiosqlite.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.execute(sql, params) as cursor:
        return [dict(row) for row in await cursor.fetchall()]


async def totals(conn: aiosqlite.Connection, window: SpendWindow) -> dict[str, Any]:
    """Sums over the window, with `local_cost_usd` (what calls with a shadow price cost) for savings."""
    sql = f"SELECT {SUMS}, coalesce(sum(local_cost_usd), 0.0) AS local_cost_usd{WINDOW}"
    return (await _all(conn, sql, _params(window)))[0]


async def by_group(conn: aiosqlite.Connection, window: SpendWindow, group_by: str) -> list[dict[str, Any]]:
    """Largest spend first; ties (local models cost nothing) by request count."""
    sql = f"SELECT key, {SUMS}{WINDOW} GROUP BY key ORDER BY cost_usd DESC, requests DESC, key"
    return await _all(conn, sql, _params(window, group_by))


async def series(conn: aiosqlite.Connection, window: SpendWindow) -> list[dict[str, Any]]:
    """Sparse buckets (only those with calls), oldest first; core.spend.fill_series adds the zeros."""
    sql = (
        f"SELECT (bucket + :offset) / :size * :size - :offset AS start, {SUMS}{WINDOW} GROUP BY 1 ORDER BY 1"
    )
    return await _all(conn, sql, _params(window))
