"""Budgets in SQLite: the limits set through the API, the ledger, each daemon process's lease on a
budget's window, and the processes that hold them. Every function here is a writer job or a query
on a blocking connection; the rules are in daemon/core/budget.py."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.core.budget import Limit, Need, Standing, Window, spare

LEDGER_KEPT_SECONDS = 86_400  # a window's ledger row is kept this long after it ends
SHORT_WALK = 4096  # traces since a ledger row was read, walked one by one rather than by subject
# The traces column that names each kind of subject.
SUBJECT_COLUMNS = {"user": "user", "key": "key_id", "team": "team"}
LeaseKey = tuple[str, str, float]  # (subject, period, window_start): a lease's, and a ledger row's
# What a trace charged, as the ledger counts it: nano-dollars and tokens.
_CHARGED = "CAST(round(cost_usd * 1e9) AS INTEGER), prompt_tokens + completion_tokens"
_SET_ROW = (
    "UPDATE budget_ledger SET spent_nanos = ?, spent_tokens = ?, through_seq = ?"
    " WHERE subject = ? AND period = ? AND window_start = ?"
)


@dataclass(frozen=True, slots=True)
class Ask:
    """One budget of a call asking its process's lease to grow: by `grow` (what the call needs
    beyond the spare room it claimed), or, refused, to give back the `claimed` room."""

    limit: Limit
    window: Window
    grow_nanos: int
    grow_tokens: int
    claimed_nanos: int
    claimed_tokens: int
    synced_nanos: int = 0  # costs settled since the lease was last written, to take off first
    synced_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Grant:
    """A budget after the ask: how this process's lease changed, and the window as it stands."""

    delta_nanos: int
    delta_tokens: int
    spent_nanos: int
    spent_tokens: int
    others_nanos: int  # what the other processes hold
    others_tokens: int
    fits: bool


def lease_job(owner: str, asks: Sequence[Ask], need: Need) -> Callable[[Any], list[Grant]]:
    """Grow this process's lease on every budget, all or nothing: each grows by its ask if the
    window's spent amount and every lease leave room for it, with spare room while the budget is far
    from spent. Refused, each lease gives back what the call had claimed."""

    def job(conn: Any) -> list[Grant]:
        states = [_lease_state(conn, owner, ask) for ask in asks]
        fits = all(free_nanos >= 0 and free_tokens >= 0 for *_, free_nanos, free_tokens in states)
        grants = []
        for ask, (spent, others, own, free_nanos, free_tokens) in zip(asks, states, strict=True):
            if fits:
                # A lease holds only what its budget limits (a token budget has no dollars to lease).
                nanos = ask.grow_nanos + spare(free_nanos, need.usd_nanos) if ask.limit.usd else 0
                tokens = ask.grow_tokens + spare(free_tokens, need.tokens) if ask.limit.tokens else 0
                lease = (own[0] + nanos, own[1] + tokens)
            else:
                lease = (max(0, own[0] - ask.claimed_nanos), max(0, own[1] - ask.claimed_tokens))
            conn.execute(
                "INSERT INTO budget_leases (subject, period, window_start, window_end, owner, usd_nanos,"
                " tokens) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (subject, period, window_start, owner)"
                " DO UPDATE SET usd_nanos = excluded.usd_nanos, tokens = excluded.tokens",
                (ask.limit.subject, ask.limit.period, ask.window.start, ask.window.end, owner, *lease),
            )
            delta = (lease[0] - own[0], lease[1] - own[1])
            grants.append(Grant(*delta, *spent, *others, free_nanos >= 0 and free_tokens >= 0))
        return grants

    return job


def _lease_state(
    conn: Any, owner: str, ask: Ask
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int, int]:
    """(spent, the others' leases, ours, and what stays free after the ask: per dimension)."""
    spent = _spent(conn, ask.limit, ask.window)
    rows = conn.execute(
        "SELECT owner = ?, usd_nanos, tokens FROM budget_leases WHERE subject = ? AND period = ?"
        " AND window_start = ?",
        (owner, ask.limit.subject, ask.limit.period, ask.window.start),
    ).fetchall()
    own = next(((n, t) for mine, n, t in rows if mine), (0, 0))
    own = (max(0, own[0] - ask.synced_nanos), max(0, own[1] - ask.synced_tokens))
    others = (sum(n for mine, n, _ in rows if not mine), sum(t for mine, _, t in rows if not mine))
    taken_nanos, taken_tokens = spent[0] + others[0] + own[0], spent[1] + others[1] + own[1]
    limit_nanos, limit_tokens = ask.limit.usd_nanos, ask.limit.tokens
    free_nanos = 0 if limit_nanos is None else limit_nanos - taken_nanos - ask.grow_nanos
    free_tokens = 0 if limit_tokens is None else limit_tokens - taken_tokens - ask.grow_tokens
    return spent, others, own, free_nanos, free_tokens


