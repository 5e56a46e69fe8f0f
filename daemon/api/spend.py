"""GET /admin/spend (admin keys only): totals, groups and a time series for a calendar window."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daemon.api.common import JSON, authenticate, query_number, services_of
from daemon.auth import require_admin
from daemon.core.spend import GROUPS, WINDOWS, SpendWindow, fill_series, savings, spend_window
from daemon.errors import InvalidRequest
from daemon.storage import spend as spend_store

MAX_OFFSET = 14 * 3600  # UTC+14 is the furthest time zone


def window_of(params: Any) -> SpendWindow:
    """?window=today|7d|30d &utc_offset=<seconds east of UTC> &now=<unix s>, as a calendar window."""
    name = params.get("window") or "today"
    if name not in WINDOWS:
        raise InvalidRequest(f"Invalid 'window': expected one of {', '.join(WINDOWS)}, got {name!r}.",
                             param="window")  # fmt: skip
    given_now = query_number(params, "now")
    now = time.time() if given_now is None else given_now
    given_offset = query_number(params, "utc_offset")
    offset = time.localtime(now).tm_gmtoff if given_offset is None else int(given_offset)
    if abs(offset) > MAX_OFFSET:
        raise InvalidRequest("Invalid 'utc_offset': expected seconds east of UTC, within ±14 hours.",
                             param="utc_offset")  # fmt: skip
    return spend_window(name, now, offset)


async def spend(request: Request) -> Response:
    """?window=today|7d|30d &group_by=model|user|team &utc_offset=<seconds east of UTC> &now=<unix s>"""
    require_admin(await authenticate(request))
    params = request.query_params
    group_by = params.get("group_by") or "model"
    if group_by not in GROUPS:
        raise InvalidRequest(f"Invalid 'group_by': expected one of {', '.join(GROUPS)}, got {group_by!r}.",
                             param="group_by")  # fmt: skip
    window = window_of(params)
    name = window.name
    reader = services_of(request).reader
    totals = await spend_store.totals(reader, window)
    body = {
        "object": "spend",
        "window": name,
        "since": window.since,
        "until": window.until,
        "bucket_seconds": window.bucket_seconds,
        "utc_offset": window.utc_offset,
        "group_by": group_by,
        "totals": {k: v for k, v in totals.items() if k != "local_cost_usd"},
        "savings": savings(totals),
        "groups": await spend_store.by_group(reader, window, group_by),
        "series": fill_series(await spend_store.series(reader, window), window),
    }
    return JSON(body)


routes = [Route("/admin/spend", spend, methods=["GET"])]
