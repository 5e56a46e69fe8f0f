"""/admin/cache (admin keys only): the cache's numbers, its entries, evicting, clearing, and marking
a hit as wrong. Every change goes to the in-memory index and to the database together."""

from __future__ import annotations

import logging
import time
from dataclasses import fields
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daemon.api.common import JSON, authenticate, read_json, services_of
from daemon.api.spend import window_of
from daemon.auth import require_admin
from daemon.cache.exact import CacheEntry
from daemon.core.cache_key import question_of
from daemon.core.spend import fill_series, hit_rate
from daemon.errors import GatewayError, InvalidRequest, NotFound
from daemon.pipeline.cache import CacheStage
from daemon.services import Services
from daemon.storage import cache as cache_store
from daemon.storage import spend as spend_store
from daemon.storage.traces import get_trace

log = logging.getLogger("llmops")
MAX_LIST = 500
LISTED = tuple(f.name for f in fields(CacheEntry) if f.name != "body")


async def stats(request: Request) -> Response:
    """The cache's size and configuration, and over a spend window (?window=&utc_offset=): lookups,
    hits, what they saved, a series, and the latest hits beside the questions they answered."""
    require_admin(await authenticate(request))
    services = services_of(request)
    window = window_of(request.query_params)
    totals = await spend_store.totals(services.reader, window)
    series = fill_series(await spend_store.series(services.reader, window), window)
    index = services.exact_cache
    namespaces: dict[str, int] = {}
    for entry in index:
        namespaces[entry.namespace] = namespaces.get(entry.namespace, 0) + 1
    config = services.profile.cache
    return JSON({
        "object": "cache",
        "enabled": config is not None,
        "config": config.model_dump() if config is not None else None,
        "entries": len(index),
        "fences": services.cache_fences.count(),
        "namespaces": namespaces,
        "window": window.name, "since": window.since, "until": window.until,
        "bucket_seconds": window.bucket_seconds, "utc_offset": window.utc_offset,
        "lookups": totals["cache_lookups"], "hits": totals["cache_hits"],
        "semantic_hits": totals["semantic_hits"],
        "hit_rate": hit_rate(totals["cache_hits"], totals["cache_lookups"]),
        "saved_usd": totals["saved_usd"], "saved_tokens": totals["saved_tokens"],
        "series": [{key: bucket[key] for key in ("start", "cache_lookups", "cache_hits", "semantic_hits",
                                                  "saved_usd", "saved_tokens")} for bucket in series],
        "recent_hits": await cache_store.recent_hits(services.reader, 20),
        "bad_hits": await cache_store.bad_hits(services.reader, 20),
    })  # fmt: skip


async def entries(request: Request) -> Response:
    """?namespace= &order=recent|hits &limit="""
    require_admin(await authenticate(request))
    params = request.query_params
    order = params.get("order") or "recent"
    if order not in ("recent", "hits"):
        raise InvalidRequest("Invalid 'order': expected 'recent' or 'hits'.", param="order")
    try:
        limit = int(params.get("limit", 50))
    except ValueError:
        raise InvalidRequest("Invalid 'limit': expected an integer.", param="limit") from None
    if not 1 <= limit <= MAX_LIST:
        raise InvalidRequest(f"Invalid 'limit': must be between 1 and {MAX_LIST}.", param="limit")
    # The index is the truth (its hit counters are saved in batches): list from it, bodies left out.
    namespace = params.get("namespace") or None
    chosen = [entry for entry in services_of(request).exact_cache if namespace in (None, entry.namespace)]
    chosen.sort(key=_by_hits if order == "hits" else _by_use, reverse=True)
    return JSON({"object": "list", "data": [_listed(entry) for entry in chosen[:limit]]})


def _by_hits(entry: CacheEntry) -> tuple[int, float]:
    return entry.hits, entry.last_hit_at


def _by_use(entry: CacheEntry) -> float:
    return entry.last_hit_at


def _listed(entry: CacheEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in LISTED}


async def evict(request: Request) -> Response:
    require_admin(await authenticate(request))
    services = services_of(request)
    entry = _entry(request, request.path_params["entry_id"])
    services.exact_cache.remove(entry.id)
    await services.save_cache()
    return JSON({"evicted": entry.id, "namespace": entry.namespace})


