"""The request path for chat and embeddings: resolve the model, call its provider, settle cost,
record the trace durably, and hand the API layer plain data to send.

Later stages (prompts, guardrails, budgets, cache, routing) slot in between `_resolve` and the
provider call; each is a module of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from daemon import tokens
from daemon.config.schema import LlamaCppModel
from daemon.core.cost import Usage, cost_usd
from daemon.core.trace import Trace, new_trace_id, truncate
from daemon.errors import GatewayError, internal_error
from daemon.events import EventBus
from daemon.providers.base import Call, Chunk
from daemon.runtime import ModelEntry, Runtime
from daemon.storage.keys import Principal
from daemon.storage.traces import insert_job
from daemon.storage.writer import Writer

log = logging.getLogger(__name__)
DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class Reply:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(slots=True)
class StreamReply:
    events: AsyncIterator[bytes]
    headers: dict[str, str]


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


class Gateway:
    def __init__(self, writer: Writer, bus: EventBus, current_runtime: Callable[[], Runtime]) -> None:
        self._writer = writer
        self._bus = bus
        self._runtime = current_runtime

    # -- recording ---------------------------------------------------------------------------------

    async def record(self, trace: Trace) -> None:
        """Return once the trace is durable; then tell the console."""
        # The only call in flight (calls pin their runtime until recorded) has no one to share a
        # group commit with. Calls still on a just-replaced runtime are not counted: a guess is fine.
        alone = self._runtime().in_flight <= 1
        seq = await self._writer.run(insert_job(trace), alone=alone)
        self._publish(trace, seq)

    def record_later(self, trace: Trace) -> None:
        """For a request whose client is gone: write without waiting."""
        future = self._writer.submit(insert_job(trace))

        def published(done: Any) -> None:
            if not done.cancelled() and done.exception() is None:
                self._publish(trace, done.result())

        future.add_done_callback(published)

    def _publish(self, trace: Trace, seq: int) -> None:
        if self._bus.subscribers:
            event = trace.summary()
            event["seq"] = seq
            self._bus.publish("trace", event)

    def new_trace(self, endpoint: str, principal: Principal) -> Trace:
        return Trace(
            id=new_trace_id(), ts=time.time(), endpoint=endpoint,
            key_id=principal.key_id, user=principal.user, team=principal.team,
        )  # fmt: skip

    async def record_failure(self, trace: Trace, error: GatewayError, started: float) -> None:
        trace.status, trace.http_status, trace.error = "error", error.status, error.message
        trace.latency_ms = _ms(started)
        error.trace_id = trace.id
        await self.record(trace)

    @asynccontextmanager
    async def failures_traced(self, trace: Trace, started: float) -> AsyncIterator[None]:
        """A call that fails is still a trace; unexpected errors become a 500 that hides internals."""
        try:
            yield
        except GatewayError as exc:
            await self.record_failure(trace, exc, started)
            raise
        except asyncio.CancelledError:
            trace.status, trace.http_status, trace.error = "cancelled", 499, "client disconnected"
            trace.latency_ms = _ms(started)
            self.record_later(trace)
            raise
        except Exception:
            log.exception("%s call failed", trace.endpoint)
            error = internal_error()
            await self.record_failure(trace, error, started)
            raise error from None

    # -- chat ----------------------------------------------------------------------------------------

    def _prepare(self, trace: Trace, body: dict[str, Any], runtime: Runtime) -> tuple[ModelEntry, Call]:
        limit = runtime.profile.traces.max_text_chars
        trace.requested_model = body.get("model")
        trace.stream = bool(body.get("stream"))
        _end_user(trace, body)
        trace.request = _request_record(body, limit)
        entry = runtime.model(body.get("model"))
        trace.served_model, trace.provider = entry.name, entry.config.provider
        return entry, Call(body=body, model=entry.name, upstream_model=entry.upstream_model)

    def _settle(self, trace: Trace, entry: ModelEntry, usage: Usage) -> None:
        trace.prompt_tokens = usage.prompt_tokens
        trace.completion_tokens = usage.completion_tokens
        trace.cached_tokens = usage.cached_tokens
        trace.cost_usd = cost_usd(usage, entry.price)
        if isinstance(entry.config, LlamaCppModel):
            trace.shadow_cost_usd = cost_usd(usage, entry.shadow_price)

    def _headers(self, trace: Trace, overhead_ms: float) -> dict[str, str]:
        return {
            "x-llmops-trace-id": trace.id,
            "x-llmops-model": trace.served_model or "",
            "x-llmops-overhead-ms": f"{overhead_ms:.3f}",
        }

    async def chat(self, principal: Principal, body: dict[str, Any], started: float) -> Reply:
        runtime = self._runtime()
        trace = self.new_trace("chat", principal)
        with runtime.pinned():
            async with self.failures_traced(trace, started):
                entry, call = self._prepare(trace, body, runtime)
                provider_started = time.perf_counter()
                completion = await entry.provider.complete(call)
                provider_ms = _ms(provider_started)
            usage = completion.usage
            if not usage.total_tokens:
                usage = Usage(tokens.count_messages(body["messages"]), tokens.count_text(completion.text))
                trace.metadata["usage_estimated"] = True
            self._settle(trace, entry, usage)
            trace.response = truncate(completion.text, runtime.profile.traces.max_text_chars)
            trace.finish_reason = completion.finish_reason
            trace.latency_ms = _ms(started)
            trace.overhead_ms = trace.latency_ms - provider_ms
            await self.record(trace)
        return Reply(completion.body, self._headers(trace, _ms(started) - provider_ms))

    async def chat_stream(self, principal: Principal, body: dict[str, Any], started: float) -> StreamReply:
        """Wait for the first event before answering, so early failures get a real HTTP status."""
        runtime = self._runtime()
        trace = self.new_trace("chat", principal)
        pin = runtime.pinned()
        pin.__enter__()  # held until the relay ends, not just this function
        try:
            async with self.failures_traced(trace, started):
                entry, call = self._prepare(trace, body, runtime)
                provider_started = time.perf_counter()
                upstream = aiter(entry.provider.stream(call))
                first = await anext(upstream, None)
                waited_ms = _ms(provider_started)
        except BaseException:
            pin.__exit__(None, None, None)
            raise
        trace.ttft_ms = _ms(started)
        overhead_ms = trace.ttft_ms - waited_ms
        relay = _Relay(self, trace, entry, body, runtime, started, overhead_ms)
        return StreamReply(relay.run(upstream, first, pin), self._headers(trace, overhead_ms))

    # -- embeddings ----------------------------------------------------------------------------------

    async def embeddings(self, principal: Principal, body: dict[str, Any], started: float) -> Reply:
        runtime = self._runtime()
        trace = self.new_trace("embeddings", principal)
        with runtime.pinned():
            async with self.failures_traced(trace, started):
                trace.requested_model = body.get("model")
                _end_user(trace, body)
                trace.request = _embedding_record(body, runtime.profile.traces.max_text_chars)
                entry = runtime.model(body.get("model"))
                trace.served_model, trace.provider = entry.name, entry.config.provider
                provider_started = time.perf_counter()
                result = await entry.provider.embed(Call(body, entry.name, entry.upstream_model))
                provider_ms = _ms(provider_started)
            self._settle(trace, entry, result.usage)
            trace.latency_ms = _ms(started)
            trace.overhead_ms = trace.latency_ms - provider_ms
            await self.record(trace)
        return Reply(result.body, self._headers(trace, _ms(started) - provider_ms))


class _Relay:
    """Forwards a provider's stream to the client and records the trace before `[DONE]`."""

    def __init__(
        self, gateway: Gateway, trace: Trace, entry: ModelEntry, body: dict[str, Any],
        runtime: Runtime, started: float, overhead_ms: float,
    ) -> None:  # fmt: skip
        self.gateway, self.trace, self.entry, self.body = gateway, trace, entry, body
        self.runtime, self.started, self.overhead_ms = runtime, started, overhead_ms
        self.wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.text: list[str] = []
        self.usage: Usage | None = None
        self.ending = False

    def _take(self, chunk: Chunk, held: list[bytes]) -> bool:
        """Note what the trace needs; hold the chunk's event. True: send what is held now."""
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.trace.finish_reason = chunk.finish_reason
            self.ending = True
        if chunk.usage_only:
            self.ending = True
            if not self.wants_usage:
                return False
        if chunk.payload:
            held += (b"data: ", chunk.payload, b"\n\n")
        # Events that arrived together leave in one write; past the finish reason only usage
        # follows, and it can leave with [DONE].
        return bool(held) and not chunk.more and not self.ending

    def _finish(self) -> None:
        text = "".join(self.text)
        usage = self.usage
        if usage is None or not usage.total_tokens:
            usage = Usage(tokens.count_messages(self.body["messages"]), tokens.count_text(text))
            self.trace.metadata["usage_estimated"] = True
        self.gateway._settle(self.trace, self.entry, usage)
        self.trace.response = truncate(text, self.runtime.profile.traces.max_text_chars)
        self.trace.latency_ms = _ms(self.started)
        self.trace.overhead_ms = self.overhead_ms

    async def run(
        self, upstream: AsyncIterator[Chunk], first: Chunk | None, pin: Any
    ) -> AsyncIterator[bytes]:
        finished = False
        try:
            held: list[bytes] = []
            if first is not None:
                if self._take(first, held):
                    yield b"".join(held)
                    held.clear()
                async for chunk in upstream:
                    if self._take(chunk, held):
                        yield b"".join(held)
                        held.clear()
            self._finish()
            await self.gateway.record(self.trace)
            finished = True
            held.append(DONE)
            yield b"".join(held)
        except GatewayError as exc:
            self._finish()
            self.trace.status, self.trace.http_status, self.trace.error = "error", exc.status, exc.message
            await self.gateway.record(self.trace)
            finished = True
            yield _sse(orjson.dumps(exc.to_body()))
        finally:
            await _close(upstream)
            pin.__exit__(None, None, None)
            if not finished:  # the client went away (or we failed unexpectedly) mid-stream
                self._finish()
                self.trace.status, self.trace.http_status = "cancelled", 499
                self.trace.error = "client disconnected before the stream ended"
                self.gateway.record_later(self.trace)


async def _close(stream: AsyncIterator[Chunk]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.debug("closing a provider stream failed", exc_info=True)


def _end_user(trace: Trace, body: dict[str, Any]) -> None:
    """OpenAI's `user` field names the end user. Without keys (local mode) it is the only name we
    have; with keys the key's user stays the accountable one and the end user is kept beside it."""
    end_user = body.get("user")
    if not isinstance(end_user, str) or not end_user:
        return
    if trace.key_id is None:
        trace.user = end_user
    else:
        trace.metadata["end_user"] = end_user


def _request_record(body: dict[str, Any], limit: int) -> str:
    messages = [
        {**m, "content": truncate(m["content"], limit)} if isinstance(m.get("content"), str) else m
        for m in body.get("messages", [])
    ]
    params = {k: v for k, v in body.items() if k not in ("messages", "model")}
    return orjson.dumps({"messages": messages, "params": params}).decode()


def _embedding_record(body: dict[str, Any], limit: int) -> str:
    value = body.get("input")
    shown = truncate(value, limit) if isinstance(value, str) else value
    if isinstance(shown, list) and len(shown) > 64:
        shown = [*shown[:64], f"... {len(shown) - 64} more"]
    return orjson.dumps({"input": shown}).decode()
