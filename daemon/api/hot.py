"""The hot routes as bare ASGI apps, and `FastPath`, which serves them in front of Starlette.

Why: per chat call Starlette's middleware, routing and Request/Response objects cost more CPU than
the gateway's own work (py-spy at c=32). A hot route returns plain data (Reply / StreamReply) and
sends it itself; errors become the same OpenAI-format JSON as Starlette's handlers send (app.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import State

from daemon.api.asgi import (
    ClientGone,
    Receive,
    Scope,
    Send,
    encode_headers,
    send_error,
    send_json,
    send_stream,
)
from daemon.api.common import now
from daemon.errors import GatewayError, internal_error
from daemon.gateway import DONE, Reply, StreamReply

log = logging.getLogger("llmops")

Handler = Callable[[Any, Scope, Receive, float], Awaitable[Reply | StreamReply]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HotRoute:
    def __init__(self, handler: Handler, state: State) -> None:
        self.handler = handler
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = now()
        try:
            reply = await self.handler(self.state.daemon, scope, receive, started)
        except ClientGone:
            return
        except GatewayError as exc:
            await send_error(send, exc)
            return
        except Exception as exc:
            log.exception("unhandled error", exc_info=exc)
            await send_error(send, internal_error())
            return
        if isinstance(reply, StreamReply):
            await send_stream(send, receive, reply.events, encode_headers(reply.headers), DONE)
        else:
            await send_json(send, 200, reply.body, encode_headers(reply.headers))


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
