"""The profile's routes (`routes:`): virtual model names that pick among the profile's models, and
the circuit breaker (`circuit_breaker:`) that takes a failing model out of every candidate list."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.core.routing import DOMAIN_CUES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    """Prompts scoring below `below` (the last tier: every other) go to `models`, in order."""

    name: str = Field(min_length=1)
    models: list[str] = Field(min_length=1)
    below: float | None = Field(default=None, gt=0, le=1)


class BudgetTier(_Strict):
    """Once the principal's tightest budget has less than `remaining_below` of it left, the route
    serves no tier dearer than `tier`."""

    remaining_below: float = Field(gt=0, le=1)
    tier: str


class Shadow(_Strict):
    """A copy of `share` of the calls goes to `model` once the served call has ended; its answer,
    cost and latency are recorded beside the served one and never returned."""

    model: str
    share: float = Field(default=1.0, gt=0, le=1)


class _Route(_Strict):
    description: str = ""
    fallbacks: list[str] = Field(default=[], description="tried in order after the route's own choice")
    shadow: Shadow | None = None
    budget_tiers: list[BudgetTier] = Field(
        default=[], description="cheaper tiers as the caller's budget runs low (tiered routes)"
    )

    def tier_names(self) -> list[str]:
        return []

    def models_named(self) -> list[str]:
        """Every model the route may send a call to (its fallbacks and shadow included)."""
        shadow = [self.shadow.model] if self.shadow else []
        return [*self.own_models(), *self.fallbacks, *shadow]

    def own_models(self) -> list[str]:
        raise NotImplementedError

    @model_validator(mode="after")
    def _budget_tiers_exist(self) -> _Route:
        names = self.tier_names()
        for rule in self.budget_tiers:
            if rule.tier not in names:
                raise ValueError(f"budget_tiers: {rule.tier!r} is not one of this route's tiers {names}")
        return self


class _Tiered(_Route):
    tiers: list[Tier] = Field(min_length=1)

    def tier_names(self) -> list[str]:
        return [tier.name for tier in self.tiers]

    def own_models(self) -> list[str]:
        return [model for tier in self.tiers for model in tier.models]

    @model_validator(mode="after")
    def _tiers_ordered(self) -> _Tiered:
        names = self.tier_names()
        if len(set(names)) != len(names):
            raise ValueError("tiers: names must differ")
        bounds = [tier.below for tier in self.tiers[:-1] if tier.below is not None]
        if len(bounds) < len(self.tiers) - 1:
            raise ValueError("tiers: every tier but the last needs `below`")
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError("tiers: `below` must rise from the cheapest tier to the best")
        if self.tiers[-1].below not in (None, 1):
            raise ValueError("tiers: the last tier takes every other score: leave out its `below`")
        return self


class ComplexityRoute(_Tiered):
    """A complexity score in 0..1 (core/complexity.py; `llmops route fit` refits it) picks a tier:
    the share of prompts scoring lower, so `below: 0.3` sends the simplest 30 % to that tier."""

    strategy: Literal["complexity"]
    scorer: str | None = Field(
        default=None, description="a scorer's parameters (JSON from `llmops route fit`); default: "
        "the data dir's fitted one if any, else the one shipped"
    )  # fmt: skip


class CostRoute(_Route):
    """The cheapest of `models` that can serve the request (context, tools, JSON mode, vision)."""

    strategy: Literal["cost"]
    models: list[str] = Field(min_length=1)

    def own_models(self) -> list[str]:
        return list(self.models)


class LatencyRoute(_Route):
    """The healthy model of `models` with the best recent latency, measured live."""

    strategy: Literal["latency"]
    models: list[str] = Field(min_length=1)
    metric: Literal["p95", "p50", "ttft"] = "p95"
    explore: float = Field(
        default=0.05,
        ge=0,
        le=0.5,
        description="share of calls sent to another model to keep its figures fresh",
    )

    def own_models(self) -> list[str]:
        return list(self.models)


class DomainRoute(_Route):
    """A keyword classifier picks the domain (code, math, legal, medical, finance, creative, or one
    the profile adds with `keywords`); its models serve, else `default`'s."""

    strategy: Literal["domain"]
    domains: dict[str, list[str]] = Field(min_length=1, description="domain -> models, in order")
    default: list[str] = Field(min_length=1)
    keywords: dict[str, list[str]] = Field(default={}, description="more cue words per domain")

    def own_models(self) -> list[str]:
        return [*(m for models in self.domains.values() for m in models), *self.default]

    @model_validator(mode="after")
    def _domains_known(self) -> DomainRoute:
        for domain in self.domains:
            if domain not in DOMAIN_CUES and not self.keywords.get(domain):
                known = ", ".join(DOMAIN_CUES)
                raise ValueError(f"domains: {domain!r} is not built in ({known}): give it keywords")
        for domain in self.keywords:
            if domain not in self.domains:
                raise ValueError(f"keywords: {domain!r} is not one of domains")
        return self


class CascadeRoute(_Route):
    """The cheapest model answers first; a later one only when the answer's confidence is below
    `min_confidence` (from token probabilities where the model gives them)."""

    strategy: Literal["cascade"]
    models: list[str] = Field(min_length=2, description="cheapest first")
    min_confidence: float = Field(default=0.6, gt=0, lt=1)

    def own_models(self) -> list[str]:
        return list(self.models)


class WeightedRoute(_Route):
    """Split traffic by weight (load balancing, a canary); `sticky` keeps a user on one model."""

    strategy: Literal["weighted"]
    weights: dict[str, float] = Field(min_length=1)
    sticky: bool = False

    def own_models(self) -> list[str]:
        return list(self.weights)

    @model_validator(mode="after")
    def _positive(self) -> WeightedRoute:
        if any(weight < 0 for weight in self.weights.values()) or not sum(self.weights.values()):
            raise ValueError("weights: must be >= 0 and not all 0")
        return self


RouteConfig = Annotated[
    ComplexityRoute | CostRoute | LatencyRoute | DomainRoute | CascadeRoute | WeightedRoute,
    Field(discriminator="strategy"),
]


class CircuitBreakerConfig(_Strict):
    """A model that fails `failures` times in a row is skipped for `cooldown` seconds, then one call
    probes it (half-open): a success closes the circuit, a failure opens it again for longer."""

    failures: int = Field(default=5, ge=1)
    cooldown: float = Field(default=30.0, gt=0)
    max_cooldown: float = Field(default=300.0, gt=0)
