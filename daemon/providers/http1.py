"""A lean HTTP/1.1 keep-alive client for plain `http://` upstreams (local vLLM, Ollama, fakes).

Why not aiohttp here: through a bare proxy on 2 cores its client cost ~0.27 ms CPU per call and
added ~0.2 ms at concurrency 1 over a client on raw asyncio streams (DESIGN.md, Providers). This
one does only what a JSON POST to an API needs: one request at a time per pooled connection,
content-length, chunked and read-to-close bodies, reads of "whatever arrived" for SSE. TLS
upstreams keep aiohttp (see remote.py).

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


class ChunkedDecoder:
    """Incremental `transfer-encoding: chunked` decoder: feed bytes, get the payload so far.

    SSE upstreams send a chunk per event, so the common case, a whole chunk in the buffer, takes
    one pass of the loop; a chunk split across reads continues through `_remaining`."""

    def __init__(self) -> None:
        self._buffer = b""
        self._remaining = -1  # payload bytes left in the current chunk; -1: expecting a size line
        self._trailers = False  # after the last (zero) chunk: skipping to the final blank line
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buffer = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        pos, end = 0, len(buffer)
        while not self.done:
            if self._trailers:
                pos = self._skip_trailers(buffer, pos)
                break
            if self._remaining >= 0:  # the rest of a chunk begun in an earlier read
                take = min(self._remaining, end - pos)
                if take:
                    out.append(buffer[pos : pos + take])
                    pos += take
                    self._remaining -= take
                if self._remaining or end - pos < 2:
                    break
                if buffer[pos : pos + 2] != b"\r\n":
                    raise ResponseBroken("bad chunk terminator")
                pos, self._remaining = pos + 2, -1
                continue
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                if end - pos > 1024:
                    raise ResponseBroken("chunk size line too long")
                break
            size = _chunk_size(buffer[pos:line_end])
            pos = line_end + 2
            if size == 0:
                self._trailers = True
                continue
            stop = pos + size
            if stop + 2 <= end:  # the whole chunk is here
                if buffer[stop : stop + 2] != b"\r\n":
                    raise ResponseBroken("bad chunk terminator")
                out.append(buffer[pos:stop])
                pos = stop + 2
            else:
                self._remaining = size
        self._buffer = buffer[pos:]
        return out[0] if len(out) == 1 else b"".join(out)

    def _skip_trailers(self, buffer: bytes, pos: int) -> int:
        """Past the trailers (unused by APIs) and the final blank line, if they are all here."""
        if buffer.startswith(b"\r\n", pos):
            self.done = True
            return pos + 2
        end = buffer.find(b"\r\n\r\n", pos)
        if end < 0:
            return pos
        self.done = True
        return end + 4


def _chunk_size(line: bytes) -> int:
    try:
        size = int(line.split(b";", 1)[0] if b";" in line else line, 16)
    except ValueError:
        raise ResponseBroken("bad chunk size") from None
    if size < 0:
        raise ResponseBroken("bad chunk size")
    return size


class Response:
    """The status, lower-cased headers and a body to `read()` or iterate (`content.iter_any()`)."""

    def __init__(self, conn: Connection, status: int, headers: dict[str, str], head_only: bool) -> None:
        self.status = status
        self.headers = headers
        self.content = self  # the aiohttp-like spelling callers use: response.content.iter_any()
        self._conn = conn
        self._reusable = headers.get("connection", "").lower() != "close"
        self._chunked: ChunkedDecoder | None = None
        self._remaining: int | None = None
        self._finished = head_only
        self._body: bytes | None = None  # prefetched with the head
        if head_only:
            return
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = ChunkedDecoder()
        elif "content-length" in headers:
            try:
                self._remaining = int(headers["content-length"])
            except ValueError:
                raise ResponseBroken("bad content-length") from None
            self._finished = self._remaining == 0
        else:
            self._reusable = False  # the body ends when the connection does

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Each piece of the body as it arrives (one read may hold several SSE events)."""
        if self._body is not None:
            body, self._body = self._body, None
            if body:
                yield body
        while not self._finished:
            data = await self._next()

            if data:
                yield data

    async def prefetch(self) -> None:
        """Read a known-length body at once (the common JSON case): one timeout and one wake-up
        for head and body."""
        if self._remaining is None or self._finished or self._remaining > PREFETCH_LIMIT:
            return
        try:
            self._body = await self._conn.reader.readexactly(self._remaining)
        except asyncio.IncompleteReadError:
            raise ResponseBroken("the connection closed mid-body") from None
        self._remaining, self._finished = 0, True

    async def read(self) -> bytes:
        if self._body is not None:
            body, self._body = self._body, None
            return body
        if self._remaining is not None and not self._finished:
            # The common case, a JSON body of known length: one exact read.
            try:
                body = await self._conn.read_exactly(self._remaining)
            except asyncio.IncompleteReadError:
                raise ResponseBroken("the connection closed mid-body") from None
            self._remaining, self._finished = 0, True
            return body
        parts = [piece async for piece in self.iter_any()]
        return b"".join(parts)

    async def _next(self) -> bytes:
        raw = await self._conn.read_some()
        if self._chunked is not None:
            if not raw:
                raise ResponseBroken("the connection closed mid-body")
            data = self._chunked.feed(raw)
            self._finished = self._chunked.done
            return data
        if self._remaining is not None:
            if not raw:
                raise ResponseBroken("the connection closed mid-body")
            if len(raw) > self._remaining:
                raise ResponseBroken("more body than content-length")
            self._remaining -= len(raw)
            self._finished = self._remaining == 0
            return raw
        if not raw:  # read-to-close body: EOF is its end
            self._finished = True
        return raw

    def release(self) -> None:
        """Return the connection to the pool if the body was read to its end, else close it.

        A caller that stops at an SSE stream's `[DONE]` leaves the chunked terminator unread:
        read it in the background, so streams keep their connections too."""
        conn = self._conn
        if not self._finished and self._reusable and self._chunked is not None and not conn.pool.closed:
            task = asyncio.ensure_future(self._drain())
            conn.pool.draining.add(task)
            task.add_done_callback(conn.pool.draining.discard)
            return
        conn.pool_ok = self._finished and self._reusable
        conn.release()

    async def _drain(self) -> None:
        received = 0
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while not self._finished and received < DRAIN_LIMIT:
                    received += len(await self._next())
        except (Http1Error, OSError, asyncio.CancelledError):
            pass
        self._conn.pool_ok = self._finished
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

    async def read_exactly(self, size: int) -> bytes:
        async with asyncio.timeout(self.pool.read_timeout):
            return await self.reader.readexactly(size)

    def release(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        if self.pool_ok and self.usable():
            self.idle_since = time.monotonic()
            self.pool.idle.append(self)
        else:
            self.close()

    def close(self) -> None:
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
        try:
            conn.writer.write(request)

            if conn.writer.transport.get_write_buffer_size() > READ_SIZE:
                await conn.writer.drain()
            async with asyncio.timeout(self.read_timeout):
                raw = await conn.reader.readuntil(b"\r\n\r\n")
                response = parse_head(conn, raw)
                await response.prefetch()
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                conn.close()
                raise ResponseBroken("the connection closed mid-head") from None
            raise ConnectionFailed("closed before responding") from None
        except asyncio.LimitOverrunError:
            conn.close()
            raise ResponseBroken("response head too large") from None
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


def parse_head(conn: Connection, raw: bytes) -> Response:
    lines = raw.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
        conn.close()
        raise ResponseBroken("not an HTTP/1.x response")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    status = int(status_line[1])
    if status < 200:  # 1xx (100-continue): we never send expect, so treat as broken
        conn.close()
        raise ResponseBroken(f"unexpected status {status}")
    return Response(conn, status, headers, head_only=status in (204, 304))
