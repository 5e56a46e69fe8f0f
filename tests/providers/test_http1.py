"""The lean HTTP/1.1 client (http1.py) through RemoteClient: against the fake OpenAI upstream, and
against a raw asyncio server for the edge cases (chunked bodies, stale keep-alive, broken bodies,
timeouts)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httptools
import orjson
import pytest

from daemon.config.schema import OpenAIModel, Timeouts
from daemon.errors import ProviderError, UpstreamTimeout
from daemon.providers.base import Call
from daemon.providers.http1 import Response, ResponseBroken, _Message
from daemon.providers.openai_compat import OpenAICompatProvider
from daemon.providers.remote import RemoteClient
from tests.fixtures.fake_openai import FakeOpenAI
from tests.fixtures.faulty_upstream import FaultyUpstream
from tests.providers.conftest import chat, openai_provider

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON_BODY = orjson.dumps({"ok": True})


def client_for(port: int, path: str = "/v1", read: float = 2.0, retries: int = 0) -> RemoteClient:
    config = OpenAIModel(
        provider="openai",
        base_url=f"http://127.0.0.1:{port}{path}",
        timeout=Timeouts(connect=1.0, read=read),
        retries=retries,
    )
    return RemoteClient("edge-model", config)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    return head


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    upstream = FakeOpenAI().start()
    yield upstream
    upstream.stop()


# -- the chunked decoder ---------------------------------------------------------------------------


def parse_in_pieces(wire: bytes, rng: random.Random) -> tuple[Response, bytes]:
    """Feed `wire` to a response's parser in random pieces, as reads would deliver it."""
    message = _Message()
    parser = httptools.HttpResponseParser(message)
    pos, response, body = 0, None, b""
    while pos < len(wire):
        piece = wire[pos : pos + rng.randint(1, 17)]
        pos += len(piece)
        if response is None:
            try:
                parser.feed_data(piece)
            except httptools.HttpParserError:
                raise ResponseBroken("as _exchange says it") from None
            if message.head_done:
                response = Response(None, parser, message)  # type: ignore[arg-type]
        else:
            response.feed(piece)
        body += b"".join(message.pieces)
        message.pieces.clear()
    assert response is not None
    return response, body


def test_a_chunked_body_reassembles_from_any_split() -> None:
    pieces = [b"data: one\n\n", b"x" * 300, b"data: [DONE]\n\n"]
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nX-Thing: A b\r\n\r\n"
    wire = head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nx-trailer: 1\r\n\r\n"
    rng = random.Random(3)
    for _ in range(100):
        response, body = parse_in_pieces(wire, rng)
        assert body == b"".join(pieces) and response._message.complete
        assert response.status == 200 and response.headers["x-thing"] == "A b"


def test_garbage_in_a_chunked_body_breaks_the_response() -> None:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    with pytest.raises(ResponseBroken):
        parse_in_pieces(head + b"zz\r\n", random.Random(1))
    with pytest.raises(ResponseBroken, match="more data"):
        parse_in_pieces(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", random.Random(1)
        )


# -- against the fake OpenAI upstream --------------------------------------------------------------


async def test_completion_and_stream_reuse_one_connection(fake: FakeOpenAI) -> None:
    config = OpenAIModel(provider="openai", base_url=fake.base_url, api_key="${LLMOPS_TEST_HTTP1_KEY}")
    provider = OpenAICompatProvider("fake", config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLMOPS_TEST_HTTP1_KEY", fake.api_key or "")
        body = {"model": "fake", "messages": [{"role": "user", "content": "one two three"}]}
        call = Call(body=body, model="fake", upstream_model="fake")
        completion = await provider.complete(call)
        assert completion.text == "Echo: one two three"
        chunks = [chunk async for chunk in provider.stream(call)]
        assert "".join(chunk.text for chunk in chunks) == "Echo: one two three"
        assert chunks[-1].usage is not None
    await asyncio.sleep(0.05)  # the chunked terminator after [DONE] is read in the background
    pool = provider.client._pool
    assert pool is not None and len(pool.idle) == 1  # both calls went over one kept-alive connection
    await provider.aclose()
    assert provider.client.closed


# -- edge cases against a raw server ---------------------------------------------------------------


async def test_chunked_response_body(raw_server: Callable[[Handler], Awaitable[int]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_request(reader)
        assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"ok\r\n')
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b'6\r\n": tru\r\n2\r\ne}\r\n0\r\n\r\n')
        await writer.drain()

    client = client_for(await raw_server(handler))
    assert await client.post_json("/chat/completions", {"x": 1}, {}) == {"ok": True}
    await client.aclose()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + JSON_BODY, {"ok": True}),
        (b"HTTP/1.0 200 OK\r\n\r\n" + JSON_BODY, {"ok": True}),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", None),
        (b"HTTP/1.1 100 Continue\r\n\r\n", None),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nx: " + b"y" * 200_000 + b"\r\n\r\n", None),
    ],
    ids=["read-to-close", "http-1.0", "not-http", "1xx", "huge-head"],
)
async def test_bodies_that_end_with_the_connection_and_broken_answers(
    raw_server: Callable[[Handler], Awaitable[int]], answer: bytes, expected: Any
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    client = client_for(await raw_server(handler))
    if expected is None:  # a head that never became a valid response: not retried either
        with pytest.raises(ProviderError, match="sent an invalid or incomplete response"):
            await client.post_json("/x", {}, {})
    else:
        assert await client.post_json("/x", {}, {}) == expected
        assert client._pool is not None and not client._pool.idle  # a body read to close: not kept
    await client.aclose()


async def test_stale_keep_alive_is_retried_transparently(
    raw_server: Callable[[Handler], Awaitable[int]],
) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(JSON_BODY), JSON_BODY))
        await writer.drain()
        writer.close()  # no "connection: close": the client keeps the connection, now dead

    client = client_for(await raw_server(handler))  # retries=0: the stale retry is not one
    assert await client.post_json("/x", {}, {}) == {"ok": True}
    await asyncio.sleep(0.05)
    assert await client.post_json("/x", {}, {}) == {"ok": True}
    assert connections == 2
    await client.aclose()


