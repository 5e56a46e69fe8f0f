"""/admin/routing (admin keys only): over a window (?window=today|7d|30d), each route's traffic per
model and tier, its escalation and fallback rates, the shares over time, the models' circuit
breakers and live latencies, and the latest shadow calls beside the answers served."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daemon.api.common import JSON, authenticate, services_of
from daemon.api.spend import window_of
from daemon.auth import require_admin
from daemon.services import breaker_states, route_states
from daemon.storage import routing as store

RECENT_SHADOWS = 20


async def stats(request: Request) -> Response:
    require_admin(await authenticate(request))
    services = services_of(request)
    window = window_of(request.query_params)
    reader, runtime = services.reader, services.runtimes.current
    since, until = window.since, window.until
    rows = await store.route_rows(reader, since, until)
    return JSON({
        "object": "routing",
        "window": window.name, "since": window.since, "until": window.until,
        "bucket_seconds": window.bucket_seconds,
        "routes": summarize(route_states(runtime.profile), rows),
        "series": await store.route_series(reader, since, until, window.bucket_seconds),
        "breakers": breaker_states(runtime, time.time()),
        "shadow_totals": await store.shadow_totals(reader, since, until),
        "shadows": await store.recent_shadows(reader, since, until, RECENT_SHADOWS),
    })  # fmt: skip


def summarize(routes: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each configured route (and any route still in the window's traces) with its totals and its
    split by served model and by tier."""
    by_route = {r["name"]: _empty(r["name"], r["strategy"], r["models"], r["description"]) for r in routes}
    for row in rows:
        name = row["route"]
        route = by_route.get(name) or by_route.setdefault(
            name, _empty(name, None, [], "(no longer configured)")
        )
        for key in ("calls", "errors", "escalated", "fell_back"):
            route[key] += row[key] or 0
        route["cost_usd"] += row["cost_usd"] or 0.0
        model = row["served_model"] or "(none)"
        route["models"][model] = route["models"].get(model, 0) + row["calls"]
        if row["route_tier"]:
            route["tiers"][row["route_tier"]] = route["tiers"].get(row["route_tier"], 0) + row["calls"]
    for route in by_route.values():
        calls = route["calls"]
        cascade = route["strategy"] == "cascade"
        route["escalation_rate"] = route["escalated"] / calls if calls and cascade else None
        route["fallback_rate"] = route["fell_back"] / calls if calls else None
    return list(by_route.values())


def _empty(name: str, strategy: str | None, configured: list[str], description: str) -> dict[str, Any]:
    return {
        "name": name, "strategy": strategy, "configured": configured, "description": description,
        "calls": 0, "errors": 0, "cost_usd": 0.0, "escalated": 0, "fell_back": 0, "models": {}, "tiers": {},
    }  # fmt: skip


routes = [Route("/admin/routing", stats, methods=["GET"])]
