"""The writer's two ways to commit: group commits on its thread, and a lone write inline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.core.trace import Trace, new_trace_id
from daemon.storage import db
from daemon.storage.migrate import migrate
from daemon.storage.traces import insert_job
from daemon.storage.writer import Writer


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    migrate(db.connect_sync(path))
    return path


@pytest.fixture
def writer(path: Path) -> Iterator[Writer]:
    writer = Writer(path)
    writer.start()
    yield writer
    writer.stop()


def traced_insert(trace: Trace, threads: list[str]) -> Any:
    insert = insert_job(trace)

    def job(conn: Any) -> int:
        threads.append(threading.current_thread().name)
        return int(insert(conn))

    return job


def new_trace() -> Trace:
    return Trace(id=new_trace_id(), ts=time.time(), endpoint="chat", user="u")


def count(path: Path) -> int:
    return int(db.connect_sync(path).execute("SELECT count(*) FROM traces").fetchone()[0])


async def test_a_lone_write_commits_on_the_callers_thread(path: Path, writer: Writer) -> None:
    threads: list[str] = []
    await writer.run(traced_insert(new_trace(), threads), alone=True)
    assert threads == [threading.current_thread().name]
    assert count(path) == 1  # committed: another connection sees it
    await writer.run(traced_insert(new_trace(), threads))
    assert threads[1] == "llmops-writer"
    assert count(path) == 2
    assert writer.commits == 2


async def test_a_failing_lone_write_rolls_back_alone(path: Path, writer: Writer) -> None:
    trace = new_trace()
    await writer.run(insert_job(trace), alone=True)
    with pytest.raises(Exception, match="UNIQUE"):
        await writer.run(insert_job(trace), alone=True)
    await writer.run(insert_job(new_trace()), alone=True)  # no transaction was left open
    assert count(path) == 2


async def test_a_lone_write_never_waits_on_another_process_lock(path: Path, writer: Writer) -> None:
    """`llmops keys create` writes from another process: the event loop must not sit in SQLite's
    busy handler meanwhile; the writer thread waits for the lock instead."""
    other = db.connect_sync(path)
    other.execute("BEGIN IMMEDIATE")
    threads: list[str] = []
    began = time.monotonic()
    task = asyncio.ensure_future(writer.run(traced_insert(new_trace(), threads), alone=True))
    await asyncio.sleep(0)  # the task runs up to its first real wait
    assert time.monotonic() - began < 1.0  # far below the 5 s busy timeout
    assert not task.done()
    other.execute("COMMIT")
    await asyncio.wait_for(task, 10)
    assert threads == ["llmops-writer"]
    assert count(path) == 1


async def test_the_writer_thread_gives_up_on_a_lock_held_too_long(
    path: Path, writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("daemon.storage.writer.BUSY_TIMEOUT_MS", 50)
    other = db.connect_sync(path)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(Exception, match="locked"):
        await asyncio.wait_for(writer.run(insert_job(new_trace())), 10)
    other.execute("ROLLBACK")
    await writer.run(insert_job(new_trace()))
    assert count(path) == 1


async def test_upkeep_that_leaves_a_backlog_runs_again_at_once(path: Path) -> None:
    """Throttled to one step per UPKEEP_SECONDS (0.5 s), six steps would take 3 s: a sustained
    load would outrun the search index."""
    steps: list[float] = []
    sixth = threading.Event()

    def upkeep(conn: Any) -> bool:
        steps.append(time.monotonic())
        if len(steps) == 6:
            sixth.set()
        return len(steps) < 6  # a backlog for the first five steps

    writer = Writer(path, upkeep=upkeep)
    writer.start()
    try:
        assert await asyncio.to_thread(sixth.wait, 2.0)
    finally:
        writer.stop()


# -- the writer survives what its jobs and SQLite throw at it (issue 7, defect 1) -------------------


def rollback_and_fail(conn: Any) -> None:
    """A job that ends the transaction under the writer's feet, then fails: the savepoint it was
    given no longer exists when the writer rolls back to it."""
    conn.execute("ROLLBACK")
    raise RuntimeError("a job that broke its transaction")


async def test_the_writer_survives_a_failure_in_its_savepoint_path(path: Path, writer: Writer) -> None:
    first, second = new_trace(), new_trace()
    results = await asyncio.wait_for(asyncio.gather(
        writer.run(insert_job(first)), writer.run(rollback_and_fail), writer.run(insert_job(second)),
        return_exceptions=True,
    ), 5)  # fmt: skip
    assert isinstance(results[1], Exception)
    assert isinstance(results[0], int) and isinstance(results[2], int)  # the others failed not with it
    assert writer.alive
    await asyncio.wait_for(writer.run(insert_job(new_trace())), 5)  # and it goes on writing
    assert count(path) == 3


async def test_a_full_database_fails_the_writes_not_the_writer(path: Path, writer: Writer) -> None:
    """SQLITE_FULL, for real: the database may not grow past its current pages."""
    big = new_trace()
    big.response = "x" * 200_000
    setup = db.connect_sync(path)
    pages = setup.execute("PRAGMA page_count").fetchone()[0]
    setup.close()
    await writer.run(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}"))
    with pytest.raises(Exception, match="full"):
        await asyncio.wait_for(writer.run(insert_job(big)), 5)
    assert writer.alive
    await writer.run(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823"))
    await asyncio.wait_for(writer.run(insert_job(new_trace())), 5)
    assert count(path) == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_writer_fails_calls_at_once(path: Path) -> None:
    """If the thread ends all the same (here: a job raises SystemExit), queued and later writes
    fail with a 503 at once instead of waiting forever."""
    from daemon.errors import StoreUnavailable

    writer = Writer(path)
    writer.start()

    def exit_thread(conn: Any) -> None:
        raise SystemExit("the thread ends")

    blocked = writer.run(exit_thread)
    queued = writer.run(insert_job(new_trace()))
    results = await asyncio.wait_for(asyncio.gather(blocked, queued, return_exceptions=True), 1.0)
    assert all(isinstance(result, StoreUnavailable) for result in results), results
    assert not writer.alive
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(writer.run(insert_job(new_trace()), alone=True), 1.0)
    writer.stop()
