"""GET /admin/events: Server-Sent Events, one `trace` event per recorded trace (for the console)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from daemon.api.common import authenticate, services_of
from daemon.auth import require_admin
from daemon.events import CLOSING, EventBus

KEEPALIVE_SECONDS = 15.0


async def events(request: Request) -> Response:
    require_admin(await authenticate(request))
    return StreamingResponse(
        _stream(services_of(request).bus),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


def _event(kind: str, data: object) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _stream(bus: EventBus) -> AsyncIterator[bytes]:
    with bus.subscribe() as subscription:
        yield b": connected\n\n"  # the subscription is live from here on
        while True:
            batch = await subscription.next_batch(KEEPALIVE_SECONDS)
            if not batch:
                yield b": keep-alive\n\n"
                continue
            yield b"".join(_event(kind, data) for kind, data in batch)
            if batch[-1][0] == CLOSING:
                return  # the daemon is shutting down: end the stream so shutdown need not wait for it


routes = [Route("/admin/events", events, methods=["GET"])]
