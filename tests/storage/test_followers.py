"""Background followers over trace seq: every trace processed once, in order, across crashes and
across two daemons on one database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.core.trace import Trace, new_trace_id
from daemon.followers import Followers, Job
from daemon.storage import db
from daemon.storage.migrate import migrate
from daemon.storage.traces import insert_job
from daemon.storage.watermarks import position
from daemon.storage.writer import Writer

SEEN = "CREATE TABLE IF NOT EXISTS seen (seq INTEGER, follower TEXT)"


class Recorder:
    """Writes the seq of every trace it processes; fails on the batch that holds `fail_on`, once."""

    def __init__(self, name: str = "recorder", batch_size: int = 10, fail_on: int | None = None) -> None:
        self.name, self.batch_size, self.fail_on = name, batch_size, fail_on

    async def process(self, traces: list[dict[str, Any]]) -> list[Job]:
        seqs = [trace["seq"] for trace in traces]
        if self.fail_on in seqs:
            self.fail_on = None
            raise RuntimeError("the judge's model went away")

        def write(conn: Any) -> None:
            conn.execute(SEEN)
            conn.executemany("INSERT INTO seen VALUES (?, ?)", [(seq, self.name) for seq in seqs])

        return [write]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[Path, Writer, Any]]:
    path = tmp_path / "f.db"
    setup = db.connect_sync(path)
    migrate(setup)
    setup.execute(SEEN)
    setup.close()
    writer = Writer(path)
    writer.start()
    reader = await db.connect(path)
    for _ in range(25):
        await writer.run(insert_job(Trace(id=new_trace_id(), ts=time.time(), endpoint="chat")))
    yield path, writer, reader
    await reader.close()
    writer.stop()


def seen(path: Path) -> list[int]:
    conn = db.connect_sync(path)
    try:
        return [row[0] for row in conn.execute("SELECT seq FROM seen ORDER BY rowid")]
    finally:
        conn.close()


async def catch_up(followers: Followers, follower: Recorder) -> None:
    while await followers.step(follower):
        pass


async def test_every_trace_once_in_order(store: tuple[Path, Writer, Any]) -> None:
    path, writer, reader = store
    recorder = Recorder()
    await catch_up(Followers(writer, reader, [recorder]), recorder)
    assert seen(path) == list(range(1, 26))
    assert await position(reader, "recorder") == 25


async def test_a_failed_batch_is_redone_not_skipped(store: tuple[Path, Writer, Any]) -> None:
    path, writer, reader = store
    recorder = Recorder(fail_on=15)
    followers = Followers(writer, reader, [recorder])
    with pytest.raises(RuntimeError):
        await catch_up(followers, recorder)
    assert await position(reader, "recorder") == 10  # the first batch committed, the failed one did not
    await catch_up(followers, recorder)  # a restart: it picks up where it was
    assert seen(path) == list(range(1, 26))


async def test_two_daemons_never_commit_a_batch_twice(store: tuple[Path, Writer, Any]) -> None:
    path, writer, reader = store
    other_writer = Writer(path)
    other_writer.start()
    other_reader = await db.connect(path)
    try:
        one, two = Followers(writer, reader, []), Followers(other_writer, other_reader, [])
        recorder = Recorder(batch_size=3)
        await asyncio.gather(catch_up(one, recorder), catch_up(two, recorder))
    finally:
        await other_reader.close()
        other_writer.stop()
    assert seen(path) == list(range(1, 26))


async def test_run_keeps_up_and_stops(store: tuple[Path, Writer, Any]) -> None:
    path, writer, reader = store
    recorder = Recorder()
    followers = Followers(writer, reader, [recorder])
    stop = asyncio.Event()
    running = asyncio.ensure_future(followers.run(stop))
    await writer.run(insert_job(Trace(id=new_trace_id(), ts=time.time(), endpoint="chat")))
    followers.nudge()
    deadline = time.monotonic() + 10
    while len(seen(path)) < 26 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert seen(path) == list(range(1, 27))
    stop.set()
    await asyncio.wait_for(running, 5)
