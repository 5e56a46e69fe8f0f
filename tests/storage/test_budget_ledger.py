"""The budget ledger on a real SQLite file, with times the tests choose: all-or-nothing reservations,
windows that turn over at midnight in the profile's timezone, a ledger seeded from the traces, and
the reservations of a process that is gone released by the next to check in."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from daemon.core import budget
from daemon.core.budget import Limit
from daemon.core.trace import Trace, new_trace_id
from daemon.storage import db
from daemon.storage.budgets import check_in_job, reserve_job, settle_job, standing
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


def reserve(conn: Any, hold: str, now: float, need: budget.Need, *limits: Limit, owner: str = "me") -> bool:
    budgets = [(limit, budget.window(limit.period, now, PARIS)) for limit in limits]
    return bool(run(conn, reserve_job(hold, owner, need, budgets, now)).granted)


def call(conn: Any, hold: str, ts: float, cost_usd: float, tokens: int) -> None:
    """A call's trace written with its settlement, as the ending does."""
    trace = Trace(id=new_trace_id(), ts=ts, endpoint="chat", user="alice", team="ml",
                  cost_usd=cost_usd, prompt_tokens=tokens)  # fmt: skip
    insert, settle = (
        insert_job(trace),
        settle_job(hold, ["user:alice", "team:ml"], ts, budget.nanos(cost_usd), tokens),
    )
    run(conn, lambda c: (insert(c), settle(c)))


NEED = budget.worst_case(100, 300, [(1.0, 1.0)], 0)  # 400 tokens, $0.0004


def test_a_reservation_is_all_or_nothing(conn: Any) -> None:
    now = at("2026-12-01 12:00")
    roomy = Limit("user:alice", "week", usd=1.0)
    assert reserve(conn, "a", now, NEED, roomy, TEAM)
    assert reserve(conn, "b", now, NEED, roomy, TEAM)
    # The week's dollars have room for a third call; the team's tokens (1,200 > 1,000) do not.
    assert not reserve(conn, "c", now, NEED, roomy, TEAM)
    held = conn.execute("SELECT hold, count(*) FROM budget_holds GROUP BY hold ORDER BY hold").fetchall()
    assert held == [("a", 2), ("b", 2)]  # nothing of "c" on either budget


def test_the_day_turns_over_at_midnight_in_the_profiles_timezone(conn: Any) -> None:
    evening = at("2026-12-01 23:59:30")
    assert reserve(conn, "late", evening, NEED, DAY)
    call(conn, "late", evening, 0.0009, 400)
    assert not reserve(conn, "later", at("2026-12-01 23:59:50"), NEED, DAY)  # $0.0009 spent of $0.001
    after_midnight = at("2026-12-02 00:00:10")  # 23:00:10 UTC: still Dec 1 in UTC
    assert reserve(conn, "next", after_midnight, NEED, DAY)
    day1 = standing(conn, DAY, budget.window("day", evening, PARIS))
    day2 = standing(conn, DAY, budget.window("day", after_midnight, PARIS))
    assert (day1.spent_nanos, day1.reserved_nanos) == (900_000, 0)
    assert (day2.spent_nanos, day2.reserved_nanos) == (0, NEED.usd_nanos)


def test_a_new_window_starts_from_what_its_traces_already_spent(conn: Any) -> None:
    noon = at("2026-12-01 12:00")
    call(conn, "none", noon - 3600, 0.0007, 50)  # spent before any budget existed
    call(conn, "none", at("2026-11-30 12:00"), 0.5, 50)  # yesterday: another window
    assert not reserve(conn, "a", noon, NEED, DAY)  # $0.0007 + $0.0004 > $0.001
    assert standing(conn, DAY, budget.window("day", noon, PARIS)).spent_nanos == 700_000


def test_settling_charges_every_window_holding_the_calls_start(conn: Any) -> None:
    now = at("2026-12-01 12:00")
    assert reserve(conn, "a", now, NEED, DAY, TEAM)
    call(conn, "a", now, 0.0001, 120)
    day = standing(conn, DAY, budget.window("day", now, PARIS))
    month = standing(conn, TEAM, budget.window("month", now, PARIS))
    assert (day.spent_nanos, day.reserved_nanos) == (100_000, 0)
    assert (month.spent_tokens, month.reserved_tokens) == (120, 0)


def test_a_gone_processs_reservations_are_released_at_check_in(conn: Any) -> None:
    now = at("2026-12-01 12:00")
    pids = {"live": 101, "crashed": 102, "silent": 103}
    for owner, pid in pids.items():
        run(
            conn, check_in_job(owner, pid, "box", now - (100 if owner == "silent" else 0), 30, lambda _: True)
        )
        assert reserve(conn, owner, now, budget.worst_case(1, 1, [], 0), DAY, owner=owner)
    alive = {101, 999}.__contains__  # pid 102 has ended; 103 lives on but has not checked in for 100 s
    released = run(conn, check_in_job("new", 999, "box", now, 30, alive))
    assert released == 2
    assert conn.execute("SELECT DISTINCT owner FROM budget_holds").fetchall() == [("live",)]
