"""A lean HTTP/1.1 keep-alive client for plain `http://` upstreams (local vLLM, Ollama, fakes).

Why not aiohttp here: through a bare proxy on 2 cores its client cost ~0.27 ms CPU per call and
added ~0.2 ms at concurrency 1 over a client on raw asyncio streams (README, Architecture: "Remote
calls"). This one does only what a JSON POST to an API needs: one request at a time per pooled connection,
responses parsed by httptools (the parser uvicorn uses), reads of "whatever arrived" for SSE.
TLS upstreams keep aiohttp (see remote.py).

Connections are not capped (the gateway's own clients bound the concurrency); idle ones are reused
newest first, and one the upstream closed while idle is retried on a fresh connection.

Errors say how far the exchange got, because that decides whether sending the POST again is safe
(remote.py decides; a resent chat call can run and bill the model twice):
- `ConnectFailed`: no connection was made, so the request never left (safe to resend);
- `NoResponse`: the connection closed or reset after the request was sent, before any byte of
  an answer (the model may be running: not resent, except as Http1Pool.post explains);
- `ResponseBroken`: the upstream broke off a response; `BadHead`, what it sent is not HTTP;
- `ReadTimeout`: nothing arrived for the read timeout; `DeadlineReached`: the caller's deadline
  (the call's total, or a stream's idle limit) passed while reading. Both are `TimeoutError`s.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import httptools

READ_SIZE = 65536
IDLE_SECONDS = 30.0  # idle connections older than this are closed, not reused
MAX_HEAD = 65536
PREFETCH_LIMIT = 1 << 20  # JSON bodies up to this size are read with the head, under one timeout
DRAIN_LIMIT = 65536  # an unread rest longer than this is not worth a kept-alive connection
# A stream left early (client gone) must not keep the upstream generating: give up quickly.
DRAIN_SECONDS = 0.1


class Http1Error(Exception):
    pass


class ConnectFailed(Http1Error):
    """Could not open a connection (refused, unreachable, DNS, the connect timeout)."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


class NoResponse(Http1Error):
    """The connection closed (`reset` False) or was reset after the request went out, before any
    byte of a response."""

    def __init__(self, reason: str, *, reset: bool) -> None:
        super().__init__(reason)
        self.reset = reset


class ResponseBroken(Http1Error):
    """The upstream sent a malformed response or closed the connection in the middle of one."""


class BadHead(ResponseBroken):
    """What came back is not (or not yet all of) a valid HTTP response head."""


class ConnectionLost(ResponseBroken):
    """A read failed with an OSError (a reset, mostly); before any byte it becomes NoResponse."""


class ReadTimeout(TimeoutError):
    """Nothing arrived for the pool's read timeout."""


class DeadlineReached(TimeoutError):
    """The deadline the caller set on the connection (Connection.deadline) passed."""


