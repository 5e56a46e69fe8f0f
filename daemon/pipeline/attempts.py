"""The attempt loop: try the call's candidate models in order until one answers.

A candidate that fails in a way another model could mend (its provider failed, timed out or cannot
load) hands over to the next; a request that is wrong in itself (400) fails at once. Streams fall
back only until their first chunk: after that, bytes have reached the client. Every attempt is
kept on the context, with its own status, latency, tokens and cost.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from daemon import tokens
from daemon.config.schema import LlamaCppModel
from daemon.core.cost import Usage, cost_usd
from daemon.core.request import with_defaults
from daemon.core.trace import Attempt
from daemon.errors import CircuitOpen, GatewayError
from daemon.pipeline.context import Context
from daemon.providers.base import Call, Completion
from daemon.runtime import ModelEntry

T = TypeVar("T")


def ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


async def first_answer(
    ctx: Context, call: Callable[[ModelEntry, Call], Awaitable[T]]
) -> tuple[ModelEntry, Attempt, T]:
    """`call` each candidate in turn; the first that answers, its attempt and its answer. A model
    whose circuit is open is skipped; if every one is, the call fails fast with 503."""
    ctx.waiting()
    health = ctx.runtime.health
    candidates, failure, skipped = ctx.candidates, None, []
    for index, entry in enumerate(candidates):
        if not health.allow(entry.name, time.time()):
            skipped.append(entry.name)
            ctx.attempts.append(skip(entry))
            ctx.decide("breaker", "skipped", f"{entry.name}: circuit open")
            continue
        try:
            answer, tried = await attempt(ctx, entry, call)
        except GatewayError as exc:
            if not exc.fallback:
                raise
            failure = exc
            if index < len(candidates) - 1:
                ctx.decide("fallback", candidates[index + 1].name, f"{entry.name} failed with {exc.status}")
            continue
        return entry, tried, answer
    if failure is not None:
        raise failure
    wait = health.retry_in(skipped, time.time())
    error = CircuitOpen(
        f"Every candidate model's circuit breaker is open ({', '.join(skipped)}): they failed repeatedly; "
        f"the next probe is in {wait:.0f} s.",
        param="model",
    )
    error.headers["retry-after"] = str(max(1, math.ceil(wait)))
    raise error


async def attempt(
    ctx: Context, entry: ModelEntry, call: Callable[[ModelEntry, Call], Awaitable[T]],
    confidence: bool = False, body: dict[str, Any] | None = None,
) -> tuple[T, Attempt]:  # fmt: skip
    """One try of one model (with `body` instead of the call's, if given), kept on the context and
    told to the model's health."""
    record = Attempt(entry.name, entry.config.provider)
    ctx.attempts.append(record)
    health = ctx.runtime.health
    started = time.perf_counter()
    try:
        body = ctx.body if body is None else body
        body = with_defaults(body, entry.defaults) if entry.defaults else body
        answer = await call(entry, Call(body, entry.name, entry.upstream_model, confidence=confidence))
    except GatewayError as exc:
        record.status, record.http_status, record.error = "error", exc.status, exc.message
        record.latency_ms = ms(started)
        if exc.fallback and exc.model_at_fault:
            health.failed(entry.name, time.time(), exc.message)
        else:
            health.abandoned(entry.name)
        raise
    except asyncio.CancelledError:
        record.status, record.http_status, record.error = "cancelled", 499, "client disconnected"
        record.latency_ms = ms(started)
        health.abandoned(entry.name)
        raise
    waited = ms(started)
    ctx.provider_ms += waited
    record.latency_ms = waited
    # A stream's first chunk: its time to first token (its whole latency is told at its end).
    health.succeeded(entry.name, time.time(), None if ctx.stream else waited, waited if ctx.stream else None)
    ctx.trace.served_model, ctx.trace.provider = entry.name, entry.config.provider
    return answer, record


def skip(entry: ModelEntry) -> Attempt:
    """A candidate not tried: its circuit is open (kept, so that the trace and the stats show it)."""
    return Attempt(entry.name, entry.config.provider, "skipped", 503, "circuit open", 0.0)


def whole(body: dict[str, Any]) -> dict[str, Any]:
    """The call asking for its whole answer at once (a cascade's judged answer, a shadow's copy)."""
    return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}


async def complete(entry: ModelEntry, call: Call) -> Completion:
    return await entry.provider.complete(call)


def usage_of(ctx: Context, completion: Completion) -> Usage:
    """The completion's usage, or tiktoken's count when the model reported none (noted on the trace)."""
    if completion.usage.total_tokens:
        return completion.usage
    ctx.trace.metadata["usage_estimated"] = True
    return Usage(tokens.count_messages(ctx.body["messages"]), tokens.count_text(completion.text))


def settle(attempt: Attempt, entry: ModelEntry, usage: Usage) -> None:
    """The attempt's tokens and their cost at the model's price (and a local model's shadow price)."""
    attempt.prompt_tokens = usage.prompt_tokens
    attempt.completion_tokens = usage.completion_tokens
    attempt.cached_tokens = usage.cached_tokens
    attempt.cost_usd = cost_usd(usage, entry.price)
    if isinstance(entry.config, LlamaCppModel):
        attempt.shadow_cost_usd = cost_usd(usage, entry.shadow_price)
