"""A trace: the record of one call through the gateway, as plain data."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, fields
from typing import Any


def new_trace_id() -> str:
    # Time-ordered (ms) then random, so ids sort roughly by arrival and never collide.
    return f"tr_{time.time_ns() // 1_000_000:012x}{random.getrandbits(48):012x}"


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
    prompt_name: str | None = None
    prompt_version: int | None = None
    experiment: str | None = None
    arm: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The fields a listing shows: no message or response text."""
        return {name: getattr(self, name) for name in SUMMARY_FIELDS}


SUMMARY_FIELDS = tuple(f.name for f in fields(Trace) if f.name not in ("request", "response", "metadata"))


def truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"… [truncated {len(text) - limit} chars]"
