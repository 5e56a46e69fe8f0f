"""The shadow stage: once a route's call has been answered, a copy goes to the route's shadow
model in the background. Its answer, cost and latency are recorded beside the served one
(`shadow_calls`); it is never returned, never charged to a budget, and never slows the client: it
starts after the served call ended, at background priority on a local model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from daemon.config.schema import Profile
from daemon.core.cost import cost_usd
from daemon.core.trace import truncate
from daemon.errors import GatewayError
from daemon.pipeline.attempts import whole
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.routing import Shadowing
from daemon.pipeline.stage import Stage
from daemon.providers.base import BACKGROUND, Call
from daemon.storage.routing import ShadowCall, shadow_job
from daemon.storage.writer import Writer

if TYPE_CHECKING:
    from daemon.runtime import ModelEntry, Runtime
    from daemon.services import Services

log = logging.getLogger(__name__)


class ShadowStage(Stage):
    name = "shadow"

    def __init__(self, writer: Writer, tasks: set[asyncio.Task[None]]) -> None:
        self.writer = writer
        self.tasks = tasks  # the daemon's: a shadow outlives the call and a reload

    def after(self, ctx: Context, outcome: Outcome) -> None:
        shadow: Shadowing | None = ctx.state.get("shadow")
        if shadow is None or outcome.status != "ok":
            return
        entry = ctx.runtime.models[shadow.model]
        body = whole(ctx.body)
        ctx.runtime.pin()  # its provider stays open until the shadow is done, whatever reloads
        task = asyncio.get_running_loop().create_task(
            self._shadow(ctx.runtime, entry, body, ctx.trace.id, shadow.route)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        ctx.decide(self.name, shadow.model, "a copy goes to the shadow model once this call has ended")

    async def _shadow(
        self, runtime: Runtime, entry: ModelEntry, body: dict[str, Any], trace_id: str, route: str
    ) -> None:
        started, ts = time.perf_counter(), time.time()
        status, error, text, usage = "ok", None, None, None
        try:
            call = Call({**entry.defaults, **body}, entry.name, entry.upstream_model, priority=BACKGROUND)
            completion = await entry.provider.complete(call)
            text, usage = completion.text, completion.usage
        except GatewayError as exc:
            status, error = "error", exc.message
        except asyncio.CancelledError:  # the daemon is stopping: the shadow is not recorded
            runtime.unpin()
            raise
        except Exception as exc:
            log.exception("shadow call to %s failed", entry.name)
            status, error = "error", f"{type(exc).__name__}: {exc}"
        runtime.unpin()
        latency = (time.perf_counter() - started) * 1000
        limit = runtime.profile.traces.max_text_chars
        record = ShadowCall(
            trace_id, ts, route, entry.name, status, error, truncate(text, limit) if text else None, latency,
            usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
            cost_usd(usage, entry.price) if usage else 0.0,
        )  # fmt: skip
        try:
            await self.writer.run(shadow_job(record))
        except Exception:
            log.exception("recording the shadow call of %s failed", trace_id)


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    if not any(route.shadow for route in profile.routes.values()):
        return None
    return ShadowStage(services.writer, services.shadow_tasks)