async def clear(request: Request) -> Response:
    """Every entry, or those of ?namespace=."""
    require_admin(await authenticate(request))
    services = services_of(request)
    gone = services.exact_cache.clear(request.query_params.get("namespace") or None)
    await services.save_cache()
    return JSON({"cleared": gone})


async def clear_fences(request: Request) -> Response:
    """Forget what bad hits taught the semantic cache (the marks stay, as a record)."""
    require_admin(await authenticate(request))
    services = services_of(request)
    gone = await services.writer.run(cache_store.clear_fences_job())
    services.cache_fences.clear()
    return JSON({"cleared_fences": gone})


async def bad_hit(request: Request) -> Response:
    """{"trace_id"} of a call the cache answered wrongly: its entry is evicted and the mark kept; a
    match by meaning is also fenced, so that the two questions do not match again."""
    principal = await authenticate(request)
    require_admin(principal)
    body = await read_json(request)
    trace_id = body.get("trace_id") if isinstance(body, dict) else None
    if not isinstance(trace_id, str) or not trace_id:
        raise InvalidRequest("Give the 'trace_id' of a call the cache answered.", param="trace_id")
    services = services_of(request)
    trace = await get_trace(services.reader, trace_id)
    hit = ((trace or {}).get("metadata") or {}).get("cache") if trace else None
    if trace is None or not trace.get("cache", "").startswith("hit") or not hit:
        raise NotFound(f"No cache hit with trace id {trace_id!r}.", param="trace_id")
    marked = await cache_store.bad_hit_of(services.reader, trace_id)
    if marked is not None:  # marked already: once is enough (a second fence would add nothing)
        return JSON({"bad_hit": marked, "evicted": hit["entry"], "question": hit.get("question"),
                     "fenced": False, "already_marked": True})  # fmt: skip
    entry = services.exact_cache.remove(hit["entry"]) or _gone_entry(hit, trace)
    fence = await _fence(services, trace, entry) if trace["cache"] == "hit-semantic" else None
    stored = (fence[0], fence[1].tobytes(), fence[2].tobytes()) if fence is not None else None
    job = cache_store.bad_hit_job(entry, trace_id, principal.user, time.time(), stored)
    mark = await services.writer.run(job)
    if fence is not None:
        services.cache_fences.add(*fence)
    await services.save_cache()
    return JSON(
        {
            "bad_hit": mark,
            "evicted": entry.id,
            "question": entry.question,
            "fenced": fence is not None,
            "already_marked": False,
        },  # fmt: skip
        status_code=201,
    )


async def _fence(
    services: Services, trace: dict[str, Any], entry: CacheEntry
) -> tuple[str, np.ndarray, np.ndarray] | None:
    """A wrong match by meaning also fences the pair (cache/fences.py), if the profile still has a
    semantic cache to embed the two questions with (and its embedder works)."""
    stage = next((s for s in services.runtimes.current.stages.stages if isinstance(s, CacheStage)), None)
    question = question_of(trace.get("request") or {})
    if stage is None or stage.semantic is None or not question or not entry.question:
        return None
    try:
        return await stage.semantic.fence(question, entry.question)
    except GatewayError as exc:
        log.warning("a bad hit was not fenced: the embedder failed: %s", exc.message)
        return None


def _entry(request: Request, entry_id: str) -> CacheEntry:
    entry = services_of(request).exact_cache.get(entry_id)
    if entry is None:
        raise NotFound(f"No cache entry {entry_id!r}.", param="entry_id")
    return entry


def _gone_entry(hit: dict[str, Any], trace: dict[str, Any]) -> CacheEntry:
    """A bad hit whose entry is gone already (expired, evicted) is still worth recording."""
    return CacheEntry(
        id=hit["entry"], kind="exact", namespace=str(hit.get("namespace") or ""),
        model=str(trace.get("requested_model") or ""),
        question=str(hit.get("question") or ""), body={}, prompt_tokens=0, completion_tokens=0,
        cost_usd=0.0, trace_id=hit.get("from_trace"), created_at=0.0, expires_at=0.0,
    )  # fmt: skip


routes = [
    Route("/admin/cache", stats, methods=["GET"]),
    Route("/admin/cache", clear, methods=["DELETE"]),
    Route("/admin/cache/entries", entries, methods=["GET"]),
    Route("/admin/cache/entries/{entry_id}", evict, methods=["DELETE"]),
    Route("/admin/cache/bad-hits", bad_hit, methods=["POST"]),
    Route("/admin/cache/fences", clear_fences, methods=["DELETE"]),
]
