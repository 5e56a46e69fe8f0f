"""/admin/budgets (admin keys only): every budget with what it has spent and reserved in its window,
the refusals over time and the top spenders; and setting, unsetting and resetting a budget.

A budget set here is stored in the database and wins over the profile's for the same subject and
period; unsetting it lets the profile's apply again. A reset starts the budget's window again now.
"""

from __future__ import annotations

import math
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daemon.api.common import JSON, authenticate, read_json, services_of, who
from daemon.api.spend import window_of
from daemon.auth import require_admin
from daemon.budgets.book import DEFAULT
from daemon.core import budget
from daemon.core.budget import PERIODS, Standing
from daemon.core.spend import fill_series
from daemon.errors import InvalidRequest, NotFound
from daemon.services import Services
from daemon.storage import budgets as budget_store
from daemon.storage import spend as spend_store
from daemon.storage.keys import find_key_id

KINDS = ("user", "key", "team")


async def show(request: Request) -> Response:
    """Every budget now (?subject= for one), rejections over a spend window (?window=today|7d|30d)
    and that window's top spenders."""
    require_admin(await authenticate(request))
    services = services_of(request)
    config = services.profile.budgets
    window = window_of(request.query_params)
    top = (await spend_store.by_group(services.reader, window, "user"))[:10]
    found: list[dict[str, Any]] = []
    if config is not None:
        await services.budget_limits.refresh()
        book = await services.budget_limits.book(config)
        limits = book.defined(row["key"] for row in top if row["key"])
        wanted = request.query_params.get("subject")
        if wanted:
            subject = await _subject(services, wanted)
            limits = [x for x in limits if x.subject == subject] or book.of(subject)
        now = time.time()
        leases = services.budget_limits.leases
        triples = []
        for limit in limits:
            span = book.window(limit, now)
            triples.append((limit, span, leases.held((limit.subject, limit.period, span.start))))
        owner = services.budget_limits.owner
        standings = await services.writer.run(budget_store.standings_job(owner, triples))
        found = [_standing(s, now) for s in standings]
    rows = await budget_store.rejections(
        services.reader, window.since, window.until, window.bucket_seconds, window.utc_offset
    )  # fmt: skip
    return JSON({
        "object": "budgets",
        "enabled": config is not None,
        "timezone": config.timezone if config else None,
        "budgets": found,
        "rate_limits": config_of(services.profile.rate_limits),
        "caps": config_of(services.profile.caps),
        "window": window.name, "since": window.since, "until": window.until,
        "bucket_seconds": window.bucket_seconds,
        "rejections": fill_series(rows, window, ("rate_limited", "over_budget")),
        "top_spenders": [_spender(row) for row in top],
    })  # fmt: skip


async def put(request: Request) -> Response:
    """{"per": "day", "usd": 5, "tokens": 100000, "warn_at": 0.8}: set (or replace) a budget."""
    principal = await authenticate(request)
    require_admin(principal)
    services = services_of(request)
    subject = await _subject(services, request.path_params["subject"])
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    unknown = set(body) - {"per", "usd", "tokens", "warn_at"}
    if unknown:
        raise InvalidRequest(f"Unknown field {sorted(unknown)[0]!r}: expected per, usd, tokens, warn_at.",
                             param=sorted(unknown)[0])  # fmt: skip
    period = _period(body.get("per"))
    usd = _number(body, "usd")
    tokens = _number(body, "tokens", integer=True)
    warn_at = _number(body, "warn_at", maximum=1)
    if usd is None and tokens is None:
        raise InvalidRequest("A budget needs 'usd', 'tokens' or both.", param="usd")

    def job(conn: Any) -> None:
        budget_store.set_limit(conn, subject, period, usd, tokens, warn_at, who(principal))

    await services.writer.run(job)
    await services.budget_limits.refresh()  # this daemon's next call sees it
    return JSON({"object": "budget", "subject": subject, "per": period, "usd": usd, "tokens": tokens,
                 "warn_at": warn_at, "set": True})  # fmt: skip


