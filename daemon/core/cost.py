"""Dollar cost of a call from token usage and a price (USD per 1M tokens)."""

from __future__ import annotations

from dataclasses import dataclass

# Published list prices (USD / 1M tokens) of well-known models, so that a profile can say
# `shadow_price: gpt-4o-mini` without repeating numbers. A profile's own prices win.
REFERENCE_PRICES: dict[str, tuple[float, float, float | None]] = {
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "gpt-4o": (2.50, 10.00, 1.25),
    "gpt-4.1": (2.00, 8.00, 0.50),
    "gpt-4.1-mini": (0.40, 1.60, 0.10),
    "gpt-4.1-nano": (0.10, 0.40, 0.025),
    "claude-3-5-haiku": (0.80, 4.00, 0.08),
    "claude-sonnet-4": (3.00, 15.00, 0.30),
    "text-embedding-3-small": (0.02, 0.0, None),
}


@dataclass(frozen=True, slots=True)
class UnitPrice:
    input: float
    output: float
    cached_input: float | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def reference_price(name: str) -> UnitPrice | None:
    found = REFERENCE_PRICES.get(name)
    return UnitPrice(*found) if found else None


def cost_usd(usage: Usage, price: UnitPrice | None) -> float:
    """Cached prompt tokens are billed at the cached rate when the price has one."""
    if price is None:
        return 0.0
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    fresh = usage.prompt_tokens - cached
    total = fresh * price.input + cached * cached_rate + usage.completion_tokens * price.output
    return total / 1_000_000
