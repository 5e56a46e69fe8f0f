"""The prompt registry's storage: versions (immutable, unique by content per name) and labels, as
writer jobs (one transaction each) and reads."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
import orjson

from daemon.prompts.spec import PromptSpec


@dataclass(frozen=True, slots=True)
class Saved:
    """What saving a prompt did: its version, whether that version is new, the labels moved."""

    name: str
    version: int
    created: bool
    moved: tuple[str, ...]


def save_job(
    spec: PromptSpec, source: str, by: str | None, labels: Sequence[str] = ()
) -> Callable[[Any], Saved]:
    """Save `spec` as a new version unless its content is saved already; a new version takes
    `latest` and `labels` (an existing one takes nothing: a rollback done since stays)."""
    digest, content = spec.content_hash(), orjson.dumps(spec.content()).decode()

    def job(conn: Any) -> Saved:
        found = conn.execute(
            "SELECT version FROM prompt_versions WHERE name = ? AND hash = ?", (spec.name, digest)
        ).fetchone()
        if found is not None:
            return Saved(spec.name, int(found[0]), False, ())
        (last,) = conn.execute(
            "SELECT max(version) FROM prompt_versions WHERE name = ?", (spec.name,)
        ).fetchone()
        version = (last or 0) + 1
        conn.execute(
            "INSERT INTO prompt_versions (name, version, hash, content, source, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (spec.name, version, digest, content, source, time.time(), by),
        )
        moved = ("latest", *(label for label in labels if label != "latest"))
        for label in moved:
            move_label(conn, spec.name, label, version, by)
        return Saved(spec.name, version, True, moved)

    return job


def move_label(conn: Any, name: str, label: str, version: int, by: str | None) -> int | None:
    """Point `label` at `version`; the version it pointed at before, if any."""
    row = conn.execute(
        "SELECT version FROM prompt_labels WHERE name = ? AND label = ?", (name, label)
    ).fetchone()
    previous = int(row[0]) if row is not None else None
    now = time.time()
    conn.execute(
        "INSERT INTO prompt_labels (name, label, version, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (name, label) DO UPDATE SET version = excluded.version,"
        " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        (name, label, version, now, by),
    )
    conn.execute(
        "INSERT INTO prompt_label_moves (name, label, version, previous, at, by) VALUES (?, ?, ?, ?, ?, ?)",
        (name, label, version, previous, now, by),
    )
    return previous


def label_job(name: str, label: str, version: int, by: str | None) -> Callable[[Any], int | None]:
    def job(conn: Any) -> int | None:
        exists = conn.execute(
            "SELECT 1 FROM prompt_versions WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        if exists is None:
            raise LookupError(f"{name} has no version {version}")
        return move_label(conn, name, label, version, by)

    return job


async def load_all(reader: aiosqlite.Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every version (content parsed) and every label."""
    async with reader.execute(
        "SELECT name, version, hash, content, source, created_at, created_by FROM prompt_versions"
        " ORDER BY name, version"
    ) as cursor:
        versions = [
            {"name": n, "version": v, "hash": h, "content": orjson.loads(c), "source": s, "created_at": at,
             "created_by": by}
            for n, v, h, c, s, at, by in await cursor.fetchall()
        ]  # fmt: skip
    async with reader.execute(
        "SELECT name, label, version, updated_at, updated_by FROM prompt_labels"
    ) as cursor:
        labels = [
            {"name": n, "label": lb, "version": v, "updated_at": at, "updated_by": by}
            for n, lb, v, at, by in await cursor.fetchall()
        ]
    return versions, labels


async def usage(reader: aiosqlite.Connection, name: str) -> list[dict[str, Any]]:
    """Per version: calls, errors, mean latency, cost, and its ratings (mean stars, thumbs up share)."""
    async with reader.execute(
        """
        SELECT t.prompt_version AS version, COUNT(*) AS calls, SUM(t.status != 'ok') AS errors,
               AVG(t.latency_ms) AS mean_latency_ms, SUM(t.cost_usd) AS cost_usd,
               AVG(CASE WHEN f.kind = 'stars' THEN f.score END) AS mean_stars,
               COUNT(CASE WHEN f.kind = 'stars' THEN 1 END) AS stars,
               AVG(CASE WHEN f.kind = 'thumbs' THEN f.score > 0 END) AS thumbs_up_share,
               COUNT(CASE WHEN f.kind = 'thumbs' THEN 1 END) AS thumbs
        FROM traces t
        LEFT JOIN feedback f ON f.id = (SELECT max(id) FROM feedback WHERE trace_id = t.id)
        WHERE t.prompt_name = ?
        GROUP BY t.prompt_version ORDER BY t.prompt_version
        """,
        (name,),
    ) as cursor:
        return [dict(row) for row in await cursor.fetchall()]


async def mark(reader: aiosqlite.Connection) -> tuple[Any, ...]:
    """What changes whenever a version is saved or a label moves (by any daemon): cheap to compare."""
    async with reader.execute(
        "SELECT (SELECT count(*) FROM prompt_versions), (SELECT max(id) FROM prompt_label_moves)"
    ) as cursor:
        row = await cursor.fetchone()
    return tuple(row) if row is not None else ()


async def label_moves(reader: aiosqlite.Connection, name: str, limit: int = 20) -> list[dict[str, Any]]:
    """A prompt's latest label moves (releases, rollbacks), newest first."""
    async with reader.execute(
        "SELECT label, version, previous, at, by FROM prompt_label_moves WHERE name = ?"
        " ORDER BY id DESC LIMIT ?",
        (name, limit),
    ) as cursor:
        return [
            {"label": label, "version": version, "previous": previous, "at": at, "by": by}
            for label, version, previous, at, by in await cursor.fetchall()
        ]
