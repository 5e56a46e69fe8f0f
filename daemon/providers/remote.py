"""A pooled HTTP client for remote providers: deadlines, retries, error mapping, scrubbed errors.

The client decides the gateway's ceiling (README, Architecture: "Remote calls"). Plain `http://`
upstreams go through our lean HTTP/1.1 pool (http1.py: ~half the added latency and CPU of aiohttp's client);
`https://` ones through aiohttp (TLS, proxies, everything else), which served ~2.5x the requests
per second of httpx's AsyncClient.

Retries: only when the request provably did not reach the model, or the upstream said to
(failures.py has the rules and the errors). A wait is the upstream's `retry-after` or jittered
backoff, and none goes past `timeout.total`.

Deadlines (`timeout` in the profile): `connect`; `read`, the longest wait for any byte; `total`,
the whole call with its retries, waits and the whole body or stream; `idle`, a stream's longest
gap between two complete events. They are checked at the reads (http1's connection watchdog, or
an `asyncio.timeout` around one aiohttp read), never around a generator that yields to its
consumer, whose own task a timeout would cancel at the wrong place.

Whatever an upstream says passes through `RemoteClient.redact` before it reaches an exception
message (the client's error, the trace, the event bus, the log): upstreams quote the key they
were given.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson

from daemon.config.schema import ENV_REFERENCE, RemoteModel
from daemon.core.redact import scrub
from daemon.errors import GatewayError, ModelUnavailable, ProviderError
from daemon.providers.failures import READ_ERRORS, Deadline, Failures, retry_after_seconds
from daemon.providers.http1 import Http1Pool, Response
from daemon.providers.sse import Event, SSEDecoder
from daemon.providers.wire import error_message, json_object

MAX_BACKOFF_S = 8.0
QUOTE_CHARS = 500  # how much of an upstream's error message an error repeats
KEYS_REMEMBERED = 4  # keys read before a rotation may still come back in an answer to an older call


class UpstreamBody(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]: ...


class UpstreamResponse(Protocol):
    """What callers use of a response, from aiohttp's or from http1's."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> UpstreamBody: ...
    async def read(self) -> bytes: ...
    def release(self) -> Any: ...


def resolve_secret(reference: str | None) -> str | None:
    """`${NAME}` -> the environment's value, read at call time so a rotated key needs no reload."""
    if reference is None:
        return None
    match = ENV_REFERENCE.match(reference)
    assert match, "validated by the profile schema"
    return os.environ.get(match.group(1))


def backoff_seconds(attempt: int) -> float:
    ceiling: float = min(MAX_BACKOFF_S, 0.25 * 2.0**attempt)
    return ceiling * random.uniform(0.5, 1.0)


