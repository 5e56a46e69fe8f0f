"""Budgets in SQLite: the limits set through the API, the ledger, the reservations of calls in
flight, and the daemon processes that hold them. Every function here is a writer job or a query
on a blocking connection; the rules are in daemon/core/budget.py."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.core.budget import Limit, Need, Standing, Window

# The traces column that names each kind of subject.
SUBJECT_COLUMNS = {"user": "user", "key": "key_id", "team": "team"}


@dataclass(frozen=True, slots=True)
class Reserved:
    granted: bool
    standings: list[Standing]  # with this call's reservation when granted


def reserve_job(
    hold: str, owner: str, need: Need, budgets: Sequence[tuple[Limit, Window]], now: float
) -> Callable[[Any], Reserved]:
    """Reserve `need` against every budget, all or nothing: each budget's spent and reserved amounts
    are read and the reservation written in one transaction, under SQLite's write lock."""

    def job(conn: Any) -> Reserved:
        standings = [standing(conn, limit, window) for limit, window in budgets]
        if not all(s.fits(need) for s in standings):
            return Reserved(False, standings)
        conn.executemany(
            "INSERT INTO budget_holds (hold, subject, period, window_start, usd_nanos, tokens, owner,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(hold, s.limit.subject, s.limit.period, s.window.start, need.usd_nanos, need.tokens, owner, now)
             for s in standings],
        )  # fmt: skip
        return Reserved(True, [s.with_hold(need) for s in standings])

    return job


def standing(conn: Any, limit: Limit, window: Window) -> Standing:
    """A budget's spent and reserved amounts in `window` (its ledger row is made if it is new)."""
    key = (limit.subject, limit.period, window.start)
    row = conn.execute(
        "SELECT spent_nanos, spent_tokens,"
        " (SELECT coalesce(sum(usd_nanos), 0) FROM budget_holds h"
        "  WHERE h.subject = l.subject AND h.period = l.period AND h.window_start = l.window_start),"
        " (SELECT coalesce(sum(tokens), 0) FROM budget_holds h"
        "  WHERE h.subject = l.subject AND h.period = l.period AND h.window_start = l.window_start)"
        " FROM budget_ledger l WHERE subject = ? AND period = ? AND window_start = ?",
        key,
    ).fetchone()
    if row is None:
        spent_nanos, spent_tokens = _traced(conn, limit.subject, window)
        conn.execute(
            "INSERT INTO budget_ledger (subject, period, window_start, window_end, spent_nanos, spent_tokens)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (*key, window.end, spent_nanos, spent_tokens),
        )
        row = (spent_nanos, spent_tokens, 0, 0)
    return Standing(limit, window, row[0], row[1], row[2], row[3])


def _traced(conn: Any, subject: str, window: Window) -> tuple[int, int]:
    """What the subject's traces in the window spent: a new ledger row starts from them."""
    kind, _, name = subject.partition(":")
    column = SUBJECT_COLUMNS[kind]
    row = conn.execute(
        "SELECT coalesce(sum(CAST(round(cost_usd * 1e9) AS INTEGER)), 0),"
        f" coalesce(sum(prompt_tokens + completion_tokens), 0) FROM traces WHERE {column} = ?"
        " AND ts >= ? AND ts < ?",
        (name, window.start, window.end),
    ).fetchone()
    return int(row[0]), int(row[1])


def settle_job(
    hold: str | None, subjects: Sequence[str], ts: float, cost_nanos: int, tokens: int
) -> Callable[[Any], None]:
    """In the transaction that writes a call's trace: release its reservation and add what it
    really cost to every window of its subjects holding its start (`ts`)."""

    def job(conn: Any) -> None:
        if hold is not None:
            conn.execute("DELETE FROM budget_holds WHERE hold = ?", (hold,))
        if (cost_nanos or tokens) and subjects:
            marks = ", ".join("?" * len(subjects))
            conn.execute(
                "UPDATE budget_ledger SET spent_nanos = spent_nanos + ?, spent_tokens = spent_tokens + ?"
                f" WHERE subject IN ({marks}) AND window_start <= ? AND window_end > ?",
                (cost_nanos, tokens, *subjects, ts, ts),
            )

    return job


# -- the processes holding reservations ---------------------------------------------------------------


