"""GET /admin/events: Server-Sent Events, one `trace` event per recorded trace (for the console)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from daemon.api.common import authenticate
from daemon.auth import require_admin

KEEPALIVE_SECONDS = 15.0


async def events(request: Request) -> Response:
    require_admin(await authenticate(request))
    bus = request.app.state.daemon.bus
    return StreamingResponse(
        _stream(bus.subscribe()),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _stream(subscription: AsyncIterator[tuple[str, object]]) -> AsyncIterator[bytes]:
    yield b": connected\n\n"  # lets the client know the subscription is live
    pending: asyncio.Task[tuple[str, object]] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(subscription))
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield b": keep-alive\n\n"
                continue
            kind, data = pending.result()
            pending = None
            yield b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
    finally:
        if pending is not None:
            pending.cancel()
        await subscription.aclose()  # type: ignore[attr-defined]


routes = [Route("/admin/events", events, methods=["GET"])]
