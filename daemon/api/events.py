"""GET /admin/events: Server-Sent Events, one `trace` event per recorded trace (for the console)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from daemon.api.common import authenticate
from daemon.auth import require_admin
from daemon.events import EventBus

KEEPALIVE_SECONDS = 15.0


async def events(request: Request) -> Response:
    require_admin(await authenticate(request))
    return StreamingResponse(
        _stream(request.app.state.daemon.bus),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _stream(bus: EventBus) -> AsyncIterator[bytes]:
    with bus.subscribe() as subscription:
        yield b": connected\n\n"  # the subscription is live from here on
        while True:
            batch = await subscription.next_batch(KEEPALIVE_SECONDS)
            if not batch:
                yield b": keep-alive\n\n"
                continue
            yield b"".join(
                b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n" for kind, data in batch
            )


routes = [Route("/admin/events", events, methods=["GET"])]
