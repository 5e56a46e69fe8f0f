"""The budget ledger and leases on a real SQLite file, with times the tests choose: all-or-nothing
grants, never past the limit with several processes, spare room only far from it, windows that
turn over at midnight in the profile's timezone, a ledger seeded from the traces, and the leases
of a process that is gone deleted by the next to check in."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from daemon.core import budget
from daemon.core.budget import Limit
from daemon.core.trace import Trace, new_trace_id
from daemon.storage import budgets as budget_store
from daemon.storage import db
from daemon.storage.budgets import Ask, check_in_job, give_back_job, lease_job, standing
from daemon.storage.migrate import migrate
from daemon.storage.traces import insert_job

PARIS = ZoneInfo("Europe/Paris")
DAY = Limit("user:alice", "day", usd=0.001)
TEAM = Limit("team:ml", "month", tokens=1000)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp()


@pytest.fixture
def conn(tmp_path: Path) -> Any:
    connection = db.connect_sync(tmp_path / "ledger.db")
    migrate(connection)
    yield connection
    connection.close()


def run(conn: Any, job: Any) -> Any:
    conn.execute("BEGIN IMMEDIATE")
    result = job(conn)
    conn.execute("COMMIT")
    return result


def reserve(conn: Any, now: float, need: budget.Need, *limits: Limit, owner: str = "me") -> bool:
    """Grow `owner`'s leases by a call's whole need (it claimed no spare room)."""
    asks = [
        Ask(limit, budget.window(limit.period, now, PARIS), need.usd_nanos, need.tokens, 0, 0, 0, 0)
        for limit in limits
    ]
    return all(grant.fits for grant in run(conn, lease_job(owner, asks, need)))


def leased(conn: Any, limit: Limit, owner: str = "me") -> tuple[int, int]:
    row = conn.execute(
        "SELECT usd_nanos, tokens FROM budget_leases WHERE subject = ? AND period = ? AND owner = ?",
        (limit.subject, limit.period, owner),
    ).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def call(conn: Any, ts: float, cost_usd: float, tokens: int, user: str = "alice") -> None:
    """A call's trace: all that settling it writes."""
    trace = Trace(
        id=new_trace_id(),
        ts=ts,
        endpoint="chat",
        user=user,
        team="ml",
        cost_usd=cost_usd,
        prompt_tokens=tokens,
    )
    run(conn, insert_job(trace))


NEED = budget.worst_case(100, 300, [(1.0, 1.0)])  # 400 tokens, $0.0004


def test_a_grant_is_all_or_nothing(conn: Any) -> None:
    now = at("2026-12-01 12:00")
    roomy = Limit("user:alice", "week", usd=1.0)
    assert reserve(conn, now, NEED, roomy, TEAM)
    assert reserve(conn, now, NEED, roomy, TEAM)
    week = leased(conn, roomy)
    # The week's dollars have room for a third call; the team's tokens (1,200 > 1,000) do not.
    assert not reserve(conn, now, NEED, roomy, TEAM)
    assert leased(conn, roomy) == week and leased(conn, TEAM) == (0, 800)


def test_leases_of_several_processes_never_pass_the_limit(conn: Any) -> None:
    now = at("2026-12-01 12:00")
    granted = [reserve(conn, now, NEED, DAY, owner=f"p{n % 3}") for n in range(5)]
    assert granted == [True, True, False, False, False]  # $0.0004 each of $0.001
    assert sum(leased(conn, DAY, f"p{n}")[0] for n in range(3)) == 800_000


def test_spare_room_is_kept_far_from_the_limit_only(conn: Any) -> None:
    now = at("2026-12-01 12:00")
    big = Limit("user:alice", "month", usd=10.0)  # 25,000 calls of $0.0004
    assert reserve(conn, now, NEED, big)
    lease = leased(conn, big)[0]
    assert lease == NEED.usd_nanos + budget.SPARE_CALLS * NEED.usd_nanos
    assert reserve(conn, now, NEED, DAY) and leased(conn, DAY)[0] == NEED.usd_nanos  # 2.5 calls: none


def test_the_day_turns_over_at_midnight_in_the_profiles_timezone(conn: Any) -> None:
    evening = at("2026-12-01 23:59:30")
    assert reserve(conn, evening, NEED, DAY)
    call(conn, evening, 0.0009, 400)
    assert not reserve(conn, at("2026-12-01 23:59:50"), NEED, DAY)  # $0.0009 spent of $0.001
    after_midnight = at("2026-12-02 00:00:10")  # 23:00:10 UTC: still Dec 1 in UTC
    assert reserve(conn, after_midnight, NEED, DAY)
    day1 = standing(conn, DAY, budget.window("day", evening, PARIS))
    day2 = standing(conn, DAY, budget.window("day", after_midnight, PARIS), owner="someone else")
    assert (day1.spent_nanos, day1.reserved_nanos) == (900_000, NEED.usd_nanos)  # leased until handed back
    assert (day2.spent_nanos, day2.reserved_nanos) == (0, NEED.usd_nanos)


