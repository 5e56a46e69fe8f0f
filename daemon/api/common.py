"""What every route shares: reading a bounded JSON body, authenticating, JSON responses."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

import orjson
from starlette.requests import Request
from starlette.responses import Response

from daemon.api.asgi import read_body_json
from daemon.core.principal import Principal
from daemon.errors import InvalidRequest

if TYPE_CHECKING:
    from daemon.services import Services


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def services_of(request: Request) -> Services:
    """The app's services (set in the lifespan), typed."""
    return cast("Services", request.app.state.services)


async def read_json(request: Request) -> Any:
    """The body of a Starlette request, with the same limit and errors as the hot routes."""
    limit = services_of(request).profile.server.max_body_bytes
    declared = request.headers.get("content-length")
    return await read_body_json(request.receive, declared.encode() if declared else None, limit)


async def authenticate(request: Request) -> Principal:
    principal: Principal = await services_of(request).authenticator.authenticate(
        request.headers.get("authorization"), request.headers.get("x-api-key")
    )
    return principal


def now() -> float:
    return time.perf_counter()


def query_number(params: Any, name: str) -> float | None:
    """A numeric query parameter, None when absent; a 400 naming it when it is not a number."""
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidRequest(f"Invalid '{name}': expected a number, got {value!r}.", param=name) from None


async def admin(request: Request) -> Principal:
    """The caller, who must hold an admin key."""
    from daemon.auth import require_admin

    principal = await authenticate(request)
    require_admin(principal)
    return principal


def who(principal: Principal) -> str:
    """How a change is signed: the key's name, else its user."""
    return principal.key_name or principal.user
