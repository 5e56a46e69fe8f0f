"""Background work over the traces that must not be lost (the judge, alert rules, ...).

Each follower processes every trace past its watermark (`storage/watermarks.py`), in seq order,
and its writes commit in the same transaction as the watermark's advance: a crash or restart
redoes at most the batch in progress, and never skips one. Two daemons on one database never
commit the same batch twice (the advance is conditional). The in-memory event bus, which drops
events for slow subscribers, only wakes followers early; they also poll.

A follower that calls a local model passes `priority=BACKGROUND` on its Call, so interactive
calls go first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import aiosqlite

from daemon.storage.watermarks import advance_job, position, traces_after
from daemon.storage.writer import Writer

log = logging.getLogger(__name__)

Job = Callable[[Any], Any]
POLL_SECONDS = 5.0
RETRY_SECONDS = 10.0


class Follower(Protocol):
    name: str  # its watermark's name: keep it stable
    batch_size: int

    async def process(self, traces: list[dict[str, Any]]) -> list[Job]:
        """Work on a batch of traces (oldest first) and return the writes to commit with the
        watermark's advance past them."""
        ...


class WatermarkMoved(Exception):
    """Another process committed this batch first: ours is rolled back."""


class Followers:
    def __init__(self, writer: Writer, reader: aiosqlite.Connection, followers: Sequence[Follower]) -> None:
        self._writer = writer
        self._reader = reader
        self._followers = tuple(followers)
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        """A trace was recorded: followers need not wait for their next poll."""
        self._wake.set()

    async def step(self, follower: Follower) -> int:
        """One batch: how many traces it processed (0: caught up)."""
        start = await position(self._reader, follower.name)
        traces = await traces_after(self._reader, start, follower.batch_size)
        if not traces:
            return 0
        writes = await follower.process(traces)
        advance = advance_job(follower.name, start, traces[-1]["seq"])

        def job(conn: Any) -> None:
            for write in writes:
                write(conn)
            if not advance(conn):
                raise WatermarkMoved(follower.name)

        try:
            await self._writer.run(job)
        except WatermarkMoved:
            log.info("follower %s: another process took this batch", follower.name)
        return len(traces)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep every follower caught up until `stop` is set."""
        if self._followers:
            await asyncio.gather(*(self._follow(follower, stop) for follower in self._followers))

    async def _follow(self, follower: Follower, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.step(follower):
                    continue
            except Exception:
                log.exception("follower %s failed; it retries the same traces", follower.name)
                await _sleep_unless(stop, RETRY_SECONDS)
                continue
            self._wake.clear()
            await _sleep_unless(stop, POLL_SECONDS, self._wake)


async def _sleep_unless(stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
