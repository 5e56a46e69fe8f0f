"""The one writer: a thread that owns the write connection and group-commits queued jobs.

A job is a function of the connection. Jobs that arrive while a transaction is being written
wait and then share the next one, so under load one commit serves many requests. A job's
future resolves only after its transaction committed: a caller that awaits it knows its
write is durable (WAL, synchronous=NORMAL: it survives the process being killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.storage.db import connect_sync

log = logging.getLogger(__name__)

Job = Callable[[Any], Any]
MAX_BATCH = 512


@dataclass(slots=True)
class _Pending:
    job: Job
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class Writer:
    def __init__(self, path: Path | str) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commits = 0

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="llmops-writer", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    def submit(self, job: Job) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Pending(job, future, loop))
        return future

    async def run(self, job: Job) -> Any:
        """Run `job(conn)` in the next transaction and return its result once committed."""
        return await self.submit(job)

    def stop(self) -> None:
        """Finish every queued job, then close. Blocking; call from a thread or at shutdown."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            conn = connect_sync(self._path)
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                self._write(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _write(self, conn: Any, batch: list[_Pending]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for index, pending in enumerate(batch):
                # A savepoint per job: one failing job rolls back alone, the rest still commit.
                conn.execute(f"SAVEPOINT job{index}")
                try:
                    outcomes.append((True, pending.job(conn)))
                    conn.execute(f"RELEASE job{index}")
                except Exception as exc:  # noqa: BLE001 - handed to the caller
                    conn.execute(f"ROLLBACK TO job{index}")
                    conn.execute(f"RELEASE job{index}")
                    outcomes.append((False, exc))
            conn.execute("COMMIT")
            self.commits += 1
        except Exception as exc:
            log.exception("write transaction failed")
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(False, exc)] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, bool, Any]]] = {}
        for pending, (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending, ok, value))
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed while we wrote
                loop.call_soon_threadsafe(_resolve, items)


def _resolve(items: list[tuple[_Pending, bool, Any]]) -> None:
    for pending, ok, value in items:
        if pending.future.done():
            continue
        if ok:
            pending.future.set_result(value)
        else:
            pending.future.set_exception(value)