def test_a_new_window_starts_from_what_its_traces_already_spent(conn: Any) -> None:
    noon = at("2026-12-01 12:00")
    call(conn, noon - 3600, 0.0007, 50)  # spent before any budget existed
    call(conn, at("2026-11-30 12:00"), 0.5, 50)  # yesterday: another window
    assert not reserve(conn, noon, NEED, DAY)  # $0.0007 + $0.0004 > $0.001
    assert standing(conn, DAY, budget.window("day", noon, PARIS)).spent_nanos == 700_000


def test_settling_charges_every_window_and_the_lease_comes_down_later(conn: Any) -> None:
    now = at("2026-12-01 12:00")
    assert reserve(conn, now, NEED, DAY, TEAM)
    call(conn, now, 0.0001, 120)
    day = standing(conn, DAY, budget.window("day", now, PARIS))
    month = standing(conn, TEAM, budget.window("month", now, PARIS))
    assert day.spent_nanos == 100_000 and month.spent_tokens == 120
    # Settling writes the trace alone: the lease stays as it was (other processes see less room,
    # never more) until the process hands the settled cost back with its spare room.
    assert leased(conn, DAY)[0] == NEED.usd_nanos
    key = (DAY.subject, DAY.period, budget.window("day", now, PARIS).start)
    run(conn, give_back_job("me", [(key, NEED.usd_nanos, 0)]))
    assert leased(conn, DAY) == (0, 0)


@pytest.mark.parametrize("short_walk", [budget_store.SHORT_WALK, 0], ids=["walk-since", "by-subject"])
def test_the_ledger_sums_the_traces_since_it_was_last_read(
    conn: Any, monkeypatch: pytest.MonkeyPatch, short_walk: int
) -> None:
    """Read, written, read again: each read adds only the subject's new traces in its window, by
    walking the traces since (few) or the subject's own (a subject quiet for long)."""
    monkeypatch.setattr(budget_store, "SHORT_WALK", short_walk)
    now = at("2026-12-01 12:00")
    window = budget.window("day", now, PARIS)
    call(conn, now, 0.0001, 10)
    assert run(conn, lambda c: standing(c, DAY, window)).spent_nanos == 100_000  # the row is made
    call(conn, now + 60, 0.0002, 20)
    call(conn, now + 60, 0.5, 20, user="bob")  # another subject
    call(conn, at("2026-12-02 12:00"), 0.5, 20)  # another window
    call(conn, now + 120, 0.0003, 30)
    first = run(conn, lambda c: standing(c, DAY, window))
    again = run(conn, lambda c: standing(c, DAY, window))
    assert (first.spent_nanos, first.spent_tokens) == (600_000, 60) == (again.spent_nanos, again.spent_tokens)
    row = conn.execute("SELECT spent_nanos, through_seq FROM budget_ledger WHERE subject = 'user:alice'")
    assert row.fetchone() == (600_000, conn.execute("SELECT max(seq) FROM traces").fetchone()[0])


@pytest.mark.parametrize("short_walk", [budget_store.SHORT_WALK, 0], ids=["one-walk", "row-by-row"])
def test_the_check_in_brings_every_ledger_row_up_to_its_traces(
    conn: Any, monkeypatch: pytest.MonkeyPatch, short_walk: int
) -> None:
    monkeypatch.setattr(budget_store, "SHORT_WALK", short_walk)
    now = at("2026-12-01 12:00")
    bob = Limit("user:bob", "day", usd=1.0)
    for limit in (DAY, TEAM, bob):  # each row made (empty) before the calls
        run(conn, lambda c, limit=limit: standing(c, limit, budget.window(limit.period, now, PARIS)))
    call(conn, now, 0.0001, 10)
    call(conn, now + 60, 0.0002, 20, user="bob")
    call(conn, at("2026-12-02 12:00"), 0.5, 40)  # alice's next day: the team's month only
    run(conn, budget_store.catch_up_ledger)
    rows = dict(conn.execute("SELECT subject, spent_nanos FROM budget_ledger").fetchall())
    tokens = conn.execute("SELECT spent_tokens FROM budget_ledger WHERE subject = 'team:ml'").fetchone()[0]
    assert rows == {"user:alice": 100_000, "team:ml": 500_300_000, "user:bob": 200_000}
    assert tokens == 70
    newest = conn.execute("SELECT max(seq) FROM traces").fetchone()[0]
    assert {t for (t,) in conn.execute("SELECT through_seq FROM budget_ledger")} == {newest}


def test_a_gone_processs_leases_are_deleted_at_check_in(conn: Any) -> None:
    now = at("2026-12-01 12:00")
    pids = {"live": 101, "crashed": 102, "silent": 103}
    for owner, pid in pids.items():
        run(
            conn, check_in_job(owner, pid, "box", now - (100 if owner == "silent" else 0), 30, lambda _: True)
        )
        assert reserve(conn, now, budget.worst_case(1, 1, [(1.0, 1.0)]), DAY, owner=owner)
    alive = {101, 999}.__contains__  # pid 102 has ended; 103 lives on but has not checked in for 100 s
    released = run(conn, check_in_job("new", 999, "box", now, 30, alive))
    assert released == 2
    assert conn.execute("SELECT DISTINCT owner FROM budget_leases").fetchall() == [("live",)]
