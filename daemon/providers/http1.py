"""A lean HTTP/1.1 keep-alive client for plain `http://` upstreams (local vLLM, Ollama, fakes).

Why not aiohttp here: through a bare proxy on 2 cores its client cost ~0.27 ms CPU per call and
added ~0.2 ms at concurrency 1 over a client on raw asyncio streams (DESIGN.md, Providers). This
one does only what a JSON POST to an API needs: one request at a time per pooled connection,
responses parsed by httptools (the parser uvicorn uses), reads of "whatever arrived" for SSE.
TLS upstreams keep aiohttp (see remote.py).

Connections are not capped (the gateway's own clients bound the concurrency); idle ones are reused
newest first, and one the upstream closed while idle is retried on a fresh connection.

Errors: `ConnectionFailed` means no byte of a response arrived (safe to retry the POST);
`ResponseBroken` means the upstream broke off a response; timeouts raise `TimeoutError`.
"""

from __future__ import annotations

import asyncio
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


class ConnectionFailed(Http1Error):
    """Could not connect, or the connection closed before any byte of a response."""


class ResponseBroken(Http1Error):
    """The upstream sent a malformed response or closed the connection in the middle of one."""


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
        self.watchdog: asyncio.TimerHandle | None = None

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    async def read_some(self) -> bytes:
        """Whatever arrives next. A stream reads many times: one watchdog timer, re-armed only when
        it fires, replaces a timer per read (asyncio.timeout cost ~4 % of a streamed call's CPU)."""
        self.read_since = self.loop.time()
        if self.watchdog is None:
            self.watchdog = self.loop.call_at(self.read_since + self.pool.read_timeout, self._check)
        try:
            return await self.reader.read(READ_SIZE)
        finally:
            self.read_since = None

    def _check(self) -> None:
        self.watchdog = None
        if self.read_since is None:
            return  # not reading now: the next read arms a new watchdog
        deadline = self.read_since + self.pool.read_timeout
        if self.loop.time() < deadline:
            self.watchdog = self.loop.call_at(deadline, self._check)
            return
        self.reader.set_exception(TimeoutError())  # the pending read raises it
        self.close()

    def release(self) -> None:
        # A pooled connection keeps its watchdog: firing while idle, it just lapses.
        if self.pool_ok and self.usable():
            self.idle_since = time.monotonic()
            self.pool.idle.append(self)
        else:
            self.close()

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
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

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Response:
        head = [b"POST ", (self.prefix + path).encode(), b" HTTP/1.1\r\nhost: ", self.host_header]
        head.append(b"\r\ncontent-length: %d\r\n" % len(body))
        for name, value in headers.items():
            head.append(f"{name}: {value}\r\n".encode())
        head.append(b"\r\n")
        request = b"".join(head) + body
        while True:
            conn, reused = self._idle_connection(), True
            if conn is None:
                conn, reused = await self._connect(), False
            try:
                return await self._exchange(conn, request)
            except ConnectionFailed:
                conn.close()
                if not reused:
                    raise
                # A kept-alive connection the upstream had closed: retry on another, transparently.

    def _idle_connection(self) -> Connection | None:
        deadline = time.monotonic() - IDLE_SECONDS
        while self.idle:
            conn = self.idle.pop()
            if conn.idle_since > deadline and conn.usable():
                return conn
            conn.close()
        return None

    async def _connect(self) -> Connection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD * 4)
        except TimeoutError:  # an OSError too, but not a refused connection
            raise
        except OSError as exc:
            raise ConnectionFailed(type(exc).__name__) from None
        return Connection(self, reader, writer)

    async def _exchange(self, conn: Connection, request: bytes) -> Response:
        message = _Message()
        parser = httptools.HttpResponseParser(message)
        received = 0
        try:
            conn.writer.write(request)
            if conn.writer.transport.get_write_buffer_size() > READ_SIZE:
                await conn.writer.drain()
            while not message.head_done:
                data = await conn.read_some()
                if not data:
                    if received:
                        raise ResponseBroken("the connection closed mid-head")
                    raise ConnectionFailed("closed before responding")
                received += len(data)
                parser.feed_data(data)
                if not message.head_done and received > MAX_HEAD:
                    raise ResponseBroken("response head too large")
            response = Response(conn, parser, message)
            if response.status < 200:  # 1xx (100-continue): we never send expect
                raise ResponseBroken(f"unexpected status {response.status}")
            # A JSON answer of known length is read at once, often in the wake-up of its head.
            length = message.headers.get("content-length", "")
            while not message.complete and length.isdigit() and int(length) <= PREFETCH_LIMIT:
                response.feed(await conn.read_some())
        except ConnectionFailed:
            raise
        except httptools.HttpParserError:
            conn.close()
            raise ResponseBroken("not an HTTP/1.x response") from None
        except TimeoutError:
            conn.close()
            raise
        except OSError as exc:
            raise ConnectionFailed(type(exc).__name__) from None
        except BaseException:
            conn.close()  # broken, or cancelled mid-request: the connection's state is unknown
            raise
        return response

    async def aclose(self) -> None:
        self.closed = True
        for task in list(self.draining):
            task.cancel()
        while self.idle:
            self.idle.pop().close()
