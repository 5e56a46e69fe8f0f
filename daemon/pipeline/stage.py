"""The stage protocol: a step of the request path with up to three hooks.

A stage overrides only the hooks it needs; the pipeline calls only the hooks a stage overrides
(`StageList`), so a stage costs nothing where it has nothing to do, and a profile without stages
runs the bare path.

- `before(ctx)`: before any provider is called. Change the call (ctx.body, ctx.candidates,
  ctx.reply_headers), refuse it (raise a GatewayError: a budget's 429, a guardrail's 400), or
  answer it (return a Completion or Embeddings: a cache hit; a streaming call replays it as SSE).
- `on_chunk(ctx, chunk)`: while a stream flows, see each chunk; return it, another, or None to
  drop it.
- `after(ctx, outcome)`: once, however the call ended (answered, failed, client gone), before its
  trace is written. Writes go in `ctx.jobs`: they commit in the trace's own transaction. It runs on
  the event loop and must not block: it is for bookkeeping, not for I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from daemon.pipeline.context import Context, Outcome
from daemon.providers.base import Chunk, Completion, Embeddings

if TYPE_CHECKING:
    from daemon.config.schema import Profile
    from daemon.runtime import ModelEntry
    from daemon.services import Services

Answer = Completion | Embeddings


class Stage:
    name: ClassVar[str] = "stage"

    async def before(self, ctx: Context) -> Answer | None:
        return None

    def on_chunk(self, ctx: Context, chunk: Chunk) -> Chunk | None:
        return chunk

    def after(self, ctx: Context, outcome: Outcome) -> None:
        return None


# Builds a profile's stage, or None when the profile does not use it. Called on every (re)load,
# with the services that outlive reloads (the writer, a ledger, indices...) and the new runtime's
# models (a stage may call one: the cache's embedder).
StageFactory = Callable[["Profile", "Services", Mapping[str, "ModelEntry"]], Stage | None]


def _overrides(stage: Stage, hook: str) -> bool:
    return getattr(type(stage), hook) is not getattr(Stage, hook)


@dataclass(frozen=True, slots=True)
class StageList:
    """A runtime's stages in order, and for each hook the stages that implement it."""

    stages: tuple[Stage, ...] = ()
    before: tuple[Stage, ...] = ()
    on_chunk: tuple[Stage, ...] = ()
    after: tuple[Stage, ...] = ()

    @classmethod
    def of(cls, stages: Sequence[Stage]) -> StageList:
        return cls(
            tuple(stages),
            tuple(s for s in stages if _overrides(s, "before")),
            tuple(s for s in stages if _overrides(s, "on_chunk")),
            tuple(s for s in stages if _overrides(s, "after")),
        )


def build_stages(
    factories: Sequence[StageFactory], profile: Profile, services: Services | None,
    models: Mapping[str, ModelEntry],
) -> StageList:  # fmt: skip
    built = (factory(profile, services, models) for factory in factories) if services is not None else ()
    return StageList.of([stage for stage in built if stage is not None])
