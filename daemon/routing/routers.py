"""One router per strategy: from a call to its ordered candidate models and the reason.

Each is built once per profile (load or reload) from its route's config, and `choose` runs for
every call to the route: it reads the call and the models' live health, never waits, and costs
microseconds (the complexity scorer's features are the largest part).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daemon import tokens
from daemon.config.routes import (
    CascadeRoute,
    ComplexityRoute,
    CostRoute,
    DomainRoute,
    LatencyRoute,
    RouteConfig,
    WeightedRoute,
)
from daemon.config.schema import LlamaCppModel
from daemon.core import routing
from daemon.core.caps import asked_max_tokens
from daemon.core.complexity import ComplexityModel
from daemon.errors import InvalidRequest

if TYPE_CHECKING:
    from daemon.pipeline.context import Context
    from daemon.runtime import ModelEntry

DEFAULT_ANSWER_TOKENS = 512  # a cost route's guess of the answer's length when nothing caps it


@dataclass(frozen=True, slots=True)
class Choice:
    models: list[str]  # in the order to try
    reason: str
    tier: str | None = None


class Router:
    def choose(self, ctx: Context) -> Choice:
        raise NotImplementedError


# What is left of the caller's tightest budget (0..1), or None without one.
RemainingShare = Callable[["Context"], float | None]


class ComplexityRouter(Router):
    def __init__(
        self, config: ComplexityRoute, scorer: Callable[[], ComplexityModel], remaining: RemainingShare | None
    ):
        self.tiers = config.tiers
        self.bounds = [tier.below for tier in config.tiers]
        self.scorer = scorer
        names = config.tier_names()
        self.budget_rules = [(rule.remaining_below, names.index(rule.tier)) for rule in config.budget_tiers]
        self.remaining = remaining if self.budget_rules else None

    def choose(self, ctx: Context) -> Choice:
        score = self.scorer().score(routing.prompt_text(ctx.body.get("messages") or ()))
        index = routing.tier_index(score, self.bounds)
        reason = f"complexity {score:.2f} -> tier {self.tiers[index].name}"
        if self.remaining is not None:
            left = self.remaining(ctx)
            cap = routing.budget_cap(left, self.budget_rules)
            if cap is not None and cap < index:
                index = cap
                reason += f" -> budget {left:.0%} left: tier {self.tiers[index].name}"
        tier = self.tiers[index]
        return Choice(list(tier.models), f"{reason} -> {tier.models[0]}", tier.name)


def _supports(entry: ModelEntry) -> frozenset[str]:
    if entry.config.supports is not None:
        return frozenset(entry.config.supports)
    return (
        frozenset({"json"})
        if isinstance(entry.config, LlamaCppModel)
        else frozenset({"tools", "json", "vision"})
    )


def _context_window(entry: ModelEntry) -> int | None:
    if entry.config.context_window is not None:
        return entry.config.context_window
    return entry.config.n_ctx if isinstance(entry.config, LlamaCppModel) else None


class CostRouter(Router):
    def __init__(self, config: CostRoute, models: Mapping[str, ModelEntry]):
        self.pool = [models[name] for name in config.models]
        self.abilities = [(_supports(e), _context_window(e)) for e in self.pool]
        self.windowed = any(window is not None for _, window in self.abilities)

    def choose(self, ctx: Context) -> Choice:
        body = ctx.body
        answer = asked_max_tokens(body)[1] or DEFAULT_ANSWER_TOKENS
        # Counting the prompt costs tiktoken's pass: only when a model's context could be too small.
        prompt = tokens.count_messages(body.get("messages") or []) if self.windowed else 0
        needs = routing.needs_of(body, prompt, answer)
        able, unable = [], []
        for entry, (supports, window) in zip(self.pool, self.abilities, strict=True):
            missing = needs.missing(supports, window)
            if missing is None:
                price = entry.price
                cost = price.input * prompt + price.output * answer if price else 0.0
                able.append((cost, entry.name))
            else:
                unable.append(f"{entry.name}: {missing}")
        if not able:
            raise InvalidRequest(
                f"No model of this route can serve the request ({'; '.join(unable)}).", param="model"
            )
        able.sort(key=lambda pair: pair[0])  # stable: ties keep the profile's order
        reason = f"cost: {able[0][1]} is the cheapest able"
        if unable:
            reason += f" (not {', '.join(unable)})"
        return Choice([name for _, name in able], reason)


class LatencyRouter(Router):
    def __init__(self, config: LatencyRoute, draw: Callable[[], float] = random.random):
        self.models = list(config.models)
        self.metric = config.metric
        self.explore = config.explore
        self.draw = draw

    def choose(self, ctx: Context) -> Choice:
        health, now = ctx.runtime.health, time.time()
        figures = []
        for name in self.models:
            # A model whose circuit is open goes last, whatever its figures.
            skipped = health.skips(name, now)
            figures.append(float("inf") if skipped else health.of(name).latencies.figures()[self.metric])
        order = routing.latency_order(figures)
        if len(order) > 1 and self.explore and self.draw() < self.explore:
            order.insert(0, order.pop(1 + int(self.draw() * (len(order) - 1))))
            return Choice([self.models[i] for i in order], f"latency: exploring {self.models[order[0]]}")
        best = order[0]
        said = ", ".join(f"{self.models[i]} {_ms(figures[i])}" for i in order)
        return Choice(
            [self.models[i] for i in order], f"latency {self.metric}: {said} -> {self.models[best]}"
        )


def _ms(value: float | None) -> str:
    if value is None:
        return "unmeasured"
    return "circuit open" if value == float("inf") else f"{value:.0f} ms"


class DomainRouter(Router):
    def __init__(self, config: DomainRoute):
        self.domains = config.domains
        self.default = list(config.default)
        self.patterns: dict[str, re.Pattern[str]] = {
            domain: routing.cue_pattern(
                [*routing.DOMAIN_CUES.get(domain, ()), *config.keywords.get(domain, ())]
            )
            for domain in config.domains
        }

    def choose(self, ctx: Context) -> Choice:
        domain, hits = routing.domain_of(routing.prompt_text(ctx.body.get("messages") or ()), self.patterns)
        if domain is None:
            return Choice(self.default, f"domain: none recognised -> {self.default[0]}", "default")
        models = self.domains[domain]
        return Choice(list(models), f"domain {domain} ({hits} cues) -> {models[0]}", domain)


class CascadeRouter(Router):
    def __init__(self, config: CascadeRoute):
        self.models = list(config.models)
        self.min_confidence = config.min_confidence

    def choose(self, ctx: Context) -> Choice:
        return Choice(
            self.models, f"cascade: {self.models[0]} first, escalating below {self.min_confidence:.2f}"
        )


class WeightedRouter(Router):
    def __init__(self, name: str, config: WeightedRoute, draw: Callable[[], float] = random.random):
        self.name = name
        self.models = list(config.weights)
        self.weights = list(config.weights.values())
        self.sticky = config.sticky
        self.draw = draw

    def choose(self, ctx: Context) -> Choice:
        user = ctx.trace.user or ctx.trace.key_id
        sticky = self.sticky and user is not None
        point = routing.unit_hash(self.name, user or "") if sticky else self.draw()
        index = routing.weighted_pick(self.weights, point)
        rest = sorted((i for i in range(len(self.models)) if i != index), key=lambda i: -self.weights[i])
        share = self.weights[index] / sum(self.weights)
        how = f"sticky for {user}" if sticky else "drawn"
        chosen = self.models[index]
        return Choice([chosen, *(self.models[i] for i in rest)], f"weighted {share:.0%} ({how}) -> {chosen}")


def build_router(
    name: str, config: RouteConfig, models: Mapping[str, ModelEntry],
    scorer: Callable[[ComplexityRoute], Callable[[], ComplexityModel]], remaining: RemainingShare | None,
) -> Router:  # fmt: skip
    if isinstance(config, ComplexityRoute):
        return ComplexityRouter(config, scorer(config), remaining)
    if isinstance(config, CostRoute):
        return CostRouter(config, models)
    if isinstance(config, LatencyRoute):
        return LatencyRouter(config)
    if isinstance(config, DomainRoute):
        return DomainRouter(config)
    if isinstance(config, CascadeRoute):
        return CascadeRouter(config)
    return WeightedRouter(name, config)