class _Message:
    """httptools' callbacks for one response: its headers, its body so far, where it stands."""

    __slots__ = ("headers", "pieces", "head_done", "complete", "begun")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.pieces: list[bytes] = []
        self.head_done = self.complete = False
        self.begun = 0

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class Response:
    """The status, lower-cased headers and a body to `read()` or iterate (`content.iter_any()`).

    httptools (llhttp, in C) parses the head and undoes chunked framing: an SSE stream comes as a
    chunk per event, and decoding that in Python cost ~3 µs a chunk."""

    def __init__(self, conn: Connection, parser: httptools.HttpResponseParser, message: _Message) -> None:
        self.status: int = parser.get_status_code()
        self.headers = message.headers
        self.content = self  # the aiohttp-like spelling callers use: response.content.iter_any()
        self._conn = conn
        self._parser = parser
        self._message = message
        # Neither a length nor chunks: the body ends when the connection does.
        self._until_close = (
            self.status not in (204, 304)
            and "content-length" not in message.headers
            and "chunked" not in message.headers.get("transfer-encoding", "").lower()
        )
        # (llhttp's should_keep_alive() reads False once a response is complete.)
        connection = message.headers.get("connection", "").lower()
        keep_alive = (
            "close" not in connection if parser.get_http_version() == "1.1" else "keep-alive" in connection
        )
        self._reusable = keep_alive and not self._until_close

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Each piece of the body as it arrives (one read may hold several SSE events)."""
        while True:
            data = self._take()
            if data:
                yield data
            if self._message.complete:
                return
            self.feed(await self._conn.read_some())

    async def read(self) -> bytes:
        while not self._message.complete:
            self.feed(await self._conn.read_some())
        return self._take()

    def feed(self, data: bytes) -> None:
        """Parse what the connection read (b"": it closed)."""
        if not data:
            if not self._until_close:
                raise ResponseBroken("the connection closed mid-body")
            self._message.complete = True
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            raise ResponseBroken("malformed response body") from None
        if self._message.begun > 1:
            raise ResponseBroken("more data than the response")

    def set_deadline(self, at: float) -> None:
        """Reads of the rest of this body fail with DeadlineReached at loop time `at` (a stream's
        idle limit moves it forward after every event)."""
        self._conn.deadline = at

    def _take(self) -> bytes:
        pieces = self._message.pieces
        if not pieces:
            return b""
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        return data

    def release(self) -> None:
        """Return the connection to the pool if the body was read to its end, else close it.

        A caller that stops at an SSE stream's `[DONE]` leaves the chunked terminator unread:
        read it in the background, so streams keep their connections too."""
        conn = self._conn
        conn.deadline = math.inf  # a drain is bounded by DRAIN_SECONDS, not by the call's deadline
        if not self._message.complete and self._reusable and not conn.pool.closed:
            task = asyncio.ensure_future(self._drain())
            conn.pool.draining.add(task)
            task.add_done_callback(conn.pool.draining.discard)
            return
        conn.pool_ok = self._message.complete and self._reusable
        conn.release()

    async def _drain(self) -> None:
        received = 0
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while not self._message.complete and received < DRAIN_LIMIT:
                    data = await self._conn.read_some()
                    received += len(data)
                    self.feed(data)
                    self._message.pieces.clear()
        except (Http1Error, OSError, asyncio.CancelledError):
            pass
        self._conn.pool_ok = self._message.complete
        self._conn.release()


class Connection:
    def __init__(self, pool: Http1Pool, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.pool = pool
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()
        self.pool_ok = False
        self.loop = asyncio.get_running_loop()
        self.read_since: float | None = None  # when the pending read_some began
        self.deadline = math.inf  # loop time: no read may go past it (the call's total, a stream's idle)
        self.watchdog: asyncio.TimerHandle | None = None
        self.watchdog_at = math.inf

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    async def read_some(self) -> bytes:
        """Whatever arrives next (b"": the connection closed).

        A stream reads many times: one watchdog timer, re-armed only when it fires, replaces a
        timer per read (asyncio.timeout cost ~4 % of a streamed call's CPU). It enforces both the
        read timeout and the deadline, so a body trickled a byte at a time (every read is quick,
        the whole never ends) still stops at the deadline. The timer is moved earlier only when a
        new deadline is nearer than the armed one (a stream's idle limit shorter than `read`)."""
        now = self.loop.time()
        if now >= self.deadline:
            raise DeadlineReached()
        self.read_since = now
        limit = min(now + self.pool.read_timeout, self.deadline)
        if self.watchdog is None or self.watchdog_at > limit:
            self._arm(limit)
        try:
            return await self.reader.read(READ_SIZE)
        except TimeoutError:  # set by the watchdog (an OSError too: let it through as it is)
            raise
        except OSError as exc:
            raise ConnectionLost(type(exc).__name__) from None
        finally:
            self.read_since = None

    def _arm(self, at: float) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        self.watchdog, self.watchdog_at = self.loop.call_at(at, self._check), at

    def _check(self) -> None:
        self.watchdog, self.watchdog_at = None, math.inf
        if self.read_since is None:
            return  # not reading now: the next read arms a new watchdog
        read_limit = self.read_since + self.pool.read_timeout
        limit = min(read_limit, self.deadline)
        if self.loop.time() < limit:
            self._arm(limit)
            return
        # The pending read raises it.
        self.reader.set_exception(DeadlineReached() if self.deadline < read_limit else ReadTimeout())
        self.close()

    def release(self) -> None:
        # A pooled connection keeps its watchdog: firing while idle, it just lapses. A pool closed
        # meanwhile (a reload retired this provider) takes nothing back: the socket would leak.
        self.deadline = math.inf
        if self.pool_ok and self.usable() and not self.pool.closed:
            self.idle_since = time.monotonic()
            self.pool.idle.append(self)
        else:
            self.close()

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog, self.watchdog_at = None, math.inf
        self.writer.close()


class Http1Pool:
    """Keep-alive connections to one `http://host:port`, each serving one request at a time."""

    def __init__(self, base_url: str, connect_timeout: float, read_timeout: float) -> None:
        parts = urlsplit(base_url)
        assert parts.scheme == "http", "TLS upstreams use aiohttp"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.host_header = parts.netloc.rpartition("@")[2].encode()  # never userinfo
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle: list[Connection] = []
        self.draining: set[asyncio.Task[None]] = set()
        self.closed = False

    async def post(
        self, path: str, body: bytes, headers: Mapping[str, str], deadline: float = math.inf
    ) -> Response:
        """Send the request and read the response's head (and a JSON body of known length).

        `deadline` (loop time) bounds the connect, the write and every read of this response."""
        head = [b"POST ", (self.prefix + path).encode(), b" HTTP/1.1\r\nhost: ", self.host_header]
        head.append(b"\r\ncontent-length: %d\r\n" % len(body))
        for name, value in headers.items():
            head.append(f"{name}: {value}\r\n".encode())
        head.append(b"\r\n")
        request = b"".join(head) + body
        conn = self._idle_connection()
        if conn is not None:
            conn.deadline = deadline
            try:
                return await self._exchange(conn, request)
            except NoResponse:
                # The one resend that is not a retry: a kept-alive connection that closes before
                # any byte of an answer is, almost always, one the upstream dropped while it sat
                # idle (servers close idle connections after a few seconds), and our request
                # crossed its close in flight, so the upstream never read it. The resend goes
                # over a fresh connection, where the same failure is final.
                pass
        conn = await self._connect(deadline)
        conn.deadline = deadline
        return await self._exchange(conn, request)

    def _idle_connection(self) -> Connection | None:
        deadline = time.monotonic() - IDLE_SECONDS
        while self.idle:
            conn = self.idle.pop()
            if conn.idle_since > deadline and conn.usable():
                return conn
            conn.close()
        return None

    async def _connect(self, deadline: float) -> Connection:
        loop = asyncio.get_running_loop()
        connect_by = loop.time() + self.connect_timeout
        try:
            async with asyncio.timeout_at(min(connect_by, deadline)):
                reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD * 4)
        except TimeoutError:  # an OSError too, so first
            if deadline < connect_by:
                raise DeadlineReached() from None
            raise ConnectFailed("the connect timeout passed", timed_out=True) from None
        except OSError as exc:  # refused, unreachable, DNS (socket.gaierror)
            raise ConnectFailed(type(exc).__name__) from None
        return Connection(self, reader, writer)

    async def _exchange(self, conn: Connection, request: bytes) -> Response:
        message = _Message()
        parser = httptools.HttpResponseParser(message)
        received = 0
        try:
            conn.writer.write(request)
            if conn.writer.transport.get_write_buffer_size() > READ_SIZE:
                await self._drain(conn)
            while not message.head_done:
                data = await conn.read_some()
                if not data:
                    if received:
                        raise BadHead("the connection closed mid-head")
                    raise NoResponse("closed before responding", reset=False)
                received += len(data)
                parser.feed_data(data)
                if not message.head_done and received > MAX_HEAD:
                    raise BadHead("response head too large")
            response = Response(conn, parser, message)
            if response.status < 200:  # 1xx (100-continue): we never send expect
                raise BadHead(f"unexpected status {response.status}")
            # A JSON answer of known length is read at once, often in the wake-up of its head.
            length = message.headers.get("content-length", "")
            while not message.complete and length.isdigit() and int(length) <= PREFETCH_LIMIT:
                response.feed(await conn.read_some())
        except ConnectionLost as exc:
            conn.close()
            if not received:
                raise NoResponse(str(exc), reset=True) from None
            raise
        except httptools.HttpParserError:
            conn.close()
            raise BadHead("not an HTTP/1.x response") from None
        except TimeoutError:  # ReadTimeout, DeadlineReached (OSErrors too, so before OSError)
            conn.close()
            raise
        except OSError as exc:  # writing the request failed: it may have been partly sent
            conn.close()
            raise NoResponse(type(exc).__name__, reset=True) from None
        except BaseException:
            conn.close()  # broken, or cancelled mid-request: the connection's state is unknown
            raise
        return response

    async def _drain(self, conn: Connection) -> None:
        """Wait for a large request body to go out, under the read timeout and the deadline (an
        upstream that stops reading must not hold the call forever)."""
        loop = asyncio.get_running_loop()
        write_by = loop.time() + self.read_timeout
        try:
            async with asyncio.timeout_at(min(write_by, conn.deadline)):
                await conn.writer.drain()
        except TimeoutError:
            raise (DeadlineReached() if conn.deadline < write_by else ReadTimeout()) from None

    async def aclose(self) -> None:
        self.closed = True
        for task in list(self.draining):
            task.cancel()
        while self.idle:
            self.idle.pop().close()