def standing(
    conn: Any, limit: Limit, window: Window, owner: str = "", held: tuple[int, int] = (0, 0)
) -> Standing:
    """A budget in `window`: spent, and reserved (`owner`'s calls in flight, `held`, and what every
    other process holds). Its ledger row is made if it is new."""
    spent = _spent(conn, limit, window)
    others = conn.execute(
        "SELECT coalesce(sum(usd_nanos), 0), coalesce(sum(tokens), 0) FROM budget_leases"
        " WHERE subject = ? AND period = ? AND window_start = ? AND owner != ?",
        (limit.subject, limit.period, window.start, owner),
    ).fetchone()
    return Standing(limit, window, spent[0], spent[1], others[0] + held[0], others[1] + held[1])


def _spent(conn: Any, limit: Limit, window: Window) -> tuple[int, int]:
    """The window's spent amount: its ledger row brought up to the newest trace (the row is made
    from the traces if it is new)."""
    key = (limit.subject, limit.period, window.start)
    newest = _newest(conn)
    row = conn.execute(
        "SELECT spent_nanos, spent_tokens, through_seq FROM budget_ledger"
        " WHERE subject = ? AND period = ? AND window_start = ?",
        key,
    ).fetchone()
    if row is not None:
        return _catch_up(conn, key, window, (int(row[0]), int(row[1])), int(row[2]), newest)
    spent = _traced(conn, limit.subject, window)
    conn.execute(
        "INSERT INTO budget_ledger (subject, period, window_start, window_end, spent_nanos,"
        " spent_tokens, through_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*key, window.end, *spent, newest),
    )
    return spent


def catch_up_ledger(conn: Any) -> None:
    """Bring every ledger row up to the newest trace (the check-in does, every few seconds: a row
    read with plain SQL is never far behind, and no read has a long way to walk). The traces since
    are read once for all rows, not once a row."""
    newest = _newest(conn)
    rows = conn.execute(
        "SELECT subject, period, window_start, window_end, spent_nanos, spent_tokens, through_seq"
        " FROM budget_ledger WHERE through_seq != ?",
        (newest,),
    ).fetchall()
    since = min((row[6] for row in rows), default=newest)
    if any(row[6] > newest for row in rows) or newest - since > SHORT_WALK:  # rare: row by row
        for subject, period, start, end, nanos, tokens, through in rows:
            _catch_up(conn, (subject, period, start), Window(start, end), (nanos, tokens), through, newest)
        return
    charged: dict[str, list[tuple[int, float, int, int]]] = {}
    for seq, ts, nanos, tokens, *names in conn.execute(
        f"SELECT seq, ts, {_CHARGED}, {', '.join(SUBJECT_COLUMNS.values())} FROM traces WHERE seq > ?",
        (since,),
    ):
        for kind, name in zip(SUBJECT_COLUMNS, names, strict=True):
            if name:
                charged.setdefault(f"{kind}:{name}", []).append((seq, ts, nanos, tokens))
    updates = []
    for subject, period, start, end, nanos, tokens, through in rows:
        for seq, ts, cost, used in charged.get(subject, ()):
            if seq > through and start <= ts < end:
                nanos, tokens = nanos + cost, tokens + used
        updates.append((nanos, tokens, newest, subject, period, start))
    conn.executemany(_SET_ROW, updates)


def _newest(conn: Any) -> int:
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM traces").fetchone()[0])


