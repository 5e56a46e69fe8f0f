"""Feedback on traces: human ratings, stars (score 1-5) or thumbs (score 1 up, -1 down), with a comment.

One rating per person per trace; rating again replaces it (and keeps its id).
"""

from __future__ import annotations

from typing import Any

from daemon.core.principal import Principal

# Which traces a principal may see, and so rate: an admin any; a key with a team its team's; a
# key without a team its user's own. A trace it may not see looks the same as one that does not exist.
_VISIBLE = "SELECT 1 FROM traces WHERE id = ?"


def _visibility(principal: Principal) -> tuple[str, tuple[Any, ...]]:
    if principal.is_admin:
        return "", ()
    if principal.team is not None:
        return " AND team = ?", (principal.team,)
    return " AND user = ?", (principal.user,)


def insert_job(entry: dict[str, Any], principal: Principal) -> Any:
    """Store `entry` (trace_id, kind, score, comment, rated_by, created_at); returns its id, or None
    when the trace does not exist or `principal` may not see it."""
    condition, params = _visibility(principal)

    def job(conn: Any) -> int | None:
        if conn.execute(_VISIBLE + condition, (entry["trace_id"], *params)).fetchone() is None:
            return None
        row = conn.execute(
            "INSERT INTO feedback (trace_id, kind, score, comment, rated_by, created_at)"
            " VALUES (:trace_id, :kind, :score, :comment, :rated_by, :created_at)"
            " ON CONFLICT (trace_id, rated_by) DO UPDATE SET kind = excluded.kind, score = excluded.score,"
            " comment = excluded.comment, created_at = excluded.created_at RETURNING id",
            entry,
        ).fetchone()
        return int(row[0])

    return job


async def for_trace(conn: Any, trace_id: str) -> list[dict[str, Any]]:
    async with conn.execute(
        "SELECT id, kind, score, comment, rated_by, created_at FROM feedback WHERE trace_id = ? ORDER BY id",
        (trace_id,),
    ) as cursor:
        return [dict(row) for row in await cursor.fetchall()]
