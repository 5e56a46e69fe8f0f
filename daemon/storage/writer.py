"""The one writer: a thread that owns the write connection and group-commits queued jobs.

A job is a function of the connection. Jobs that arrive while a transaction is being written
wait and then share the next one, so under load one commit serves many requests. A job's
future resolves only after its transaction committed: a caller that awaits it knows its
write is durable (WAL, synchronous=NORMAL: it survives the process being killed).

With nothing to share a commit with (one request in flight), the hand-off to the thread and back
costs as much latency as the write itself (~0.1 ms each): such a job commits at once on the
caller's thread, if the writer is idle. A lock keeps the connection to one thread at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import StoreUnavailable
from daemon.storage.db import BUSY_TIMEOUT_MS, connect_sync, sqlite_module

log = logging.getLogger(__name__)

Job = Callable[[Any], Any]
MAX_BATCH = 512
# SQLite's automatic checkpoint would run inside whichever commit crosses 1,000 WAL pages, with an
# fsync: a 10-15 ms stall for that one request. We checkpoint ourselves between batches instead.
CHECKPOINT_SECONDS = 1.0
# Upkeep (the search index) runs when the writer is idle, but at most this often: running it after
# every commit doubled the writer's work per request at low concurrency. Rows it has not reached
# yet are still found (by scanning the few newest). A step that leaves a backlog is followed by
# the next at once, so a sustained load never outruns it.
UPKEEP_SECONDS = 0.5


@dataclass(slots=True)
class _Pending:
    job: Job
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    on_commit: Callable[[Any], None] | None = None  # told of the result even if the future was cancelled


class Writer:
    def __init__(self, path: Path | str, upkeep: Callable[[Any], bool] | None = None) -> None:
        """`upkeep(conn)` (the search index) runs in a transaction of its own when nothing waits:
        at most every UPKEEP_SECONDS, or at once again while it says it left more to do."""
        self._path = path
        self._upkeep = upkeep
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: Any = None  # the write connection while the thread runs
        self._lock = threading.Lock()  # held by whichever thread uses the connection
        self._dead = False  # the thread ended without being stopped: fail every write at once
        self.commits = 0
        self.pending = 0  # writes handed to the thread and not answered yet

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

    def submit(self, job: Job, on_commit: Callable[[Any], None] | None = None) -> asyncio.Future[Any]:
        """Queue `job`; the future resolves once it committed. `on_commit(result)` runs on the loop
        after the commit even if the future was cancelled meanwhile (its caller left)."""
        if self._dead:
            raise _unavailable()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.pending += 1
        self._queue.put(_Pending(job, future, loop, on_commit))
        if self._dead:  # the thread died while we queued: nobody else will answer this job
            self._fail_queued()
        return future

    async def run(self, job: Job, alone: bool = False, on_commit: Callable[[Any], None] | None = None) -> Any:
        """Run `job(conn)` in the next transaction and return its result once committed.

        `alone`: the caller knows of no other write coming to share the commit; if the writer is
        idle, the (small) job then commits right here, blocking this thread for ~0.1 ms."""
        if self._dead:
            raise _unavailable()
        if alone and self._queue.empty() and self._lock.acquire(blocking=False):
            try:
                conn = self._conn
                if conn is not None and _begin_now(conn):
                    result = _committed(conn, job)
                    self.commits += 1
                    if on_commit is not None:
                        on_commit(result)
                    return result
            finally:
                self._lock.release()
        return await self.submit(job, on_commit)

    async def run_then(
        self, job: Job, then: Callable[[asyncio.Future[Any]], None], alone: bool = False
    ) -> Any:
        """`run`, and `then(done)` once the write has settled (committed or failed), even if the
        caller is cancelled meanwhile: for state in memory that must follow the database either way."""
        write = asyncio.ensure_future(self.run(job, alone=alone))
        write.add_done_callback(then)
        return await asyncio.shield(write)

    @property
    def alive(self) -> bool:
        return not self._dead

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
        conn.execute("PRAGMA wal_autocheckpoint=0")
        # SQLite's busy handler would stall a caller committing inline; this thread waits in _begin.
        conn.execute("PRAGMA busy_timeout=0")
        self._conn = conn
        ready.set()
        last_checkpoint = last_upkeep = time.monotonic()
        behind = False  # the last upkeep step left more to do
        stopped = False
        batch: list[_Pending] = []
        try:
            while True:
                batch, stop = self._collect(0.0 if behind else UPKEEP_SECONDS)
                with self._lock:
                    if batch:
                        self._write(conn, batch)
                    if time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                        _checkpoint(conn)
                        last_checkpoint = time.monotonic()
                if stop:
                    stopped = True
                    return
                now = time.monotonic()
                due = behind or now - last_upkeep >= UPKEEP_SECONDS
                if self._upkeep is not None and self._queue.empty() and due:
                    with self._lock:
                        behind = _run_upkeep(conn, self._upkeep)
                    last_upkeep = now
        finally:
            with self._lock:
                self._conn = None
                conn.close()
            if not stopped:  # something we did not foresee ended the thread: never leave a caller hanging
                log.critical("the trace writer stopped unexpectedly; calls now fail with 503")
                self._dead = True
                self._hand_back(batch, [(False, _unavailable())] * len(batch))  # unanswered ones
                self._fail_queued()

    def _fail_queued(self) -> None:
        failed: list[_Pending] = []
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._queue.get_nowait()
                if item is not None:
                    failed.append(item)
        self._hand_back(failed, [(False, _unavailable())] * len(failed))

    def _collect(self, wait: float) -> tuple[list[_Pending], bool]:
        """What is queued now (waiting up to `wait` seconds for the first), and whether to stop."""
        batch: list[_Pending] = []
        try:
            item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            while item is not None:
                batch.append(item)
                if len(batch) >= MAX_BATCH:
                    return batch, False
                item = self._queue.get_nowait()
        except queue.Empty:
            return batch, False
        return batch, True

    def _write(self, conn: Any, batch: list[_Pending]) -> None:
        """Commit the batch; a job that fails fails alone, and any SQLite error (a full disk, a
        lock held too long) fails the jobs it touched, never the thread."""
        try:
            outcomes = self._transaction(conn, batch, isolate=False)
        except _JobFailed:
            # Some job failed: redo the batch with a savepoint per job, so it fails alone.
            try:
                outcomes = self._transaction(conn, batch, isolate=True)
            except Exception:
                log.exception("write transaction failed; retrying its jobs one by one")
                outcomes = [self._alone(conn, pending) for pending in batch]
        except Exception as exc:
            log.exception("write transaction failed")
            outcomes = [(False, exc)] * len(batch)
        self._hand_back(batch, outcomes)

    def _alone(self, conn: Any, pending: _Pending) -> tuple[bool, Any]:
        try:
            _begin(conn)
            result = _committed(conn, pending.job)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            return False, exc
        self.commits += 1
        return True, result

    def _transaction(self, conn: Any, batch: list[_Pending], isolate: bool) -> list[tuple[bool, Any]]:
        _begin(conn)
        outcomes: list[tuple[bool, Any]] = _committed(conn, lambda c: _run_jobs(c, batch, isolate))
        self.commits += 1
        return outcomes

    def _hand_back(self, batch: list[_Pending], outcomes: list[tuple[bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, bool, Any]]] = {}
        for pending, (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending, ok, value))
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed while we wrote
                loop.call_soon_threadsafe(self._resolve, items)

    def _resolve(self, items: list[tuple[_Pending, bool, Any]]) -> None:
        self.pending -= len(items)
        _resolve(items)


class _JobFailed(Exception):
    pass


def _run_jobs(conn: Any, batch: list[_Pending], isolate: bool) -> list[tuple[bool, Any]]:
    """Each job's (ok, result or exception). Not isolated, the first failure fails the batch."""
    outcomes: list[tuple[bool, Any]] = []
    for index, pending in enumerate(batch):
        if not isolate:
            try:
                outcomes.append((True, pending.job(conn)))
            except Exception as exc:
                raise _JobFailed from exc
            continue
        conn.execute(f"SAVEPOINT job{index}")
        try:
            outcomes.append((True, pending.job(conn)))
            conn.execute(f"RELEASE job{index}")
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            conn.execute(f"ROLLBACK TO job{index}")
            conn.execute(f"RELEASE job{index}")
            outcomes.append((False, exc))
    return outcomes


