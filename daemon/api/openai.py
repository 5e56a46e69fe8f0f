"""The OpenAI-compatible routes: /v1/chat/completions, /v1/embeddings, /v1/models, /health.

Chat and embeddings are bare ASGI apps (hot.HotRoute): `FastPath` calls them before Starlette,
and Starlette's router keeps them too, for its 405s and for an app served without the fast path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from daemon.api.asgi import Receive, Scope, read_body_json, request_headers
from daemon.api.common import JSON, authenticate
from daemon.api.hot import HotRoute
from daemon.api.schemas import validate_chat, validate_embeddings
from daemon.errors import GatewayError
from daemon.gateway import Reply, StreamReply
from daemon.storage.keys import Principal


async def _principal_and_body(
    daemon: Any, scope: Scope, receive: Receive, started: float, endpoint: str,
    validate: Callable[[Any], dict[str, Any]],
) -> tuple[Principal, dict[str, Any]]:  # fmt: skip
    """Authenticate, then read and validate the body; a bad body is still a call, so it is traced."""
    headers = request_headers(scope)
    authorization, api_key = headers.get(b"authorization"), headers.get(b"x-api-key")
    principal: Principal = await daemon.authenticator.authenticate(
        authorization.decode("latin-1") if authorization is not None else None,
        api_key.decode("latin-1") if api_key is not None else None,
    )
    limit = daemon.runtime.profile.server.max_body_bytes
    try:
        return principal, validate(await read_body_json(receive, headers.get(b"content-length"), limit))
    except GatewayError as exc:
        await daemon.gateway.record_failure(daemon.gateway.new_trace(endpoint, principal), exc, started)
        raise


async def chat_completions(
    daemon: Any, scope: Scope, receive: Receive, started: float
) -> Reply | StreamReply:
    principal, body = await _principal_and_body(daemon, scope, receive, started, "chat", validate_chat)
    gateway = daemon.gateway
    if body.get("stream"):
        streamed: StreamReply = await gateway.chat_stream(principal, body, started)
        return streamed
    reply: Reply = await gateway.chat(principal, body, started)
    return reply


async def embeddings(daemon: Any, scope: Scope, receive: Receive, started: float) -> Reply | StreamReply:
    principal, body = await _principal_and_body(
        daemon, scope, receive, started, "embeddings", validate_embeddings
    )
    reply: Reply = await daemon.gateway.embeddings(principal, body, started)
    return reply


async def models(request: Request) -> Response:
    await authenticate(request)
    runtime = request.app.state.daemon.runtime
    created = int(runtime.loaded_at)
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": f"llmops:{entry.config.provider}"}
        for name, entry in runtime.models.items()
    ]
    return JSON({"object": "list", "data": data})


async def health(request: Request) -> Response:
    daemon = request.app.state.daemon
    return JSON({"status": "ok", "profile": daemon.runtime.profile.name, "time": time.time()})


def hot_routes(state: State) -> dict[str, HotRoute]:
    """The POST routes FastPath serves itself; `state` is the app's, whose `.daemon` they use."""
    return {
        "/v1/chat/completions": HotRoute(chat_completions, state),
        "/v1/embeddings": HotRoute(embeddings, state),
    }


def routes(hot: dict[str, HotRoute]) -> list[BaseRoute]:
    return [
        *(Route(path, route, methods=["POST"]) for path, route in hot.items()),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
