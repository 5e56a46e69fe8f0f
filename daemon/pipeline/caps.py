"""The token-cap stage: a chat call may ask a model to write at most its caps' tightest
`max_tokens` (per requested model, key, user and team), and one that asks nothing gets the default.

It runs first, so that everything after it (rate limits, the cache key, a budget's worst case)
sees the call as it will be sent. The trace says when a cap changed the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from daemon.config.limits import CapsConfig
from daemon.config.schema import Profile
from daemon.core.caps import Cap, apply_cap, tightest
from daemon.pipeline.context import Context
from daemon.pipeline.stage import Answer, Stage
from daemon.runtime import ModelEntry

if TYPE_CHECKING:
    from daemon.services import Services


class CapStage(Stage):
    name = "caps"

    def __init__(self, config: CapsConfig) -> None:
        self.config = config

    async def before(self, ctx: Context) -> Answer | None:
        if ctx.endpoint != "chat":
            return None
        body, note = apply_cap(ctx.body, tightest(self._caps(ctx)), self.config.default_max_tokens)
        if note is not None:
            ctx.body = body
            ctx.trace.metadata["max_tokens"] = note
            ctx.decide(self.name, "clipped" if note.startswith("clipped") else "set", note)
        return None

    def _caps(self, ctx: Context) -> list[Cap]:
        c, trace = self.config, ctx.trace
        named = (
            ("model", c.models, ctx.body.get("model")),
            ("key", c.keys, ctx.principal.key_name),
            ("user", c.users, trace.user),
            ("team", c.teams, trace.team),
        )
        return [Cap(table[name], f"{kind} {name}") for kind, table, name in named if name and name in table]


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    return CapStage(profile.caps) if profile.caps is not None else None
