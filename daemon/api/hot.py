"""The hot routes as bare ASGI apps, and `FastPath`, which serves them in front of Starlette.

Why: per chat call Starlette's middleware, routing and Request/Response objects cost more CPU than
the gateway's own work (py-spy at c=32). A hot route authenticates, reads and validates the body,
hands it to the gateway and sends the plain data it gets back (Reply / StreamReply); errors become
the same OpenAI-format JSON as Starlette's handlers send (app.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import State

from daemon.api.asgi import (
    ClientGone,
    Disconnect,
    Receive,
    Scope,
    Send,
    encode_headers,
    read_body_json,
    request_headers,
    send_error,
    send_json,
    send_stream,
)
from daemon.api.common import now
from daemon.core.principal import Principal
from daemon.errors import GatewayError, internal_error
from daemon.gateway import Reply, StreamReply
from daemon.pipeline.context import Endpoint
from daemon.pipeline.relay import DONE
from daemon.prompts import reference
from daemon.services import Services

log = logging.getLogger("llmops")

Validator = Callable[[Any], dict[str, Any]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HotRoute:
    def __init__(self, endpoint: Endpoint, validate: Validator, state: State) -> None:
        self.endpoint = endpoint
        self.validate = validate
        self.state = state  # the app's; `.services` is set in the lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = now()
        services: Services = self.state.services
        headers = request_headers(scope)
        try:
            principal, body = await self._read(services, headers, receive, started)
        except ClientGone:
            return
        except GatewayError as exc:
            await send_error(send, exc)
            return
        watch = Disconnect(receive)
        reply: Reply | StreamReply | None = None
        try:
            reply = await services.gateway.handle(
                self.endpoint, principal, body, headers, started, watch.start
            )
            if isinstance(reply, StreamReply):
                await send_stream(send, reply.events, encode_headers(reply.headers), DONE, watch)
            else:
                await send_json(send, 200, reply.body, encode_headers(reply.headers), watch)
        except asyncio.CancelledError:
            if not watch.gone:
                raise
            watch.task.uncancel()  # our own cancellation: the client left; nobody to answer
        except GatewayError as exc:
            await send_error(send, exc)
        except Exception as exc:
            log.exception("unhandled error", exc_info=exc)
            await send_error(send, internal_error())
        finally:
            watch.close()
            if isinstance(reply, StreamReply):
                await reply.aclose()  # ends the call now (its trace), not at garbage collection

    async def _read(
        self, services: Services, headers: dict[bytes, bytes], receive: Receive, started: float
    ) -> tuple[Principal, dict[str, Any]]:
        """Authenticate, then read and validate the body; a bad body is still a call, so it is traced."""
        authorization, api_key = headers.get(b"authorization"), headers.get(b"x-api-key")
        principal = await services.authenticator.authenticate(
            authorization.decode("latin-1") if authorization is not None else None,
            api_key.decode("latin-1") if api_key is not None else None,
        )
        limit = services.profile.server.max_body_bytes
        try:
            body = await read_body_json(receive, headers.get(b"content-length"), limit)
            named = headers.get(reference.HEADER)
            if named is not None and isinstance(body, dict) and "prompt" not in body:
                body["prompt"] = reference.from_header(named)
            return principal, self.validate(body)
        except GatewayError as exc:
            await services.gateway.refuse(self.endpoint, principal, exc, started)
            raise


class FastPath:
    """POSTs to a hot route go straight to it; everything else (and lifespan) to Starlette."""

    def __init__(self, app: Any, hot: dict[str, HotRoute]) -> None:
        self.app = app
        self.hot = hot

    @property
    def state(self) -> State:
        state: State = self.app.state
        return state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self.hot.get(scope["path"])
            if route is not None:
                await route(scope, receive, send)
                return
        await self.app(scope, receive, send)
