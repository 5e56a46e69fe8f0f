"""The request path, one for chat, streaming chat and embeddings:

    context -> stages' `before` (in order; any may change the call, refuse it or answer it)
            -> the attempt loop over the candidate models (pipeline/attempts.py)
            -> the answer: JSON, or a stream relayed chunk by chunk through the stages' `on_chunk`
            -> the one ending (pipeline/ending.py): stages' `after`, then the trace, its attempts
               and the stages' writes in one transaction, then the console.

A capability is a stage (pipeline/stage.py, listed in pipeline/order.py); this module does not
grow with them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from daemon.core.principal import Principal
from daemon.core.trace import Trace, new_trace_id
from daemon.errors import GatewayError, internal_error
from daemon.pipeline.attempts import complete, first_answer, ms, settle, usage_of
from daemon.pipeline.context import Context, Endpoint, Outcome
from daemon.pipeline.ending import Ending, cancelled, failed
from daemon.pipeline.records import note_end_user, request_record
from daemon.pipeline.relay import Relay
from daemon.pipeline.stage import Answer, Stage
from daemon.providers.base import Call, Chunk, Completion, Embeddings
from daemon.providers.wire import replay
from daemon.runtime import ModelEntry, Runtimes

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Reply:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(slots=True)
class StreamReply:
    events: AsyncIterator[bytes]
    headers: dict[str, str]
    aclose: Callable[[], Awaitable[None]]  # the HTTP layer calls it last, whatever happened


class Gateway:
    def __init__(self, runtimes: Runtimes, ending: Ending) -> None:
        self._runtimes = runtimes
        self._ending = ending

    async def handle(
        self, endpoint: Endpoint, principal: Principal, body: dict[str, Any],
        request_headers: Mapping[bytes, bytes], started: float, waiting: Callable[[], None] | None = None,
    ) -> Reply | StreamReply:  # fmt: skip
        """`waiting()` is called before the call waits on a model (the HTTP layer then watches for
        its client leaving)."""
        ctx = self._context(endpoint, principal, body, request_headers, started)
        if waiting is not None:
            ctx.waiting = waiting
        try:
            return await self._serve(ctx)
        except GatewayError as exc:
            exc.trace_id = ctx.trace.id
            await self._ending.end(ctx, failed(exc))
            raise
        except asyncio.CancelledError:
            self._ending.end_later(ctx, cancelled())
            raise
        except Exception:
            log.exception("%s call failed", endpoint)
            error = internal_error()
            error.trace_id = ctx.trace.id
            await self._ending.end(ctx, failed(error))
            raise error from None

    async def refuse(
        self, endpoint: Endpoint, principal: Principal, error: GatewayError, started: float
    ) -> None:
        """A call whose body could not be read or validated is still a trace."""
        ctx = self._context(endpoint, principal, {}, {}, started)
        error.trace_id = ctx.trace.id
        await self._ending.end(ctx, failed(error))

    def _context(
        self, endpoint: Endpoint, principal: Principal, body: dict[str, Any],
        request_headers: Mapping[bytes, bytes], started: float,
    ) -> Context:  # fmt: skip
        runtime = self._runtimes.current
        trace = Trace(
            id=new_trace_id(), ts=time.time(), endpoint=endpoint,
            key_id=principal.key_id, user=principal.user, team=principal.team,
        )  # fmt: skip
        runtime.pin()  # until the ending
        stream = endpoint == "chat" and bool(body.get("stream"))
        return Context(endpoint, principal, body, request_headers, runtime, trace, started, stream)

    async def _serve(self, ctx: Context) -> Reply | StreamReply:
        body, trace, runtime = ctx.body, ctx.trace, ctx.runtime
        trace.requested_model, trace.stream = body.get("model"), ctx.stream
        note_end_user(trace, body)
        named = runtime.find(body.get("model"))
        if named is not None:
            ctx.candidates.append(named)
        for stage in runtime.stages.before:
            answer = await stage.before(ctx)
            if answer is not None:
                return await self._answered(ctx, stage, answer)
        if not ctx.candidates:
            raise runtime.unknown_model(ctx.body.get("model"))
        # Recorded after the input stages ran: a redacting stage acts before anything is stored.
        trace.request = request_record(ctx.endpoint, ctx.body, runtime.profile.traces.max_text_chars)
        if ctx.stream:
            return await self._stream(ctx)
        if ctx.endpoint == "embeddings":
            return await self._embed(ctx)
        return await self._complete(ctx)

    async def _complete(self, ctx: Context) -> Reply:
        entry, attempt, completion = await first_answer(ctx, complete)
        settle(attempt, entry, usage_of(ctx, completion))
        outcome = Outcome(text=completion.text, finish_reason=completion.finish_reason, body=completion.body)
        await self._ending.end(ctx, outcome)
        return Reply(completion.body, _headers(ctx))

    async def _embed(self, ctx: Context) -> Reply:
        entry, attempt, result = await first_answer(ctx, _embed)
        settle(attempt, entry, result.usage)
        await self._ending.end(ctx, Outcome(body=result.body))
        return Reply(result.body, _headers(ctx))

    async def _stream(self, ctx: Context) -> StreamReply:
        """Wait for the first chunk before answering: until then a failure gets a real HTTP status,
        and the next candidate may still take over."""
        entry, attempt, (upstream, first) = await first_answer(ctx, _open_stream)
        attempt.ttft_ms = attempt.latency_ms
        ctx.trace.ttft_ms = ms(ctx.started)
        ctx.trace.overhead_ms = ctx.trace.ttft_ms - ctx.provider_ms
        relay = Relay(self._ending, ctx, upstream, first, (entry, attempt))
        return StreamReply(relay.events, _headers(ctx), relay.aclose)

    async def _answered(self, ctx: Context, stage: Stage, answer: Answer) -> Reply | StreamReply:
        """A stage answered (a cache hit): no provider is called."""
        trace = ctx.trace
        trace.request = request_record(ctx.endpoint, ctx.body, ctx.runtime.profile.traces.max_text_chars)
        trace.served_model = trace.served_model or str(answer.body.get("model") or "") or None
        if not any(decision.stage == stage.name for decision in ctx.decisions):
            ctx.decide(stage.name, "answered")
        if ctx.stream and isinstance(answer, Completion):
            trace.ttft_ms = ms(ctx.started)
            chunks = replay(answer, trace.served_model or "", int(time.time()))
            relay = Relay(self._ending, ctx, _iterate(chunks[1:]), chunks[0])
            return StreamReply(relay.events, _headers(ctx), relay.aclose)
        text = answer.text if isinstance(answer, Completion) else ""
        finish = answer.finish_reason if isinstance(answer, Completion) else None
        outcome = Outcome(text=text, finish_reason=finish, body=answer.body, answered_by=stage.name)
        await self._ending.end(ctx, outcome)
        return Reply(answer.body, _headers(ctx))


async def _embed(entry: ModelEntry, call: Call) -> Embeddings:
    return await entry.provider.embed(call)


async def _open_stream(entry: ModelEntry, call: Call) -> tuple[AsyncIterator[Chunk], Chunk | None]:
    upstream = aiter(entry.provider.stream(call))
    try:
        first = await anext(upstream, None)
    except BaseException:
        aclose = getattr(upstream, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    return upstream, first


async def _iterate(chunks: list[Chunk]) -> AsyncIterator[Chunk]:
    for chunk in chunks:
        yield chunk


def _headers(ctx: Context) -> dict[str, str]:
    headers = {
        "x-llmops-trace-id": ctx.trace.id,
        "x-llmops-model": ctx.trace.served_model or "",
        "x-llmops-overhead-ms": f"{ms(ctx.started) - ctx.provider_ms:.3f}",
    }
    if ctx.reply_headers:
        headers.update(ctx.reply_headers)
    return headers
