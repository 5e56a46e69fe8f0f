"""The OpenAI-compatible routes: /v1/chat/completions, /v1/embeddings, /v1/models, /health."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from daemon.api.common import JSON, authenticate, now, read_json
from daemon.api.schemas import validate_chat, validate_embeddings
from daemon.errors import GatewayError


async def chat_completions(request: Request) -> Response:
    started = now()
    principal = await authenticate(request)
    gateway = request.app.state.daemon.gateway
    try:
        body = validate_chat(await read_json(request))
    except GatewayError as exc:  # still a call: it is traced
        await gateway.record_failure(gateway.new_trace("chat", principal), exc, started)
        raise
    if body.get("stream"):
        streamed = await gateway.chat_stream(principal, body, started)
        return StreamingResponse(
            streamed.events,
            media_type="text/event-stream",
            headers={**streamed.headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    reply = await gateway.chat(principal, body, started)
    return JSON(reply.body, headers=reply.headers)


async def embeddings(request: Request) -> Response:
    started = now()
    principal = await authenticate(request)
    gateway = request.app.state.daemon.gateway
    try:
        body = validate_embeddings(await read_json(request))
    except GatewayError as exc:
        await gateway.record_failure(gateway.new_trace("embeddings", principal), exc, started)
        raise
    reply = await gateway.embeddings(principal, body, started)
    return JSON(reply.body, headers=reply.headers)


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


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
]
