"""Watermarks over trace `seq`: how far each background follower has got."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiosqlite

from daemon.storage.traces import COLUMNS


async def position(conn: aiosqlite.Connection, name: str) -> int:
    async with conn.execute("SELECT seq FROM watermarks WHERE name = ?", (name,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def traces_after(conn: aiosqlite.Connection, seq: int, limit: int) -> list[dict[str, Any]]:
    """The next traces past `seq`, oldest first, every column."""
    async with conn.execute(
        f"SELECT seq, {', '.join(COLUMNS)} FROM traces WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
    ) as cursor:
        return [dict(row) for row in await cursor.fetchall()]


def advance_job(name: str, start: int, seq: int) -> Callable[[Any], bool]:
    """Move the watermark from `start` to `seq`; False (and nothing written) if another process
    moved it meanwhile: then its transaction must be rolled back, which the caller does by raising."""

    def job(conn: Any) -> bool:
        moved = conn.execute(
            "INSERT INTO watermarks (name, seq) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET seq = excluded.seq WHERE watermarks.seq = ?",
            (name, seq, start),
        ).rowcount
        return bool(moved)

    return job