def public_url(url: str) -> str:
    """`url` without userinfo, for messages: a base URL may carry credentials."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()


class RemoteClient:
    def __init__(self, name: str, config: RemoteModel) -> None:
        self.name = name  # the upstream's name in messages: the profile's model name, never its key
        self.config = config
        self.failures = Failures(name, public_url(config.base_url), config.timeout)
        self._session: aiohttp.ClientSession | None = None
        plain = config.base_url.startswith("http://")
        self._pool = (
            Http1Pool(config.base_url, config.timeout.connect, config.timeout.read) if plain else None
        )
        self._key: str | None = None
        self._key_read_at = -1e9
        self._keys_seen: list[str] = []

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.config.timeout.connect, sock_read=self.config.timeout.read
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    async def _post(
        self, path: str, data: bytes, headers: Mapping[str, str], deadline: Deadline
    ) -> UpstreamResponse:
        if self._pool is not None:
            return await self._pool.post(path, data, headers, deadline.total_at)
        async with asyncio.timeout_at(deadline.total_at):
            response: UpstreamResponse = await self._client().post(
                self.config.base_url + path, data=data, headers=headers
            )
        return response

    @property
    def closed(self) -> bool:
        if self._pool is not None:
            return self._pool.closed
        return self._session is None or self._session.closed

    def api_key(self) -> str | None:
        if self.config.api_key is None:
            return None
        # Re-read at most once a second: a rotated key needs no reload, and the hot path no lookup.
        now = time.monotonic()
        if now - self._key_read_at > 1.0:
            self._key, self._key_read_at = resolve_secret(self.config.api_key), now
            if self._key and self._key not in self._keys_seen:
                self._keys_seen = [*self._keys_seen, self._key][-KEYS_REMEMBERED:]
        value = self._key
        if not value:
            raise ModelUnavailable(
                f"Model {self.name!r} needs its API key: set the environment variable named in "
                f"its profile entry ({self.config.api_key}) and restart or touch the profile."
            )
        return value

    def redact(self, text: str) -> str:
        """Upstream text with the keys this client sent, their masked forms and anything else
        key-shaped blanked (daemon/core/redact.py)."""
        return scrub(text, self._keys_seen)

    def quote(self, text: str) -> str:
        """An upstream's message fit to repeat: redacted, then cut (a cut key would escape)."""
        return self.redact(text)[:QUOTE_CHARS]

    async def post_json(
        self, path: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        async with self.request(path, body, headers) as exchange:
            raw = await exchange.read()
        return json_object(raw, self.name, "a response")

    @asynccontextmanager
    async def request(
        self, path: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> AsyncIterator[Exchange]:
        """POST (retried as failures.py says) until a 2xx response starts; the caller
        reads its body through the Exchange, within the call's deadlines."""
        data = orjson.dumps(body)
        all_headers = {"content-type": "application/json", **headers}
        deadline = Deadline(asyncio.get_running_loop().time() + self.config.timeout.total)
        response = await self._start(path, data, all_headers, deadline)
        try:
            yield Exchange(self, response, deadline)
        except GatewayError as exc:
            # The last line of defence: a message a provider built from what the upstream sent.
            exc.message = self.redact(exc.message)
            exc.args = (exc.message,)
            raise
        except READ_ERRORS as exc:  # the body read other than through the Exchange's methods
            raise self.failures.broken(exc, deadline) from None
        finally:
            response.release()

    async def _start(
        self, path: str, data: bytes, headers: Mapping[str, str], deadline: Deadline
    ) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = await self._post(path, data, headers, deadline)
            except READ_ERRORS as exc:
                error, retry = self.failures.unanswered(exc, deadline)
            else:
                if response.status < 400:
                    return response
                error, retry, wait = await self._refused(response, deadline)
            pause = backoff_seconds(attempt) if wait is None else wait
            if not retry or attempt >= self.config.retries or loop.time() + pause >= deadline.total_at:
                if attempt:
                    error.message += f" ({attempt + 1} attempts)"
                    error.args = (error.message,)
                raise error
            await asyncio.sleep(pause)
            attempt += 1

    async def _refused(
        self, response: UpstreamResponse, deadline: Deadline
    ) -> tuple[ProviderError, bool, float | None]:
        """An error status: the error naming it, whether to retry, and the wait it asked for."""
        status = response.status
        wait = retry_after_seconds(response.headers)
        try:
            detail = await self._error_detail(response, deadline)
        finally:
            response.release()
        return (*self.failures.refused(status, detail, wait), wait)

    async def _error_detail(self, response: UpstreamResponse, deadline: Deadline) -> str:
        try:
            if isinstance(response, Response):  # its connection's watchdog holds the deadline
                raw = await response.read()
            else:
                async with asyncio.timeout_at(deadline.total_at):
                    raw = await response.read()
        except READ_ERRORS:
            return "(no body)"
        return self.quote(error_message(raw, response.headers.get("content-type", "")))

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        if self._session is not None:
            await self._session.close()


class Exchange:
    """A response that has begun, read within the call's deadlines: `read()` for a whole body,
    `batches()` for a stream's SSE events."""

    def __init__(self, client: RemoteClient, response: UpstreamResponse, deadline: Deadline) -> None:
        self.client = client
        self.response = response
        self.deadline = deadline
        self._http1 = response if isinstance(response, Response) else None

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    async def read(self) -> bytes:
        try:
            if self._http1 is not None:  # its connection's watchdog holds the total deadline
                return await self._http1.read()
            async with asyncio.timeout_at(self.deadline.total_at):
                return await self.response.read()
        except READ_ERRORS as exc:
            raise self.client.failures.broken(exc, self.deadline) from None

    async def batches(self) -> AsyncIterator[list[Event]]:
        """The stream's events, a batch per read that completed any. The idle clock runs while
        we wait on the upstream: it restarts when we come back for more after an event, so a slow
        consumer (our client) does not count against the upstream. SSE comments (`: keep-alive`,
        OpenRouter's `: OPENROUTER PROCESSING`) are not events: they do not restart it."""
        loop = asyncio.get_running_loop()
        idle = self.client.config.timeout.idle_seconds
        decoder = SSEDecoder()
        chunks = self.response.content.iter_any()
        self.deadline.idle_at = loop.time() + idle
        while True:
            chunk = await self._next(chunks)
            if chunk is None:
                break
            events = decoder.feed(chunk)
            if events:
                yield events
                self.deadline.idle_at = loop.time() + idle
        rest = decoder.close()
        if rest:
            yield rest

    async def _next(self, chunks: AsyncIterator[bytes]) -> bytes | None:
        limit = min(self.deadline.total_at, self.deadline.idle_at)
        try:
            if self._http1 is not None:
                self._http1.set_deadline(limit)
                return await anext(chunks, None)
            async with asyncio.timeout_at(limit):
                return await anext(chunks, None)
        except READ_ERRORS as exc:
            raise self.client.failures.broken(exc, self.deadline) from None