async def test_stale_connection_detected_only_on_write_is_retried(
    raw_server: Callable[[Handler], Awaitable[int]],
) -> None:
    """The upstream closes right after our request arrives, without answering: a reused connection."""
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            requests += 1
            if requests == 2:
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(JSON_BODY), JSON_BODY))
            await writer.drain()

    client = client_for(await raw_server(handler))
    assert await client.post_json("/x", {}, {}) == {"ok": True}
    assert await client.post_json("/x", {}, {}) == {"ok": True}
    assert requests == 3
    await client.aclose()


async def test_upstream_closing_mid_body_is_a_provider_error(
    raw_server: Callable[[Handler], Awaitable[int]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial')
        await writer.drain()
        writer.close()

    client = client_for(await raw_server(handler))
    with pytest.raises(ProviderError, match="'edge-model' broke off its response") as caught:
        await client.post_json("/x", {}, {"authorization": "Bearer sk-secret-never-shown"})
    assert "sk-secret" not in str(caught.value)
    await client.aclose()


async def test_read_timeout_is_upstream_timeout(raw_server: Callable[[Handler], Awaitable[int]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(2)

    client = client_for(await raw_server(handler), read=0.2, retries=1)
    with pytest.raises(UpstreamTimeout, match="'edge-model' timed out"):
        await client.post_json("/x", {}, {})
    await client.aclose()


async def test_stream_timeout_mid_body_is_upstream_timeout(
    raw_server: Callable[[Handler], Awaitable[int]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\ndata: \r\n")
        await writer.drain()
        await asyncio.sleep(2)

    client = client_for(await raw_server(handler), read=0.2)
    with pytest.raises(UpstreamTimeout, match="timed out while responding"):
        async with client.request("/x", {}, {}) as exchange:
            async for _ in exchange.batches():
                pass
    await client.aclose()


async def test_retries_a_503_then_succeeds(raw_server: Callable[[Handler], Awaitable[int]]) -> None:
    answers = [b"HTTP/1.1 503 Busy\r\nretry-after: 0\r\ncontent-length: 4\r\n\r\nbusy"]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            ok = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(JSON_BODY), JSON_BODY)
            writer.write(answers.pop() if answers else ok)
            await writer.drain()

    client = client_for(await raw_server(handler), retries=1)
    assert await client.post_json("/x", {}, {}) == {"ok": True}
    await client.aclose()


async def test_connection_refused_is_a_provider_error() -> None:
    from tests.fixtures.fake_openai import free_port

    client = client_for(free_port())
    with pytest.raises(ProviderError, match="'edge-model' could not be reached"):
        await client.post_json("/x", {}, {})
    await client.aclose()


async def test_stream_left_early_closes_its_connection(
    raw_server: Callable[[Handler], Awaitable[int]],
) -> None:
    """A client that leaves mid-stream must not keep the upstream generating: no long drain."""
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            for _ in range(200):
                writer.write(b"6\r\ndata: \r\n")
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            closed.set()

    client = client_for(await raw_server(handler))
    async with client.request("/x", {}, {}) as exchange:
        async for _ in exchange.response.content.iter_any():
            break
    await asyncio.wait_for(closed.wait(), 1.0)
    assert client._pool is not None and not client._pool.idle
    await client.aclose()


async def test_a_connection_released_after_its_pool_closed_is_closed(upstream: FaultyUpstream) -> None:
    """Issue 7: a response finished after its pool closed (a reload retired the provider mid-call)
    went back into the closed pool, where nothing would ever close its socket."""
    client = openai_provider(upstream).client
    async with client.request("/chat/completions", chat().body, {}) as exchange:
        assert await exchange.read()
        await client.aclose()
    assert isinstance(exchange.response, Response)
    assert client._pool is not None and not client._pool.idle
    assert exchange.response._conn.writer.is_closing()
