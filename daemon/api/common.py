"""What every route shares: reading a bounded JSON body, authenticating, JSON responses."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from daemon.errors import InvalidRequest, PayloadTooLarge
from daemon.storage.keys import Principal


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def too_large(declared: int | None, limit: int) -> PayloadTooLarge:
    if declared is not None:
        return PayloadTooLarge(f"The request body is {declared} bytes; this gateway accepts at most {limit}.")
    return PayloadTooLarge(f"The request body exceeds this gateway's limit of {limit} bytes.")


async def read_json(request: Request) -> Any:
    limit = request.app.state.daemon.runtime.profile.server.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(None, limit)
        chunks.append(chunk)
    return body_json(b"".join(chunks))


def body_json(raw: bytes) -> Any:
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None


async def authenticate(request: Request) -> Principal:
    authenticator = request.app.state.daemon.authenticator
    principal: Principal = await authenticator.authenticate(
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
