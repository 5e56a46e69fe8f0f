"""What outlives a profile reload, in one typed object the app owns and every handler receives:
storage, the event bus, auth, the runtimes and the gateway. Stages that keep state across reloads
(a budget ledger, breaker states, cache indices) keep it here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from daemon import __version__
from daemon.auth import Authenticator
from daemon.budgets.limits import BudgetLimits
from daemon.cache.exact import ExactIndex
from daemon.cache.fences import Fences
from daemon.cache.semantic import embedder_identity as semantic_identity
from daemon.cache.verify import Verifier
from daemon.config.loader import ProfileError, load_profile
from daemon.config.schema import Profile
from daemon.events import EventBus
from daemon.experiments.book import ExperimentBook
from daemon.experiments.calls import CallCache
from daemon.gateway import Gateway
from daemon.pipeline.ending import Ending
from daemon.pipeline.rate_limits import Buckets
from daemon.pipeline.shadow import Shadows
from daemon.pipeline.stage import StageFactory
from daemon.prompts.book import PromptBook, folder_of
from daemon.runtime import ModelEntry, Runtime, Runtimes, build_runtime, start_eager
from daemon.settings import Settings
from daemon.storage.cache import SavedCache, drop_vector_tables_except, save_job
from daemon.storage.writer import Writer

log = logging.getLogger("llmops")
CACHE_SAVE_SECONDS = 1.0  # how often the cache index's changes are written
STEP_SECONDS = 2.0  # how often another daemon's prompt and experiment changes are looked for


class Services:
    def __init__(
        self, settings: Settings, profile: Profile, writer: Writer, reader: aiosqlite.Connection,
        auth_reader: aiosqlite.Connection, stages: Sequence[StageFactory],
        cache_reader: Any, saved: SavedCache | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.writer = writer
        self.reader = reader  # admin queries
        # Key lookups get their own connection: a slow admin query must not hold up a chat call.
        self.auth_reader = auth_reader
        self.bus = EventBus()
        self.authenticator = Authenticator(auth_reader, loopback=settings.loopback)
        saved = saved or SavedCache()
        self.exact_cache = ExactIndex(saved.entries, saved.codes)  # entries and semantic search codes
        # The semantic cache's searches get a blocking connection of their own: a few point
        # lookups by rowid, quicker on the event loop than a hop to a reader thread and back.
        self.cache_reader = cache_reader
        self.cache_fences = Fences()  # what the semantic cache learnt from bad hits
        self.cache_fences.load(saved.fences)
        self._verifier: Verifier | None = None
        self.budget_limits = BudgetLimits(reader, writer)  # the limits set through the API; our owner id
        self.rate_buckets: Buckets = {}  # the rate limits' state, kept across reloads
        self.shadows = Shadows(writer)  # shadow copies still running (routes', experiments')
        self.prompts = PromptBook(reader, writer)  # the prompt registry (loaded in the lifespan)
        self.experiments = ExperimentBook(reader, writer)  # loaded in the lifespan too
        self.experiment_calls = CallCache(settings.db_path)  # their calls as numbers, read as they come
        self.stages = tuple(stages)
        self.runtimes = Runtimes(
            self._watched(build_runtime(profile, settings.profile_path, None, self.stages, self))
        )
        self.gateway = Gateway(self.runtimes, Ending(writer, self.bus))
        self.started_at = time.time()
        self.loop = asyncio.get_running_loop()
        self.profile_error: str | None = None
        self.reloads = 0

    def cache_verifier(self) -> Verifier:
        """The semantic cache's verifier (cache/verifier.json), read once, when first needed."""
        if self._verifier is None:
            self._verifier = Verifier.load()
        return self._verifier

    @property
    def profile(self) -> Profile:
        return self.runtimes.current.profile

    async def reload_profile(self) -> None:
        path = self.settings.profile_path
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            self.profile_error = str(exc)
            log.error("profile reload rejected, the previous profile keeps serving: %s", exc)
            self.bus.publish("profile", {"ok": False, "error": self.profile_error})
            return
        new = self._watched(build_runtime(profile, path, self.runtimes.current, self.stages, self))
        self.runtimes.replace(new)
        self.profile_error = None
        self.reloads += 1
        await self.forget_old_embedders()
        await self.sync_prompts()
        await start_eager(new)
        log.info("profile %s reloaded from %s (%d models)", profile.name, path, len(profile.models))
        self.bus.publish("profile", {"ok": True, "name": profile.name})

    def _watched(self, runtime: Runtime) -> Runtime:
        """Local models tell the console when they start and finish converting or loading."""
        for entry in runtime.models.values():
            if hasattr(entry.provider, "on_activity"):
                entry.provider.on_activity = self._model_changed
        return runtime

    def _model_changed(self, provider: Any) -> None:
        """On a model's worker thread: publish its state on the event loop."""
        entry = self.runtimes.current.models.get(provider.name)
        if entry is not None and entry.provider is provider:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
                self.loop.call_soon_threadsafe(self.bus.publish, "model", model_state(entry))

    def status(self) -> dict[str, Any]:
        runtime = self.runtimes.current
        return {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 1),
            "auth": "keys" if self.authenticator.key_mode else "local",
            "profile": {
                "name": runtime.profile.name,
                "default_model": runtime.profile.default_model,
                "path": str(self.settings.profile_path),
                "loaded_at": runtime.loaded_at,
                "reloads": self.reloads,
                "error": self.profile_error,
            },
            "stages": [stage.name for stage in runtime.stages.stages],
            "in_flight": runtime.in_flight,
            "models": [model_state(entry) for entry in runtime.models.values()],
            "routes": route_states(runtime.profile),
            "breakers": breaker_states(runtime, time.time()),
            "prompts": {
                "folder": str(self.prompt_folder()),
                "count": len(self.prompts.registry.versions),
                "errors": self.prompts.errors,
            },
            "database": str(self.settings.db_path),
            "writer_commits": self.writer.commits,
            "writer_alive": self.writer.alive,
            "writer_pending": self.writer.pending,
            "event_subscribers": self.bus.subscribers,
        }

    def prompt_folder(self) -> Path | None:
        return folder_of(self.settings.profile_path, self.profile.prompts)

    async def sync_prompts(self) -> None:
        """The prompt folder's files into the registry (new versions for edited files)."""
        folder = self.prompt_folder()
        if folder is not None:
            await self.prompts.sync_folder(folder)

    async def save_cache(self) -> None:
        """Write the cache index's changes since the last save (it is written behind)."""
        changed, removed = self.exact_cache.take_changes()
        if changed or removed:
            try:
                await self.writer.run(save_job(changed, removed))
            except BaseException:
                self.exact_cache.not_saved(changed, removed)
                raise
            for entry in changed:
                entry.vector = None  # saved in its vector table: memory need not keep it

    async def forget_old_embedders(self) -> None:
        """The semantic cache's vectors of an embedder no longer configured can never match again:
        drop them, and their fences (their entries stay, as exact entries)."""
        await self.save_cache()
        semantic = self.profile.cache.semantic if self.profile.cache else None
        embedder = semantic_identity(self.runtimes.current.models[semantic.embedder]) if semantic else None
        dropped = await self.writer.run(drop_vector_tables_except(embedder))
        self.cache_fences.forget(dropped)
        self.exact_cache.forget_vectors(dropped)
        if dropped:
            log.info("dropped the semantic cache's vectors of a former embedder: %s", ", ".join(dropped))

    async def keep_in_step(self, stop: asyncio.Event) -> None:
        """Prompts and experiments changed by another daemon on this database reach this one
        within STEP_SECONDS (changes made here apply at once)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STEP_SECONDS)
            try:
                await self.prompts.catch_up()
                await self.experiments.catch_up()
            except Exception:
                log.exception("reading prompts and experiments failed; trying again")

    async def keep_saving_cache(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CACHE_SAVE_SECONDS)
            try:
                await self.save_cache()
            except Exception:
                log.exception("saving the cache failed; its changes are kept for the next try")

    async def drain(self) -> None:
        """At shutdown, once connections have closed: stop the shadow calls (a copy no one waits
        for), close every provider, save the cache."""
        await self.shadows.stop()
        self.experiment_calls.close()
        await self.runtimes.close()
        await self.save_cache()
        await self.budget_limits.check_out()


def route_states(profile: Profile) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "strategy": route.strategy,
            "models": route.own_models(),
            "description": route.description,
        }
        for name, route in profile.routes.items()
    ]


def breaker_states(runtime: Runtime, now: float) -> list[dict[str, Any]]:
    """Each model's circuit and its latency figures; `enabled` false: no `circuit_breaker:` in the
    profile (failures are counted, circuits never open)."""
    health = runtime.health
    states = []
    for name, entry in runtime.models.items():
        if entry.config.embedding and name not in health.models:
            continue
        model = health.of(name)
        figures = model.latencies.figures()
        states.append({
            "model": name, "provider": entry.config.provider, "enabled": health.breaking,
            **model.breaker.as_dict(now),
            "p50_ms": figures["p50"], "p95_ms": figures["p95"], "ttft_ms": figures["ttft"],
            "samples": int(figures["samples"] or 0),
        })  # fmt: skip
    return states


def model_state(entry: ModelEntry) -> dict[str, Any]:
    """A model as /admin/status and the `model` event show it."""
    provider = entry.provider
    return {
        "name": entry.name,
        "provider": entry.config.provider,
        "embedding": bool(getattr(entry.config, "embedding", False)),
        "loaded": getattr(provider, "loaded", None),
        "activity": getattr(provider, "activity", None),
        "load_seconds": getattr(provider, "load_seconds", None),
        "load_error": getattr(provider, "load_error", None),
        "generated_tokens": getattr(provider, "generated_tokens", None),
        "cancelled_generations": getattr(provider, "cancelled_generations", None),
        "price": entry.price and {"input": entry.price.input, "output": entry.price.output},
    }
