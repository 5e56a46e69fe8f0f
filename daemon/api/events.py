"""GET /admin/events: Server-Sent Events, one `trace` event per recorded trace (for the console).

The key is checked again while the stream is open: a key revoked meanwhile (or no longer an admin)
ends the stream within 2 s with an `error` event.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from daemon.api.common import authenticate, services_of
from daemon.auth import Authenticator, require_admin
from daemon.errors import GatewayError
from daemon.events import CLOSING, EventBus

KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 0.5  # with the authenticator's 1.5 s cache: a revoked key is cut off within 2 s


async def events(request: Request) -> Response:
    require_admin(await authenticate(request))
    services = services_of(request)
    credentials = (request.headers.get("authorization"), request.headers.get("x-api-key"))
    return StreamingResponse(
        _stream(services.bus, services.authenticator, credentials),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


def _event(kind: str, data: object) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _still_allowed(
    authenticator: Authenticator, credentials: tuple[str | None, str | None]
) -> GatewayError | None:
    try:
        require_admin(await authenticator.authenticate(*credentials))
    except GatewayError as exc:
        return exc
    return None


async def _stream(
    bus: EventBus, authenticator: Authenticator, credentials: tuple[str | None, str | None]
) -> AsyncIterator[bytes]:
    with bus.subscribe() as subscription:
        yield b": connected\n\n"  # the subscription is live from here on
        quiet_since = time.monotonic()
        while True:
            batch = await subscription.next_batch(RECHECK_SECONDS)
            refused = await _still_allowed(authenticator, credentials)
            if refused is not None:
                yield _event("error", refused.to_body())
                return
            if not batch:
                if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    yield b": keep-alive\n\n"
                    quiet_since = time.monotonic()
                continue
            quiet_since = time.monotonic()
            yield b"".join(_event(kind, data) for kind, data in batch)
            if batch[-1][0] == CLOSING:
                return  # the daemon is shutting down: end the stream so shutdown need not wait for it


routes = [Route("/admin/events", events, methods=["GET"])]
