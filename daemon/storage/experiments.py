"""Experiments in the database: create, transition (with the label move of a promotion in the same
transaction), load; and the per-call rows their statistics are computed from."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiosqlite
import orjson

from daemon.core.experiment import Arm, Experiment, Scope
from daemon.storage.prompts import move_label


def _arms_json(arms: tuple[Arm, ...]) -> str:
    return orjson.dumps([a.as_dict() for a in arms]).decode()


def create_job(experiment: Experiment, by: str | None) -> Callable[[Any], None]:
    def job(conn: Any) -> None:
        if conn.execute("SELECT 1 FROM experiments WHERE name = ?", (experiment.name,)).fetchone():
            raise LookupError(f"an experiment named {experiment.name!r} exists already")
        e = experiment
        conn.execute(
            f"INSERT INTO experiments ({COLUMNS}, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (
                e.name, e.prompt, _arms_json(e.arms), orjson.dumps(e.scope.as_dict()).decode(), e.state,
                e.shadow_share, e.metric, e.min_sample, e.alpha, e.label, time.time(), by,
            ),
        )  # fmt: skip
        _record(conn, e.name, "create", "-", e.state, e.arms, by, None)

    return job


def transition_job(
    before: Experiment, after: Experiment, action: str, by: str | None, note: str | None
) -> Callable[[Any], None]:
    """Save `after` (state, arms, share, winner) unless another process changed the experiment since
    `before`; a promotion also moves the label to the winner's version, in the same transaction."""

    def job(conn: Any) -> None:
        row = conn.execute("SELECT state FROM experiments WHERE name = ?", (before.name,)).fetchone()
        if row is None or row[0] != before.state:
            raise LookupError(
                f"experiment {before.name!r} changed meanwhile: it is {row[0] if row else 'gone'}"
            )
        conn.execute(
            "UPDATE experiments SET state = ?, arms = ?, shadow_share = ?, winner = ? WHERE name = ?",
            (after.state, _arms_json(after.arms), after.shadow_share, after.winner, after.name),
        )
        if action == "promote" and after.winner is not None:
            version = after.arm(after.winner).version
            move_label(conn, after.prompt, after.label, version, by)
        _record(conn, after.name, action, before.state, after.state, after.arms, by, note)

    return job


def _record(
    conn: Any,
    name: str,
    action: str,
    old: str,
    new: str,
    arms: tuple[Arm, ...],
    by: str | None,
    note: str | None,
) -> None:
    conn.execute(
        "INSERT INTO experiment_transitions (experiment, action, from_state, to_state, arms, at, by, note)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (name, action, old, new, _arms_json(arms), time.time(), by, note),
    )


def from_row(row: tuple[Any, ...]) -> Experiment:
    name, prompt, arms, scope, state, share, metric, min_sample, alpha, label, winner = row
    parsed = orjson.loads(scope)
    return Experiment(
        name, prompt, tuple(Arm(**a) for a in orjson.loads(arms)), state, share, metric, min_sample, alpha,
        label, Scope(tuple(parsed["keys"]), tuple(parsed["users"]), tuple(parsed["teams"])), winner,
    )  # fmt: skip


COLUMNS = "name, prompt, arms, scope, state, shadow_share, metric, min_sample, alpha, label, winner"


async def load_all(reader: aiosqlite.Connection) -> list[Experiment]:
    async with reader.execute(f"SELECT {COLUMNS} FROM experiments ORDER BY created_at") as cursor:
        return [from_row(tuple(row)) for row in await cursor.fetchall()]


async def transitions(reader: aiosqlite.Connection, name: str) -> list[dict[str, Any]]:
    async with reader.execute(
        "SELECT action, from_state, to_state, arms, at, by, note FROM experiment_transitions"
        " WHERE experiment = ? ORDER BY id",
        (name,),
    ) as cursor:
        return [
            {"action": a, "from": f, "to": t, "arms": orjson.loads(arms), "at": at, "by": by, "note": note}
            for a, f, t, arms, at, by, note in await cursor.fetchall()
        ]


def read_calls(
    conn: Any, experiment: Experiment, after_seq: int, after_rating: int
) -> tuple[list[Any], list[Any]]:
    """An experiment's calls written after `after_seq`, as numbers: (arm index, ts, ok, latency or
    -1, cost, tokens, cache hit, seq); and its ratings given after `after_rating`: (feedback id,
    seq, is stars, score). Both from covering indices, on a plain (blocking) connection; the ratings
    from the new feedback rows outward (CROSS JOIN keeps SQLite from scanning every call instead)."""
    cases = " ".join(f"WHEN ? THEN {index}" for index in range(len(experiment.arms)))
    calls = conn.execute(
        f"""
        SELECT CASE arm {cases} ELSE -1 END, ts, status = 'ok', coalesce(latency_ms, -1), cost_usd,
               prompt_tokens + completion_tokens, coalesce(cache IN ('hit-exact', 'hit-semantic'), 0), seq
        FROM traces INDEXED BY traces_experiment
        WHERE experiment = ? AND seq > ?
        """,
        (*(a.name for a in experiment.arms), experiment.name, after_seq),
    ).fetchall()
    ratings = conn.execute(
        """
        SELECT f.id, t.seq, f.kind = 'stars', f.score
        FROM feedback f CROSS JOIN traces t INDEXED BY traces_id_experiment ON t.id = f.trace_id
        WHERE f.id > ? AND t.experiment = ?
        """,
        (after_rating, experiment.name),
    ).fetchall()
    return calls, ratings


async def mark(reader: aiosqlite.Connection) -> int | None:
    """The last transition's id: every change to an experiment (its creation too) adds one."""
    async with reader.execute("SELECT max(id) FROM experiment_transitions") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None and row[0] is not None else None
