"""Keeps the free-text index (traces_fts) caught up with the traces table, a step at a time.

Runs in the writer thread between batches: tokenising is kept off the commit a request waits for.
"""

from __future__ import annotations

from typing import Any

STEP_ROWS = 500  # ~25 ms of work: short enough not to hold up the next batch for long


def index_backlog(conn: Any) -> bool:
    """The writer's upkeep: one step; True while more traces wait to be indexed."""
    return index_step(conn) >= STEP_ROWS


def index_step(conn: Any, limit: int = STEP_ROWS) -> int:
    """Index up to `limit` traces not yet indexed (in the caller's transaction); return how many."""
    start = conn.execute("SELECT indexed_seq FROM traces_fts_state WHERE id = 1").fetchone()[0]
    last = conn.execute(
        "SELECT max(seq) FROM (SELECT seq FROM traces WHERE seq > ? ORDER BY seq LIMIT ?)", (start, limit)
    ).fetchone()[0]
    if last is None:
        return 0
    inserted = conn.execute(
        "INSERT INTO traces_fts (rowid, request, response, error)"
        " SELECT seq, request, response, error FROM traces WHERE seq > ? AND seq <= ?",
        (start, last),
    ).rowcount
    conn.execute("UPDATE traces_fts_state SET indexed_seq = ? WHERE id = 1", (last,))
    return int(inserted)
