"""The attempt loop: try the call's candidate models in order until one answers.

A candidate that fails in a way another model could mend (its provider failed, timed out or cannot
load) hands over to the next; a request that is wrong in itself (400) fails at once. Streams fall
back only until their first chunk: after that, bytes have reached the client. Every attempt is
kept on the context, with its own status, latency, tokens and cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from daemon.config.schema import LlamaCppModel
from daemon.core.cost import Usage, cost_usd
from daemon.core.request import with_defaults
from daemon.core.trace import Attempt
from daemon.errors import GatewayError
from daemon.pipeline.context import Context
from daemon.providers.base import Call
from daemon.runtime import ModelEntry

T = TypeVar("T")


def ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


async def first_answer(
    ctx: Context, call: Callable[[ModelEntry, Call], Awaitable[T]]
) -> tuple[ModelEntry, Attempt, T]:
    """`call` each candidate in turn; the first that answers, its attempt and its answer."""
    ctx.waiting()
    last = len(ctx.candidates) - 1
    for index, entry in enumerate(ctx.candidates):
        attempt = Attempt(entry.name, entry.config.provider)
        ctx.attempts.append(attempt)
        started = time.perf_counter()
        try:
            body = with_defaults(ctx.body, entry.defaults) if entry.defaults else ctx.body
            answer = await call(entry, Call(body, entry.name, entry.upstream_model))
        except GatewayError as exc:
            attempt.status, attempt.http_status, attempt.error = "error", exc.status, exc.message
            attempt.latency_ms = ms(started)
            if index == last or not exc.fallback:
                raise
            ctx.decide("fallback", ctx.candidates[index + 1].name, f"{entry.name} failed with {exc.status}")
            continue
        except asyncio.CancelledError:
            attempt.status, attempt.http_status, attempt.error = "cancelled", 499, "client disconnected"
            attempt.latency_ms = ms(started)
            raise
        waited = ms(started)
        ctx.provider_ms += waited
        attempt.latency_ms = waited
        ctx.trace.served_model, ctx.trace.provider = entry.name, entry.config.provider
        return entry, attempt, answer
    raise AssertionError("the gateway calls first_answer with at least one candidate")


def settle(attempt: Attempt, entry: ModelEntry, usage: Usage) -> None:
    """The attempt's tokens and their cost at the model's price (and a local model's shadow price)."""
    attempt.prompt_tokens = usage.prompt_tokens
    attempt.completion_tokens = usage.completion_tokens
    attempt.cached_tokens = usage.cached_tokens
    attempt.cost_usd = cost_usd(usage, entry.price)
    if isinstance(entry.config, LlamaCppModel):
        attempt.shadow_cost_usd = cost_usd(usage, entry.shadow_price)
