"""Shadow copies: once a call has been answered, the same call goes to another model (a route's
`shadow:`) or another prompt version (an experiment's arm in `shadow`) in the background. Its
answer, cost and latency are recorded beside the served one (`shadow_calls`); it is never
returned, never charged to a budget, and never slows the client: it starts after the served call
ended, at background priority on a local model.
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


class Shadows:
    """Runs shadow copies and records them; the daemon's one set of them outlives calls and reloads."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.tasks: set[asyncio.Task[None]] = set()

    def copy(
        self, ctx: Context, entry: ModelEntry, body: dict[str, Any], route: str,
        experiment: str | None = None, arm: str | None = None,
    ) -> None:  # fmt: skip
        """Send `body` to `entry` once this call is over (its runtime pinned until the copy is done)."""
        ctx.runtime.pin()
        task = asyncio.get_running_loop().create_task(
            self._run(ctx.runtime, entry, whole(body), ctx.trace.id, route, experiment, arm)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _run(
        self, runtime: Runtime, entry: ModelEntry, body: dict[str, Any], trace_id: str, route: str,
        experiment: str | None, arm: str | None,
    ) -> None:  # fmt: skip
        started, ts = time.perf_counter(), time.time()
        status, error, text, usage = "ok", None, None, None
        try:
            call = Call({**entry.defaults, **body}, entry.name, entry.upstream_model, priority=BACKGROUND)
            completion = await entry.provider.complete(call)
            text, usage = completion.text, completion.usage
        except GatewayError as exc:
            status, error = "error", exc.message
        except asyncio.CancelledError:  # the daemon is stopping: the copy is not recorded
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
            cost_usd(usage, entry.price) if usage else 0.0, experiment, arm,
        )  # fmt: skip
        try:
            await self.writer.run(shadow_job(record))
        except Exception:
            log.exception("recording the shadow call of %s failed", trace_id)


class ShadowStage(Stage):
    """A route's shadow: the routing stage marked the call; this copies it once answered."""

    name = "shadow"

    def __init__(self, shadows: Shadows) -> None:
        self.shadows = shadows

    def after(self, ctx: Context, outcome: Outcome) -> None:
        shadow: Shadowing | None = ctx.state.get("shadow")
        if shadow is None or outcome.status != "ok":
            return
        self.shadows.copy(ctx, ctx.runtime.models[shadow.model], ctx.body, shadow.route)
        ctx.decide(self.name, shadow.model, "a copy goes to the shadow model once this call has ended")


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    if not any(route.shadow for route in profile.routes.values()):
        return None
    return ShadowStage(services.shadows)
