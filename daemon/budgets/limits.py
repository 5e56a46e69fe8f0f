"""What budgets need beyond a profile reload: the limits set through the API or the CLI (read at
most every REFRESH_SECONDS, at once after this daemon's own API changed them), this process's
leases (budgets/leases.py), and its identity as their owner, kept alive in the database so that
another daemon (or this one restarted after a crash) can tell its leases from those of a process
that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from typing import Any

from daemon.budgets.book import BudgetBook
from daemon.budgets.leases import Leases
from daemon.config.limits import BudgetsConfig
from daemon.storage.budgets import SetLimits, check_in_job, check_out_job, give_back_job, load_set_limits
from daemon.storage.writer import Writer

log = logging.getLogger(__name__)
REFRESH_SECONDS = 1.5  # a budget set by the CLI straight into the database applies within this
CHECK_IN_SECONDS = 5.0
STALE_SECONDS = 30.0  # a process silent this long is taken for gone (another host, a reused pid)


class BudgetLimits:
    def __init__(self, reader: Any, writer: Writer) -> None:
        self._reader = reader
        self._writer = writer
        self.owner = secrets.token_hex(8)
        self.leases = Leases()
        self._set = SetLimits({}, {}, {})
        self._read_at = -1e9
        self._refreshing: asyncio.Task[None] | None = None
        self._book: BudgetBook | None = None

    def current(self, config: BudgetsConfig) -> BudgetBook | None:
        """The book, without waiting: None until the set limits were first read. When they are older
        than REFRESH_SECONDS they are read again in the background (calls go on meanwhile)."""
        if time.monotonic() - self._read_at > REFRESH_SECONDS and (
            self._refreshing is None or self._refreshing.done()
        ):
            self._refreshing = asyncio.ensure_future(self._read())
        if self._read_at < 0:
            return None
        return self._assembled(config)

    async def book(self, config: BudgetsConfig) -> BudgetBook:
        """The profile's budgets with those set through the API, as of REFRESH_SECONDS ago at most."""
        if time.monotonic() - self._read_at > REFRESH_SECONDS:
            await self.refresh()
        return self._assembled(config)

    def _assembled(self, config: BudgetsConfig) -> BudgetBook:
        book = self._book
        if book is None or book.config is not config:
            s = self._set
            book = self._book = BudgetBook(config, s.limits, s.resets, s.key_names)
        return book

    async def refresh(self) -> None:
        """Read them now (after a change: a read already under way may have missed it)."""
        if self._refreshing is not None and not self._refreshing.done():
            await asyncio.shield(self._refreshing)
        self._refreshing = asyncio.ensure_future(self._read())
        await asyncio.shield(self._refreshing)

    async def _read(self) -> None:
        try:
            self._set = await load_set_limits(self._reader)
        except Exception:  # the previous ones stay in force; the next call tries again
            log.exception("reading the budgets set through the API failed")
            return
        self._read_at = time.monotonic()
        self._book = None

    async def check_in(self) -> int:
        """Say this process is alive; delete the leases of processes that are not."""
        job = check_in_job(self.owner, os.getpid(), socket.gethostname(), time.time(), STALE_SECONDS, _alive)
        released = int(await self._writer.run(job))
        if released:
            log.warning("released %d budget leases of a daemon that is gone", released)
        return released

    async def give_back(self) -> None:
        """Hand the leases' spare room back, for other daemons on the database to use."""
        claimed = self.leases.room_to_give_back(time.time())
        if not claimed:
            return
        returned = [(lease.key, room[0] + synced[0], room[1] + synced[1]) for lease, room, synced in claimed]

        def given(done: asyncio.Future[Any]) -> None:
            back = not done.cancelled() and done.exception() is None
            for lease, room, synced in claimed:
                lease.hold(-room[0], -room[1])
                if back:
                    lease.granted_nanos -= room[0]
                    lease.granted_tokens -= room[1]
                else:
                    lease.untake(synced)

        await self._writer.run_then(give_back_job(self.owner, returned), given)

    async def keep_checking_in(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_IN_SECONDS)
            if stop.is_set():
                return
            try:
                await self.check_in()
                await self.give_back()
            except Exception:
                log.exception("checking in as a budget owner failed; trying again soon")

    async def check_out(self) -> None:
        await self._writer.run(check_out_job(self.owner))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
