"""Feedback on traces: human ratings, stars (score 1-5) or thumbs (score 1 up, -1 down), with a comment."""

from __future__ import annotations

from typing import Any


def insert_job(entry: dict[str, Any]) -> Any:
    def job(conn: Any) -> int | None:
        if conn.execute("SELECT 1 FROM traces WHERE id = ?", (entry["trace_id"],)).fetchone() is None:
            return None
        cursor = conn.execute(
            "INSERT INTO feedback (trace_id, kind, score, comment, rated_by, created_at)"
            " VALUES (:trace_id, :kind, :score, :comment, :rated_by, :created_at)",
            entry,
        )
        return int(cursor.lastrowid)

    return job


async def for_trace(conn: Any, trace_id: str) -> list[dict[str, Any]]:
    async with conn.execute(
        "SELECT id, kind, score, comment, rated_by, created_at FROM feedback WHERE trace_id = ? ORDER BY id",
        (trace_id,),
    ) as cursor:
        return [dict(row) for row in await cursor.fetchall()]
