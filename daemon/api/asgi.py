"""Bare-ASGI building blocks for the hot routes: request headers, a bounded body, JSON and SSE replies.

Why not Starlette's Request/Response here: on the chat path its middleware stack, routing and the
anyio task group of StreamingResponse cost ~15-20 % of the daemon's CPU per call (py-spy, c=32).
These do the same work with plain dicts and one watcher task per stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import orjson

from daemon.errors import GatewayError, InvalidRequest, PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS: RawHeaders = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ClientGone(Exception):
    """The client disconnected before its request body arrived: there is no one to answer."""


def request_headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def encode_headers(headers: dict[str, str]) -> RawHeaders:
    return [(name.encode(), _header_value(value)) for name, value in headers.items()]


def _header_value(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # e.g. a model name outside latin-1: percent-encoded UTF-8
        return quote(value, safe=" !#$&'()*+,/:;=?@[]~").encode("ascii")


def too_large(declared: int | None, limit: int) -> PayloadTooLarge:
    if declared is not None:
        return PayloadTooLarge(f"The request body is {declared} bytes; this gateway accepts at most {limit}.")
    return PayloadTooLarge(f"The request body exceeds this gateway's limit of {limit} bytes.")


def body_json(raw: bytes) -> Any:
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None


async def read_body_json(receive: Receive, declared: bytes | None, limit: int) -> Any:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(None, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return body_json(chunks[0] if len(chunks) == 1 else b"".join(chunks))


class Disconnect:
    """Cancels the request's task when its client disconnects, once `start()`ed: when the call is
    about to wait on a model or to stream (a call answered at once, a cache hit, needs no watcher).
    From then a client that leaves stops its call at once, even before any byte of an answer, and a
    local model stops generating. Call `finishing()` before the last send, whose completion also
    wakes the watcher."""

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.receive = receive
        self.gone = False
        self.finished = False
        self.watcher: asyncio.Future[None] | None = None

    def start(self) -> None:
        if self.watcher is None and not self.finished:
            self.watcher = asyncio.ensure_future(_wait_disconnect(self.receive))
            self.watcher.add_done_callback(self._disconnected)

    def _disconnected(self, watch: asyncio.Future[None]) -> None:
        if not self.finished and not watch.cancelled():
            self.gone = True
            self.task.cancel()

    def finishing(self) -> None:
        self.finished = True

    def close(self) -> None:
        self.finished = True
        if self.watcher is not None:
            self.watcher.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_json(
    send: Send, status: int, content: Any, headers: RawHeaders, watch: Disconnect | None = None
) -> None:
    body = orjson.dumps(content)
    raw = [JSON_TYPE, (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    if watch is not None:
        watch.finishing()
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: GatewayError) -> None:
    headers = [(b"x-llmops-trace-id", error.trace_id.encode())] if error.trace_id else []
    if error.headers:
        headers.extend(encode_headers(error.headers))
    await send_json(send, error.status, error.to_body(), headers)


async def send_stream(
    send: Send, events: AsyncIterator[bytes], headers: RawHeaders, last: bytes, watch: Disconnect
) -> None:
    """Forward `events` as an SSE body. A chunk that ends with `last` (`data: [DONE]`: nothing
    follows it) leaves with the end of the body, in one write."""
    watch.start()
    await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})
    final = b""
    async for chunk in events:
        if chunk.endswith(last):
            final = chunk
            break
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    watch.finishing()
    await send({"type": "http.response.body", "body": final, "more_body": False})
