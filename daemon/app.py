"""create_app(): the daemon's routes and the lifespan that wires storage, profile and providers.

Nothing runs at import; everything starts in the lifespan and stops in reverse order.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from daemon import __version__, tokens
from daemon.api import admin, budgets, cache, events, experiments, openai, prompts, routing, spend
from daemon.api.common import JSON
from daemon.api.hot import FastPath
from daemon.config.schema import Profile
from daemon.config.watcher import watch_folder, watch_profile
from daemon.errors import GatewayError, MethodNotAllowed, NotFound, internal_error
from daemon.pipeline.order import STAGES
from daemon.pipeline.stage import StageFactory
from daemon.runtime import start_eager
from daemon.services import Services
from daemon.settings import Settings
from daemon.storage import cache as cache_store
from daemon.storage import db
from daemon.storage.migrate import migrate
from daemon.storage.search_index import index_backlog
from daemon.storage.writer import Writer

log = logging.getLogger("llmops")


def _load_cache(path: Path) -> cache_store.SavedCache:
    conn = db.connect_sync(path)
    try:
        return cache_store.load_saved(conn, time.time())
    finally:
        conn.close()


def prepare_database(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = db.connect_sync(path)
    try:
        migrate(conn)
    finally:
        conn.close()


async def _gateway_error(_request: Request, exc: Exception) -> Response:
    error = exc if isinstance(exc, GatewayError) else internal_error()
    if not isinstance(exc, GatewayError):
        log.exception("unhandled error", exc_info=exc)
    headers = {"x-llmops-trace-id": error.trace_id} if error.trace_id else {}
    return JSON(error.to_body(), status_code=error.status, headers={**headers, **error.headers})


async def _not_found(request: Request, _exc: Exception) -> Response:
    error = NotFound(f"Unknown route {request.method} {request.url.path}.")
    return JSON(error.to_body(), status_code=404)


async def _method_not_allowed(request: Request, _exc: Exception) -> Response:
    error = MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}.")
    return JSON(error.to_body(), status_code=error.status)


def create_app(settings: Settings, profile: Profile, stages: Sequence[StageFactory] = STAGES) -> FastPath:
    """The app for a profile the caller loaded and a database it prepared (`prepare_database`):
    the command checks both before serving, so a bad one exits with a message, not a traceback.
    `stages`: the request path's stages (tests pass their own)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        writer = Writer(settings.db_path, upkeep=index_backlog)
        await asyncio.to_thread(writer.start)
        readers = [await db.connect(settings.db_path) for _ in range(2)]
        reader, auth_reader = readers
        cache_reader = db.connect_sync(settings.db_path)  # point lookups, on the event loop
        saved = await asyncio.to_thread(_load_cache, settings.db_path)
        services = Services(settings, profile, writer, reader, auth_reader, stages, cache_reader, saved)
        await services.forget_old_embedders()
        await services.prompts.load()
        await services.experiments.load()
        await services.sync_prompts()
        await services.budget_limits.check_in()  # and release what a crashed daemon had reserved
        # Budgets and rate limits count tokens: load tiktoken's table (~0.3 s) while serving starts.
        warm = (
            asyncio.create_task(asyncio.to_thread(tokens.count_text, "warm"))
            if profile.budgets or profile.rate_limits
            else None
        )
        if services.experiments.running:  # scipy's first import takes a second: not in a request
            warm_stats = asyncio.create_task(asyncio.to_thread(importlib.import_module, "scipy.stats"))
        else:
            warm_stats = None
        app.state.services = services
        await services.authenticator.keys_exist()
        eager = asyncio.create_task(start_eager(services.runtimes.current))
        stop = asyncio.Event()
        watcher = (
            asyncio.create_task(watch_profile(settings.profile_path, services.reload_profile, stop))
            if settings.watch_profile
            else None
        )
        folder = services.prompt_folder()
        prompt_watcher = (
            asyncio.create_task(watch_folder(folder, services.sync_prompts, stop))
            if settings.watch_profile and folder is not None
            else None
        )
        cache_saver = asyncio.create_task(services.keep_saving_cache(stop))
        checker = asyncio.create_task(services.budget_limits.keep_checking_in(stop))
        in_step = asyncio.create_task(services.keep_in_step(stop))
        log.info(
            "llmops %s serving profile %s on http://%s:%d",
            __version__,
            profile.name,
            settings.host,
            settings.port,
        )
        try:
            yield
        finally:
            stop.set()
            eager.cancel()
            if warm is not None:
                await warm
            if warm_stats is not None:
                await warm_stats
            if watcher is not None:
                await watcher
            if prompt_watcher is not None:
                await prompt_watcher
            await cache_saver
            await checker
            await in_step
            await services.drain()
            await asyncio.to_thread(writer.stop)  # every queued trace is written before we exit
            for connection in readers:
                await connection.close()
            cache_reader.close()
            log.info("llmops stopped cleanly: in-flight requests finished, traces written")

    state = State()
    hot = openai.hot_routes(state)
    app = Starlette(
        routes=[
            *openai.routes(hot),
            *admin.routes,
            *events.routes,
            *spend.routes,
            *cache.routes,
            *budgets.routes,
            *routing.routes,
            *prompts.routes,
            *experiments.routes,
        ],
        lifespan=lifespan,
        exception_handlers={
            GatewayError: _gateway_error,
            Exception: _gateway_error,
            404: _not_found,
            405: _method_not_allowed,
        },  # fmt: skip
    )
    app.state = state
    app.router.redirect_slashes = False  # a redirect would turn a client's POST into a confusing GET
    return FastPath(app, hot)
