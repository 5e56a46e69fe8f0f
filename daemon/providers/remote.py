"""A pooled HTTP client for remote providers: timeouts, retries with jittered backoff, error mapping.

The client decides the gateway's ceiling (DESIGN.md, Providers). Plain `http://` upstreams go
through our lean HTTP/1.1 pool (http1.py: ~half the added latency and CPU of aiohttp's client);
`https://` ones through aiohttp (TLS, proxies, everything else), which served ~2.5x the requests
per second of httpx's AsyncClient.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiohttp
import orjson

from daemon.config.schema import ENV_REFERENCE, RemoteModel
from daemon.errors import ModelUnavailable, ProviderError, UpstreamTimeout
from daemon.providers.http1 import Http1Error, Http1Pool, ResponseBroken
from daemon.providers.wire import json_object

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})  # 529: Anthropic "overloaded"
MAX_BACKOFF_S = 8.0
TIMEOUTS = (TimeoutError, aiohttp.ServerTimeoutError)
CLIENT_ERRORS = (aiohttp.ClientError, Http1Error)


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


def backoff_seconds(attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            return min(float(retry_after), MAX_BACKOFF_S)
        except ValueError:
            pass
    ceiling: float = min(MAX_BACKOFF_S, 0.25 * 2.0**attempt)
    return ceiling * random.uniform(0.5, 1.0)


class RemoteClient:
    def __init__(self, name: str, config: RemoteModel) -> None:
        self.name = name  # the upstream's name in messages: the profile's model name, never its key
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        plain = config.base_url.startswith("http://")
        self._pool = (
            Http1Pool(config.base_url, config.timeout.connect, config.timeout.read) if plain else None
        )
        self._key: str | None = None
        self._key_read_at = -1e9

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.config.timeout.connect, sock_read=self.config.timeout.read
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    async def _post(self, path: str, data: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        if self._pool is not None:
            return await self._pool.post(path, data, headers)
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
        value = self._key
        if not value:
            raise ModelUnavailable(
                f"Model {self.name!r} needs its API key: set the environment variable named in "
                f"its profile entry ({self.config.api_key}) and restart or touch the profile."
            )
        return value

    async def post_json(
        self, path: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        async with self.request(path, body, headers) as response:
            raw = await response.read()
        return json_object(raw, self.name, "a response")

    @asynccontextmanager
    async def request(
        self, path: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> AsyncIterator[UpstreamResponse]:
        """POST with retries until a 2xx response starts; the caller reads its body."""
        data = orjson.dumps(body)
        all_headers = {"content-type": "application/json", **headers}
        attempt = 0
        while True:
            try:
                response = await self._post(path, data, all_headers)
            except ResponseBroken as exc:  # a response had begun: not retried, the call may have run
                raise ProviderError(
                    f"Upstream {self.name!r} broke off its response: {type(exc).__name__}."
                ) from None
            except TIMEOUTS:
                if attempt >= self.config.retries:
                    raise UpstreamTimeout(
                        f"Upstream {self.name!r} timed out ({self.config.base_url})."
                    ) from None
            except CLIENT_ERRORS as exc:
                if attempt >= self.config.retries:
                    raise ProviderError(
                        f"Upstream {self.name!r} could not be reached ({self.config.base_url}): "
                        f"{type(exc).__name__}."
                    ) from None
            else:
                if response.status < 400:
                    try:
                        yield response
                    except TIMEOUTS:
                        raise UpstreamTimeout(f"Upstream {self.name!r} timed out while responding.") from None
                    except CLIENT_ERRORS as exc:
                        raise ProviderError(
                            f"Upstream {self.name!r} broke off its response: {type(exc).__name__}."
                        ) from None
                    finally:
                        response.release()
                    return
                retry_after = response.headers.get("retry-after")
                detail = await _error_detail(response)
                response.release()
                if response.status not in RETRY_STATUSES or attempt >= self.config.retries:
                    raise ProviderError(f"Upstream {self.name!r} answered HTTP {response.status}: {detail}")
                await asyncio.sleep(backoff_seconds(attempt, retry_after))
                attempt += 1
                continue
            await asyncio.sleep(backoff_seconds(attempt, None))
            attempt += 1

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        if self._session is not None:
            await self._session.close()


async def _error_detail(response: UpstreamResponse) -> str:
    try:
        raw = await response.read()
    except (*CLIENT_ERRORS, TimeoutError):
        return "(no body)"
    try:
        parsed = orjson.loads(raw)
        message = parsed.get("error", {}).get("message") if isinstance(parsed, dict) else None
        if message:
            return str(message)[:500]
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return raw[:300].decode(errors="replace") or "(no body)"