def _catch_up(
    conn: Any, key: LeaseKey, window: Window, spent: tuple[int, int], through: int, newest: int
) -> tuple[int, int]:
    """A ledger row's spent amount through trace `newest`, from what it held through `through`.
    Settling a call writes nothing but its trace: the ledger is a running sum of the traces, so it
    cannot drift from them, and a crash loses nothing of it."""
    if through == newest:
        return spent
    if through > newest:  # traces were deleted (the gateway never does): the ledger follows them
        spent = _traced(conn, key[0], window)
    else:
        since = _traced(conn, key[0], window, through, newest)
        spent = (spent[0] + since[0], spent[1] + since[1])
    conn.execute(_SET_ROW, (*spent, newest, *key))
    return spent


def _traced(
    conn: Any, subject: str, window: Window, after_seq: int | None = None, newest: int = 0
) -> tuple[int, int]:
    """What the subject's traces in the window spent (only those after trace `after_seq`, up to
    `newest`: found by walking the traces since, when they are few, not the subject's window)."""
    kind, _, name = subject.partition(":")
    column = SUBJECT_COLUMNS[kind]
    sums = (
        "SELECT coalesce(sum(CAST(round(cost_usd * 1e9) AS INTEGER)), 0),"
        " coalesce(sum(prompt_tokens + completion_tokens), 0) FROM traces"
    )
    args: tuple[Any, ...] = (name, window.start, window.end)
    if after_seq is None:
        query = f"{sums} WHERE {column} = ? AND ts >= ? AND ts < ?"
    elif newest - after_seq <= SHORT_WALK:  # the unary + keeps SQLite off the subject's index
        query, args = f"{sums} WHERE seq > ? AND +{column} = ? AND +ts >= ? AND +ts < ?", (after_seq, *args)
    else:  # a subject quiet for long: its own window's traces are fewer than all traces since
        query, args = f"{sums} WHERE {column} = ? AND ts >= ? AND ts < ? AND seq > ?", (*args, after_seq)
    row = conn.execute(query, args).fetchone()
    return int(row[0]), int(row[1])


def give_back_job(owner: str, returned: Sequence[tuple[LeaseKey, int, int]]) -> Callable[[Any], None]:
    """Take room this process does not need (and costs already settled) off its leases, for other
    processes to use."""

    def job(conn: Any) -> None:
        conn.executemany(
            "UPDATE budget_leases SET usd_nanos = max(0, usd_nanos - ?), tokens = max(0, tokens - ?)"
            " WHERE subject = ? AND period = ? AND window_start = ? AND owner = ?",
            [(nanos, tokens, *key, owner) for key, nanos, tokens in returned],
        )

    return job


# -- the processes holding reservations ---------------------------------------------------------------


def check_in_job(
    owner: str, pid: int, host: str, now: float, stale_after: float, alive: Callable[[int], bool]
) -> Callable[[Any], int]:
    """Say this process is alive, and delete the leases of every process that is not: one whose pid
    has ended on this host, or that has not checked in for `stale_after` seconds. Returns how many
    leases were deleted."""

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
            released += conn.execute("DELETE FROM budget_leases WHERE owner = ?", (other,)).rowcount
            conn.execute("DELETE FROM budget_owners WHERE id = ?", (other,))
        orphans = conn.execute(  # a process that crashed before it first checked in
            "DELETE FROM budget_leases WHERE owner NOT IN (SELECT id FROM budget_owners)"
        ).rowcount
        conn.execute("DELETE FROM budget_leases WHERE window_end <= ?", (now,))  # no call reserves there
        # A past window's ledger row is only its traces' sum: keep the rows few (a row is made
        # again from the traces if ever needed).
        conn.execute("DELETE FROM budget_ledger WHERE window_end < ?", (now - LEDGER_KEPT_SECONDS,))
        catch_up_ledger(conn)
        return int(released + orphans)

    return job


def check_out_job(owner: str) -> Callable[[Any], None]:
    """At a clean shutdown: every call has ended, so nothing of ours is still reserved."""

    def job(conn: Any) -> None:
        conn.execute("DELETE FROM budget_leases WHERE owner = ?", (owner,))
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


def standings_job(
    owner: str, budgets: Sequence[tuple[Limit, Window, tuple[int, int]]]
) -> Callable[[Any], list[Standing]]:
    """Every budget's standing now (for `budget show`), with what `owner`'s calls hold of each: a
    writer job, as a new window gets its row."""

    def job(conn: Any) -> list[Standing]:
        return [standing(conn, limit, window, owner, held) for limit, window, held in budgets]

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