def check_in_job(
    owner: str, pid: int, host: str, now: float, stale_after: float, alive: Callable[[int], bool]
) -> Callable[[Any], int]:
    """Say this process is alive, and release the reservations of every process that is not: one
    whose pid has ended on this host, or that has not checked in for `stale_after` seconds. Returns
    how many reservations were released."""

    def job(conn: Any) -> int:
        conn.execute(
            "INSERT INTO budget_owners (id, pid, host, started_at, seen_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            (owner, pid, host, now, now),
        )
        gone = [
            other
            for other, other_pid, other_host, seen_at in conn.execute(
                "SELECT id, pid, host, seen_at FROM budget_owners WHERE id != ?", (owner,)
            ).fetchall()
            if seen_at < now - stale_after or (other_host == host and not alive(other_pid))
        ]
        released = 0
        for other in gone:
            released += conn.execute("DELETE FROM budget_holds WHERE owner = ?", (other,)).rowcount
            conn.execute("DELETE FROM budget_owners WHERE id = ?", (other,))
        orphans = conn.execute(  # a process that crashed before it first checked in
            "DELETE FROM budget_holds WHERE owner NOT IN (SELECT id FROM budget_owners)"
        ).rowcount
        return int(released + orphans)

    return job


def check_out_job(owner: str) -> Callable[[Any], None]:
    """At a clean shutdown: every call has ended, so nothing of ours is still reserved."""

    def job(conn: Any) -> None:
        conn.execute("DELETE FROM budget_holds WHERE owner = ?", (owner,))
        conn.execute("DELETE FROM budget_owners WHERE id = ?", (owner,))

    return job


# -- limits and resets set through the API -------------------------------------------------------------


def set_limit(
    conn: Any, subject: str, period: str, usd: float | None, tokens: int | None, warn_at: float | None,
    by: str | None,
) -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO budget_limits (subject, period, usd, tokens, warn_at, set_by, set_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (subject, period) DO UPDATE SET usd = excluded.usd,"
        " tokens = excluded.tokens, warn_at = excluded.warn_at, set_by = excluded.set_by,"
        " set_at = excluded.set_at",
        (subject, period, usd, tokens, warn_at, by, time.time()),
    )


def unset_limit(conn: Any, subject: str, period: str | None) -> int:
    if period is None:
        return int(conn.execute("DELETE FROM budget_limits WHERE subject = ?", (subject,)).rowcount)
    return int(
        conn.execute("DELETE FROM budget_limits WHERE subject = ? AND period = ?", (subject, period)).rowcount
    )


def reset(conn: Any, subject: str, periods: Sequence[str], at: float, by: str | None) -> None:
    conn.executemany(
        "INSERT INTO budget_resets (subject, period, reset_at, reset_by) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (subject, period) DO UPDATE SET reset_at = excluded.reset_at,"
        " reset_by = excluded.reset_by",
        [(subject, period, at, by) for period in periods],
    )


@dataclass(frozen=True, slots=True)
class SetLimits:
    """The budgets set through the API, and the manual resets, as read at one moment."""

    limits: dict[str, list[dict[str, Any]]]  # subject -> rows
    resets: dict[tuple[str, str], float]
    key_names: dict[str, str]  # key id -> name, for showing key budgets


async def load_set_limits(conn: Any) -> SetLimits:
    """On an aiosqlite reader."""
    limits: dict[str, list[dict[str, Any]]] = {}
    async with conn.execute(
        "SELECT subject, period, usd, tokens, warn_at, set_by, set_at FROM budget_limits"
    ) as cur:
        names = [d[0] for d in cur.description]
        for row in await cur.fetchall():
            limits.setdefault(row[0], []).append(dict(zip(names[1:], row[1:], strict=True)))
    async with conn.execute("SELECT subject, period, reset_at FROM budget_resets") as cur:
        resets = {(subject, period): at for subject, period, at in await cur.fetchall()}
    async with conn.execute("SELECT id, name FROM api_keys") as cur:
        key_names = {key_id: name for key_id, name in await cur.fetchall()}
    return SetLimits(limits, resets, key_names)


def standings_job(budgets: Sequence[tuple[Limit, Window]]) -> Callable[[Any], list[Standing]]:
    """Every budget's standing now (for `budget show`): a writer job, as a new window gets its row."""

    def job(conn: Any) -> list[Standing]:
        return [standing(conn, limit, window) for limit, window in budgets]

    return job


def finite(value: float) -> float | None:
    return None if math.isinf(value) else value


async def rejections(
    conn: Any, since: float, until: float, bucket_seconds: int, utc_offset: int
) -> list[dict[str, Any]]:
    """Calls refused by a rate limit or a budget, per bucket (sparse, oldest first), on a reader."""
    sql = (
        "SELECT (CAST(ts AS INTEGER) + :offset) / :size * :size - :offset AS start,"
        " sum(error_code = 'rate_limit_exceeded') AS rate_limited,"
        " sum(error_code = 'budget_exceeded') AS over_budget"
        " FROM traces WHERE status = 'error' AND ts >= :since AND ts < :until"
        " AND error_code IN ('rate_limit_exceeded', 'budget_exceeded') GROUP BY 1 ORDER BY 1"
    )
    params = {"offset": utc_offset, "size": bucket_seconds, "since": since, "until": until}
    async with conn.execute(sql, params) as cursor:
        return [
            dict(zip(("start", "rate_limited", "over_budget"), row, strict=True))
            for row in await cursor.fetchall()
        ]
