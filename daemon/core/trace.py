"""A trace: the record of one call through the gateway, as plain data."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, fields
from typing import Any


def new_trace_id() -> str:
    # Time-ordered (ms) then 48 random bits from the OS's CSPRNG: ids sort roughly by arrival, never
    # collide, and cannot be guessed from one another (`random` is predictable from its outputs).
    return f"tr_{time.time_ns() // 1_000_000:012x}{secrets.randbits(48):012x}"


@dataclass(slots=True)
class Trace:
    id: str
    ts: float
    endpoint: str
    status: str = "ok"
    http_status: int = 200
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    requested_model: str | None = None
    served_model: str | None = None
    provider: str | None = None
    stream: bool = False
    error: str | None = None
    error_code: str | None = None
    request: str | None = None
    response: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    shadow_cost_usd: float = 0.0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    overhead_ms: float | None = None
    cache: str | None = None
    route: str | None = None
    route_tier: str | None = None  # the tier (or domain) a route chose
    prompt_name: str | None = None
    prompt_version: int | None = None
    prompt_label: str | None = None  # the label the call asked for (or `latest`), when it named none: None
    experiment: str | None = None
    arm: str | None = None
    saved_usd: float = 0.0  # what a stage avoided spending (a cache hit: the original call's cost)
    saved_tokens: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    # What each stage of the request path decided and why: [{"stage", "outcome", "reason"}]
    decisions: list[dict[str, str]] | None = None

    def summary(self) -> dict[str, Any]:
        """The fields a listing shows: no message or response text."""
        return {name: getattr(self, name) for name in SUMMARY_FIELDS}


SUMMARY_FIELDS = tuple(
    f.name for f in fields(Trace) if f.name not in ("request", "response", "metadata", "decisions")
)


@dataclass(slots=True)
class Attempt:
    """One try of one candidate model within a call; a call that falls back has several."""

    model: str
    provider: str
    status: str = "ok"  # ok | error | cancelled | escalated (a cascade) | skipped (its circuit was open)
    http_status: int = 200
    error: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    shadow_cost_usd: float = 0.0  # what a local model's tokens would have cost at its reference price


def truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"… [truncated {len(text) - limit} chars]"