def _run_upkeep(conn: Any, upkeep: Callable[[Any], bool]) -> bool:
    """One upkeep step in its own transaction; True if it left more to do."""
    try:
        _begin(conn)
        return bool(_committed(conn, upkeep))
    except Exception:
        log.exception("writer upkeep failed")
        return False


def _committed(conn: Any, job: Job) -> Any:
    """Run `job(conn)` in the transaction begun on `conn`: commit, or roll back if it raised."""
    try:
        result = job(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _begin_now(conn: Any) -> bool:
    """BEGIN IMMEDIATE, or False at once if another process (`llmops keys`) holds the write lock."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite_module().OperationalError as exc:
        if getattr(exc, "sqlite_errorname", None) == "SQLITE_BUSY":
            return False
        raise
    return True


def _begin(conn: Any) -> None:
    """BEGIN IMMEDIATE, waiting up to the busy timeout for another process's write lock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while not _begin_now(conn):
        if time.monotonic() > deadline:
            raise sqlite_module().OperationalError("database is locked (by another process)")
        time.sleep(0.002)


def _checkpoint(conn: Any) -> None:
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits for readers
    except Exception:  # a later one will catch up; the commits themselves are durable
        log.exception("WAL checkpoint failed")


def _unavailable() -> StoreUnavailable:
    return StoreUnavailable("The trace store cannot write (see the daemon log); calls are refused.")


def _resolve(items: list[tuple[_Pending, bool, Any]]) -> None:
    for pending, ok, value in items:
        if ok and pending.on_commit is not None:
            try:
                pending.on_commit(value)
            except Exception:
                log.exception("a commit callback failed")
        if pending.future.done():
            continue
        if ok:
            pending.future.set_result(value)
        else:
            pending.future.set_exception(value)