async def unset(request: Request) -> Response:
    """?per=day (default: every period): remove a budget set through the API."""
    require_admin(await authenticate(request))
    services = services_of(request)
    subject = await _subject(services, request.path_params["subject"])
    per = request.query_params.get("per")
    period = _period(per) if per else None
    removed = await services.writer.run(lambda conn: budget_store.unset_limit(conn, subject, period))
    if not removed:
        raise NotFound(
            f"No budget of {subject} was set through the API" + (f" per {period}." if period else ".")
        )
    await services.budget_limits.refresh()  # this daemon's next call sees it
    return JSON({"object": "budget", "subject": subject, "per": period, "removed": removed})


async def reset(request: Request) -> Response:
    """{"per": "day"} (default: every period): start the budget's current window again, now."""
    principal = await authenticate(request)
    require_admin(principal)
    services = services_of(request)
    subject = await _subject(services, request.path_params["subject"])
    body = await read_json(request) if request.headers.get("content-length") not in (None, "0") else {}
    per = body.get("per") if isinstance(body, dict) else None
    periods = [_period(per)] if per else list(PERIODS)
    at = time.time()
    await services.writer.run(lambda conn: budget_store.reset(conn, subject, periods, at, who(principal)))
    await services.budget_limits.refresh()  # this daemon's next call sees it
    return JSON({"object": "budget", "subject": subject, "reset_at": at, "periods": periods})


def _spender(row: dict[str, Any]) -> dict[str, Any]:
    tokens = row["prompt_tokens"] + row["completion_tokens"]
    return {"user": row["key"], "cost_usd": row["cost_usd"], "tokens": tokens, "requests": row["requests"]}


def _standing(s: Standing, now: float) -> dict[str, Any]:
    limit = s.limit
    remaining_nanos, remaining_tokens = s.remaining_nanos(), s.remaining_tokens()
    return {
        "subject": limit.subject, "name": limit.label or limit.subject, "period": limit.period,
        "source": limit.source, "usd": limit.usd, "tokens": limit.tokens, "warn_at": limit.warn_at,
        "window_start": s.window.start, "window_end": budget_store.finite(s.window.end),
        "resets_in_s": None if math.isinf(s.window.end) else round(s.window.end - now, 1),
        "spent_usd": budget.usd(s.spent_nanos), "spent_tokens": s.spent_tokens,
        "reserved_usd": budget.usd(s.reserved_nanos), "reserved_tokens": s.reserved_tokens,
        "remaining_usd": None if remaining_nanos is None else budget.usd(remaining_nanos),
        "remaining_tokens": remaining_tokens,
        "used_share": round(s.used_share(), 4), "warning": budget.warning(s),
    }  # fmt: skip


async def _subject(services: Services, text: str) -> str:
    """`user:NAME`, `team:NAME`, `key:NAME_OR_ID` (kept by the key's id) or `default`."""
    if text == DEFAULT:
        return text
    kind, sep, name = text.partition(":")
    if not sep or kind not in KINDS or not name:
        raise InvalidRequest(
            f"Invalid budget subject {text!r}: expected user:NAME, team:NAME, key:NAME_OR_ID or default.",
            param="subject",
        )
    if kind != "key":
        return text
    key_id = await find_key_id(services.reader, name)
    if key_id is None:
        raise NotFound(f"No API key named {name!r}.", param="subject")
    return f"key:{key_id}"


def _period(value: Any) -> str:
    if value not in PERIODS:
        raise InvalidRequest(
            f"Invalid 'per': expected one of {', '.join(PERIODS)}, got {value!r}.", param="per"
        )
    return str(value)


def _number(body: dict[str, Any], name: str, integer: bool = False, maximum: float | None = None) -> Any:
    """A positive number (an integer if `integer`) up to `maximum`, or None if absent."""
    value = body.get(name)
    if value is None:
        return None
    typed = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not typed or value <= 0 or (maximum is not None and value > maximum):
        what = "a positive integer" if integer else "a positive number"
        limit = f" up to {maximum:g}" if maximum is not None else ""
        raise InvalidRequest(f"Invalid '{name}': expected {what}{limit}, got {value!r}.", param=name)
    return value


def config_of(section: Any) -> Any:
    return section.model_dump() if section is not None else None


routes = [
    Route("/admin/budgets", show, methods=["GET"]),
    Route("/admin/budgets/{subject}", put, methods=["PUT"]),
    Route("/admin/budgets/{subject}", unset, methods=["DELETE"]),
    Route("/admin/budgets/{subject}/reset", reset, methods=["POST"]),
]
