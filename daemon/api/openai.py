"""The OpenAI-compatible routes: /v1/chat/completions, /v1/embeddings, /v1/models, /health.

Chat and embeddings are bare ASGI apps (hot.HotRoute): `FastPath` calls them before Starlette,
and Starlette's router keeps them too, for its 405s and for an app served without the fast path.
"""

from __future__ import annotations

import time

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from daemon.api.common import JSON, authenticate, services_of
from daemon.api.hot import HotRoute
from daemon.api.schemas import validate_chat, validate_embeddings


async def models(request: Request) -> Response:
    await authenticate(request)
    runtime = services_of(request).runtimes.current
    created = int(runtime.loaded_at)
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": f"llmops:{entry.config.provider}"}
        for name, entry in runtime.models.items()
    ]
    data += [
        {"id": name, "object": "model", "created": created, "owned_by": f"llmops:route:{route.strategy}"}
        for name, route in runtime.profile.routes.items()
    ]
    return JSON({"object": "list", "data": data})


async def health(request: Request) -> Response:
    return JSON({"status": "ok", "profile": services_of(request).profile.name, "time": time.time()})


def hot_routes(state: State) -> dict[str, HotRoute]:
    """The POST routes FastPath serves itself; `state` is the app's, whose `.services` they use."""
    return {
        "/v1/chat/completions": HotRoute("chat", validate_chat, state),
        "/v1/embeddings": HotRoute("embeddings", validate_embeddings, state),
    }


def routes(hot: dict[str, HotRoute]) -> list[BaseRoute]:
    return [
        *(Route(path, route, methods=["POST"]) for path, route in hot.items()),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
