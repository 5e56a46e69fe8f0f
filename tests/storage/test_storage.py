from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.core.trace import Trace, new_trace_id
from daemon.storage import db
from daemon.storage.migrate import available_migrations, migrate
from daemon.storage.traces import TraceQuery, get_trace, insert_job, list_traces
from daemon.storage.writer import Writer


def test_migrations_build_the_schema_once(tmp_path: Path) -> None:
    conn = db.connect_sync(tmp_path / "x.db")
    applied = migrate(conn)
    assert applied == [name for _, name, _ in available_migrations()]
    assert migrate(conn) == []  # idempotent
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"traces", "api_keys", "feedback", "schema_migrations"} <= tables
    columns = {r[1] for r in conn.execute("PRAGMA table_info(traces)")}
    assert {
        "id",
        "ts",
        "user",
        "served_model",
        "prompt_tokens",
        "cost_usd",
        "shadow_cost_usd",
        "ttft_ms",
        "cache",
        "route",
        "prompt_version",
        "arm",
    } <= columns
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT vec_version()").fetchone()[0].startswith("v")  # sqlite-vec is loaded


def test_a_failing_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import daemon.storage.migrate as module

    monkeypatch.setattr(
        module,
        "available_migrations",
        lambda: [(1, "0001_a.sql", "CREATE TABLE a (x);\nCREATE TABLE a (x);")],
    )
    conn = db.connect_sync(tmp_path / "x.db")
    with pytest.raises(Exception, match="already exists"):
        migrate(conn)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'a'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 0


async def test_writer_group_commits_and_reader_pages(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    migrate(db.connect_sync(path))
    writer = Writer(path)
    writer.start()
    traces = [
        Trace(id=new_trace_id(), ts=1000.0 + i, endpoint="chat", user=f"u{i % 2}", served_model="m")
        for i in range(50)
    ]
    seqs = await asyncio.gather(*(writer.run(insert_job(t)) for t in traces))
    assert sorted(seqs) == list(range(1, 51))
    assert writer.commits < 50  # concurrent writes shared transactions
    bad = writer.run(insert_job(traces[0]))  # duplicate id: fails alone
    good = writer.run(insert_job(Trace(id=new_trace_id(), ts=2000.0, endpoint="chat")))
    with pytest.raises(Exception, match="UNIQUE"):
        await bad
    assert await good == 51
    writer.stop()

    reader = await db.connect(path)
    page, cursor = await list_traces(reader, TraceQuery(user="u1", limit=10))
    assert len(page) == 10 and all(r["user"] == "u1" for r in page) and cursor is not None
    rest, end = await list_traces(reader, TraceQuery(user="u1", limit=100, cursor=cursor))
    assert len(page) + len(rest) == 25 and end is None
    window, _ = await list_traces(reader, TraceQuery(since=1010, until=1020, limit=100))
    assert sorted(r["ts"] for r in window) == [1010.0 + i for i in range(10)]
    assert (await get_trace(reader, traces[3].id))["user"] == "u1"  # type: ignore[index]
    assert await get_trace(reader, "missing") is None
    await reader.close()


async def test_listing_orders_by_time_and_searches_words(tmp_path: Path) -> None:
    from daemon.storage.search_index import index_step

    path = tmp_path / "x.db"
    conn = db.connect_sync(path)
    migrate(conn)
    rows = [
        Trace(
            id=f"t{i}",
            ts=1000.0 + (i % 7) * 10 + i / 100,
            endpoint="chat",
            served_model="m" if i % 2 else None,
            requested_model="gpt-x",
            request=f'{{"messages": [{{"content": "ticket #{i:05d} about refunds"}}]}}',
        )
        for i in range(40)
    ]
    for trace in rows:
        insert_job(trace)(conn)
    assert index_step(conn, limit=30) == 30  # the last 10 stay unindexed: found by scanning
    reader = await db.connect(path)
    everything, _ = await list_traces(reader, TraceQuery(limit=100))
    assert [r["ts"] for r in everything] == sorted((t.ts for t in rows), reverse=True)
    seen, cursor = [], None
    while True:
        page, cursor = await list_traces(reader, TraceQuery(limit=7, cursor=cursor))
        seen += [r["id"] for r in page]
        if cursor is None:
            break
    assert seen == [r["id"] for r in everything]
    for number in (4, 35):  # one indexed, one not yet
        found, _ = await list_traces(reader, TraceQuery(text=f"ticket #{number:05d}"))
        assert [r["id"] for r in found] == [f"t{number}"]
    prefix, _ = await list_traces(reader, TraceQuery(text="refu", limit=100))
    assert len(prefix) == 40
    by_model, _ = await list_traces(reader, TraceQuery(model="gpt-x", limit=100))
    assert {r["id"] for r in by_model} == {f"t{i}" for i in range(0, 40, 2)}  # served_model is NULL there
    await reader.close()


async def test_status_and_team_filters_over_partial_indices(tmp_path: Path) -> None:
    """ok traces and traces without a team are left out of their indices (migration 0005)."""
    from daemon.storage.traces import _where

    path = tmp_path / "x.db"
    conn = db.connect_sync(path)
    migrate(conn)
    statuses = ["ok"] * 6 + ["error", "cancelled"]
    for i in range(40):
        trace = Trace(id=f"t{i}", ts=1000.0 + i, endpoint="chat", status=statuses[i % 8])
        trace.team = "a" if i % 3 == 0 else None
        insert_job(trace)(conn)
    reader = await db.connect(path)
    for status in ("ok", "error", "cancelled"):
        page, _ = await list_traces(reader, TraceQuery(status=status, limit=100))
        assert {r["id"] for r in page} == {f"t{i}" for i in range(40) if statuses[i % 8] == status}
    page, _ = await list_traces(reader, TraceQuery(team="a", status="error", limit=100))
    assert {r["id"] for r in page} == {f"t{i}" for i in range(40) if i % 3 == 0 and i % 8 == 6}
    await reader.close()
    where, params = _where(TraceQuery(status="error"), None, None)
    plan = " ".join(
        row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN SELECT seq FROM traces{where}", params)
    )
    assert "traces_status_ts" in plan
