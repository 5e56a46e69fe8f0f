"""create_app(): the daemon's routes and the lifespan that wires storage, profile and providers.

Nothing runs at import; everything starts in the lifespan and stops in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from daemon import __version__
from daemon.api import admin, events, openai, spend
from daemon.api.common import JSON
from daemon.api.hot import FastPath
from daemon.auth import Authenticator
from daemon.config.loader import ProfileError, load_profile
from daemon.config.schema import Profile
from daemon.config.watcher import watch_profile
from daemon.errors import GatewayError, MethodNotAllowed, NotFound, internal_error
from daemon.events import EventBus
from daemon.gateway import Gateway
from daemon.runtime import Runtime, build_runtime, retire, start_eager
from daemon.settings import Settings
from daemon.storage import db
from daemon.storage.migrate import migrate
from daemon.storage.search_index import index_backlog
from daemon.storage.writer import Writer

log = logging.getLogger("llmops")


class Daemon:
    """Everything a request handler may reach, in one place (app.state.daemon)."""

    def __init__(
        self, settings: Settings, runtime: Runtime, writer: Writer, reader: Any, auth_reader: Any
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.writer = writer
        self.reader = reader  # admin queries
        # Key lookups get their own connection: a slow admin query must not hold up a chat call.
        self.auth_reader = auth_reader
        self.bus = EventBus()
        self.authenticator = Authenticator(auth_reader, loopback=settings.loopback)
        self.gateway = Gateway(writer, self.bus, lambda: self.runtime)
        self.started_at = time.time()
        self.loop = asyncio.get_running_loop()
        self.profile_error: str | None = None
        self.reloads = 0
        self._retiring: set[asyncio.Task[None]] = set()

    async def reload_profile(self) -> None:
        path = self.settings.profile_path
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            self.profile_error = str(exc)
            log.error("profile reload rejected, the previous profile keeps serving: %s", exc)
            self.bus.publish("profile", {"ok": False, "error": self.profile_error})
            return
        old, new = self.runtime, build_runtime(profile, path, self.runtime)
        self.runtime = new
        self.profile_error = None
        self.reloads += 1
        task = asyncio.create_task(retire(old, new))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        await start_eager(new)
        log.info("profile %s reloaded from %s (%d models)", profile.name, path, len(profile.models))
        self.bus.publish("profile", {"ok": True, "name": profile.name})

    def status(self) -> dict[str, Any]:
        runtime = self.runtime
        models = []
        for name, entry in runtime.models.items():
            provider = entry.provider
            models.append({
                "name": name,
                "provider": entry.config.provider,
                "embedding": bool(getattr(entry.config, "embedding", False)),
                "loaded": getattr(provider, "loaded", None),
                "load_seconds": getattr(provider, "load_seconds", None),
                "load_error": getattr(provider, "load_error", None),
                "generated_tokens": getattr(provider, "generated_tokens", None),
                "cancelled_generations": getattr(provider, "cancelled_generations", None),
                "price": entry.price and {"input": entry.price.input, "output": entry.price.output},
            })  # fmt: skip
        return {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 1),
            "auth": "keys" if self.authenticator._key_count[1] else "local",
            "profile": {
                "name": runtime.profile.name,
                "path": str(self.settings.profile_path),
                "loaded_at": runtime.loaded_at,
                "reloads": self.reloads,
                "error": self.profile_error,
            },
            "models": models,
            "database": str(self.settings.db_path),
            "writer_commits": self.writer.commits,
            "event_subscribers": self.bus.subscribers,
        }

    async def drain(self) -> None:
        await self.runtime.drained.wait()
        await retire(self.runtime, None)
        for task in list(self._retiring):
            task.cancel()


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
    headers = {"x-llmops-trace-id": error.trace_id} if error.trace_id else None
    return JSON(error.to_body(), status_code=error.status, headers=headers)


async def _not_found(request: Request, _exc: Exception) -> Response:
    error = NotFound(f"Unknown route {request.method} {request.url.path}.")
    return JSON(error.to_body(), status_code=404)


async def _method_not_allowed(request: Request, _exc: Exception) -> Response:
    error = MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}.")
    return JSON(error.to_body(), status_code=error.status)


def create_app(settings: Settings, profile: Profile) -> FastPath:
    """The app for a profile the caller loaded and a database it prepared (`prepare_database`):
    the command checks both before serving, so a bad one exits with a message, not a traceback."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        writer = Writer(settings.db_path, upkeep=index_backlog)
        await asyncio.to_thread(writer.start)
        reader, auth_reader = await db.connect(settings.db_path), await db.connect(settings.db_path)
        runtime = build_runtime(profile, settings.profile_path, None)
        daemon = Daemon(settings, runtime, writer, reader, auth_reader)
        app.state.daemon = daemon
        await daemon.authenticator.keys_exist()
        eager = asyncio.create_task(start_eager(daemon.runtime))
        stop = asyncio.Event()
        watcher = (
            asyncio.create_task(watch_profile(settings.profile_path, daemon.reload_profile, stop))
            if settings.watch_profile
            else None
        )
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
            if watcher is not None:
                await watcher
            await daemon.drain()
            await asyncio.to_thread(writer.stop)  # every queued trace is written before we exit
            await reader.close()
            await auth_reader.close()
            log.info("llmops stopped cleanly: in-flight requests finished, traces written")

    state = State()
    hot = openai.hot_routes(state)
    app = Starlette(
        routes=[*openai.routes(hot), *admin.routes, *events.routes, *spend.routes],
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
