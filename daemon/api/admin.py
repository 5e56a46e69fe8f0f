"""Admin routes (admin keys only): status, traces, one trace. Also /v1/feedback for any client."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daemon.api.common import JSON, authenticate, query_number, read_json, services_of
from daemon.auth import require_admin
from daemon.errors import InvalidRequest, NotFound
from daemon.storage import feedback as feedback_store
from daemon.storage.traces import TraceQuery, get_trace, list_traces

MAX_PAGE = 500


async def status(request: Request) -> Response:
    require_admin(await authenticate(request))
    return JSON(services_of(request).status())


def trace_query(params: Any) -> TraceQuery:
    try:
        limit = int(params.get("limit", 50))
        cursor = int(params["cursor"]) if params.get("cursor") else None
    except ValueError:
        raise InvalidRequest("Invalid 'limit' or 'cursor': expected integers.", param="limit") from None
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"Invalid 'limit': must be between 1 and {MAX_PAGE}.", param="limit")
    if cursor is not None and not 0 <= cursor < 2**63:  # a seq is a SQLite integer
        raise InvalidRequest("Invalid 'cursor': pass back a next_cursor from a listing.", param="cursor")
    return TraceQuery(
        model=params.get("model") or None,
        route=params.get("route") or None,
        user=params.get("user") or None,
        team=params.get("team") or None,
        status=params.get("status") or None,
        since=query_number(params, "since"),
        until=query_number(params, "until"),
        text=params.get("q") or None,
        cursor=cursor,
        limit=limit,
    )


async def traces(request: Request) -> Response:
    require_admin(await authenticate(request))
    query = trace_query(request.query_params)
    rows, next_cursor = await list_traces(services_of(request).reader, query)
    return JSON({"object": "list", "data": rows, "next_cursor": next_cursor})


async def trace(request: Request) -> Response:
    require_admin(await authenticate(request))
    trace_id = request.path_params["trace_id"]
    found = await get_trace(services_of(request).reader, trace_id)
    if found is None:
        raise NotFound(f"No trace with id {trace_id!r}.", param="trace_id")
    found["feedback"] = await feedback_store.for_trace(services_of(request).reader, trace_id)
    return JSON(found)


async def feedback(request: Request) -> Response:
    """Rate a trace the key may see (its user's own; a team key, its team's; an admin, any); who
    rated and when are stored with it, one rating per person, replaced when they rate again."""
    principal = await authenticate(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    trace_id, comment = body.get("trace_id"), body.get("comment")
    if not isinstance(trace_id, str) or not trace_id:
        raise InvalidRequest("Invalid 'trace_id': expected a trace id string.", param="trace_id")
    kind, score = _rating(body)
    if comment is not None and not isinstance(comment, str):
        raise InvalidRequest("Invalid 'comment': expected a string.", param="comment")
    daemon = services_of(request)
    entry = {"trace_id": trace_id, "kind": kind, "score": score, "comment": comment,
             "rated_by": principal.user, "created_at": time.time()}  # fmt: skip
    saved = await daemon.writer.run(feedback_store.insert_job(entry, principal))
    if saved is None:  # unknown, or not the caller's: the same answer, so ids cannot be probed
        raise NotFound(f"No trace with id {trace_id!r}.", param="trace_id")
    entry["id"] = saved
    daemon.bus.publish("feedback", entry)
    return JSON(entry, status_code=201)


def _rating(body: dict[str, Any]) -> tuple[str, float]:
    """Either stars, `score` 1-5, or `thumbs`: "up" | "down" (stored as 1 / -1)."""
    score, thumbs = body.get("score"), body.get("thumbs")
    if (score is None) == (thumbs is None):
        raise InvalidRequest("Give either 'score' (1-5 stars) or 'thumbs' ('up' or 'down').", param="score")
    if thumbs is not None:
        if thumbs not in ("up", "down"):
            raise InvalidRequest("Invalid 'thumbs': expected 'up' or 'down'.", param="thumbs")
        return "thumbs", 1.0 if thumbs == "up" else -1.0
    if isinstance(score, bool) or not isinstance(score, int | float) or not 1 <= score <= 5:
        raise InvalidRequest("Invalid 'score': expected 1 to 5 stars.", param="score")
    return "stars", float(score)


routes = [
    Route("/admin/status", status, methods=["GET"]),
    Route("/admin/traces", traces, methods=["GET"]),
    Route("/admin/traces/{trace_id}", trace, methods=["GET"]),
    Route("/v1/feedback", feedback, methods=["POST"]),
]
