"""The routing stage: a requested route becomes its ordered candidate models; a model gains its
fallbacks.

A route (`routes:` in the profile) is a virtual model name with a strategy (routing/routers.py).
Its choice, then its fallbacks, then each candidate's own fallbacks, are the candidates the attempt
loop tries in order (a circuit that is open skips its model). The decision and its reason go on
the trace (`routing: gpt-4o-mini  complexity 0.42 -> tier balanced -> gpt-4o-mini`) with the route
and tier. A cascade route's escalation is the cascade stage's (pipeline/cascade.py); a route's
shadow is the shadow stage's (pipeline/shadow.py): this stage only marks the call for them.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from daemon import settings
from daemon.config.routes import CascadeRoute, ComplexityRoute
from daemon.config.schema import Profile
from daemon.core import complexity
from daemon.core.complexity import ComplexityModel
from daemon.errors import InvalidRequest
from daemon.pipeline.budgets import remaining_share
from daemon.pipeline.context import Context
from daemon.pipeline.stage import Answer, Stage
from daemon.routing.routers import Router, build_router

if TYPE_CHECKING:
    from daemon.runtime import ModelEntry
    from daemon.services import Services

log = logging.getLogger(__name__)
FITTED = "routing/complexity.json"  # in the data dir: what `llmops route fit` wrote


@dataclass(frozen=True, slots=True)
class Cascading:
    """A cascade route's call: the cascade stage answers from the cheap models while confident."""

    min_confidence: float
    judged: frozenset[str]  # every model of the cascade but the last


@dataclass(frozen=True, slots=True)
class Shadowing:
    """The model to copy this call to once it has ended (the shadow stage)."""

    route: str
    model: str


class RoutingStage(Stage):
    name = "routing"

    def __init__(
        self, profile: Profile, models: Mapping[str, ModelEntry], routers: dict[str, Router],
        draw: Callable[[], float] = random.random,
    ) -> None:  # fmt: skip
        self.default = profile.default_model
        self.models = models
        self.routes = profile.routes
        self.routers = routers
        self.fallbacks = {name: list(m.fallbacks) for name, m in profile.models.items() if m.fallbacks}
        self.draw = draw

    async def before(self, ctx: Context) -> Answer | None:
        requested: str = ctx.body.get("model") or self.default or ""
        route = self.routes.get(requested)
        if route is None:
            if ctx.candidates and self.fallbacks:
                ctx.candidates = self._with_fallbacks([c.name for c in ctx.candidates])
            return None
        if ctx.endpoint != "chat":
            raise InvalidRequest(f"{requested!r} is a route: routes serve chat completions.", param="model")
        choice = self.routers[requested].choose(ctx)
        ctx.candidates = self._with_fallbacks([*choice.models, *route.fallbacks])
        trace = ctx.trace
        trace.route, trace.route_tier = requested, choice.tier
        ctx.decide(self.name, ctx.candidates[0].name, choice.reason)
        if isinstance(route, CascadeRoute):
            ctx.state["cascade"] = Cascading(route.min_confidence, frozenset(route.models[:-1]))
            ctx.cumulative = True
        if route.shadow is not None and self.draw() < route.shadow.share:
            ctx.state["shadow"] = Shadowing(requested, route.shadow.model)
        return None

    def _with_fallbacks(self, names: list[str]) -> list[ModelEntry]:
        """`names` in order, each followed by its own fallbacks, each model once."""
        ordered: dict[str, None] = {}
        for name in names:
            ordered.setdefault(name)
            for fallback in self.fallbacks.get(name, ()):
                ordered.setdefault(fallback)
        return [self.models[name] for name in ordered]


class ScorerFile:
    """A complexity route's scorer: its own file (relative to the profile), else the one `llmops
    route fit` wrote to the data dir, else the one shipped. The file is looked at again every few
    seconds, so a fit takes effect in a running daemon; one that cannot be read keeps the last."""

    CHECK_SECONDS = 2.0

    def __init__(self, config: ComplexityRoute, profile_path: Path | None) -> None:
        fitted = settings.data_dir() / FITTED
        self.path = settings.beside(profile_path, config.scorer) if config.scorer is not None else fitted
        self.model = complexity.default_model()
        self.mtime: float | None = None
        self.checked = -math.inf
        self.__call__()

    def __call__(self) -> ComplexityModel:
        now = time.monotonic()
        if now - self.checked >= self.CHECK_SECONDS:
            self.checked = now
            self._reread()
        return self.model

    def _reread(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime == self.mtime:
            return
        self.mtime = mtime
        try:
            self.model = complexity.load(self.path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("the complexity scorer %s cannot be read (%s): keeping the last one", self.path, exc)


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    has_fallbacks = any(model.fallbacks for model in profile.models.values())
    if not profile.routes and not has_fallbacks:
        return None
    remaining = None
    if profile.budgets is not None:
        remaining = partial(remaining_share, services.budget_limits, profile.budgets)
    profile_path = services.settings.profile_path
    scorer = partial(ScorerFile, profile_path=profile_path)
    routers = {
        name: build_router(name, config, models, scorer, remaining) for name, config in profile.routes.items()
    }
    return RoutingStage(profile, models, routers)
