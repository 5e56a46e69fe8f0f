"""Forwards a stream to the client (a provider's, or one a stage synthesized) and ends the call.

The trace is written before `[DONE]`: a client that got the whole stream knows its trace is
durable. A stream that breaks (the upstream fails, a chunk cannot be read, anything unexpected)
ends with an `error` event and an `error` trace; a client that leaves ends as `cancelled`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator

import orjson

from daemon import tokens
from daemon.core.cost import Usage
from daemon.core.trace import Attempt
from daemon.errors import GatewayError, internal_error
from daemon.pipeline.attempts import ms, settle
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.ending import Ending, cancelled, failed
from daemon.providers.base import Chunk
from daemon.runtime import ModelEntry

log = logging.getLogger(__name__)
DONE = b"data: [DONE]\n\n"


class Relay:
    def __init__(
        self, ending: Ending, ctx: Context, upstream: AsyncIterator[Chunk], first: Chunk | None,
        served: tuple[ModelEntry, Attempt] | None = None,
    ) -> None:  # fmt: skip
        """`served`: the model and attempt the stream comes from (None: a stage's answer)."""
        self.ending, self.ctx, self.upstream, self.first, self.served = ending, ctx, upstream, first, served
        self.wants_usage = bool((ctx.body.get("stream_options") or {}).get("include_usage"))
        self.chunk_stages = ctx.runtime.stages.on_chunk
        self.text: list[str] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.ending_seen = False
        self.first_at = time.perf_counter()
        self.events = self._run()

    async def aclose(self) -> None:
        """Whatever happened to the response, end the call: the HTTP layer calls this last. A stream
        that never started (its headers could not be sent) ends here."""
        await self.events.aclose()
        await _close(self.upstream)
        if not self.ctx.ended:
            self.ending.end_later(self.ctx, self._outcome(cancelled("the response could not be sent")))

    def _take(self, chunk: Chunk, held: list[bytes]) -> bool:
        """Note what the trace needs; hold the chunk's event. True: send what is held now."""
        for stage in self.chunk_stages:
            changed = stage.on_chunk(self.ctx, chunk)
            if changed is None:
                return False
            chunk = changed
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
            self.ending_seen = True
        if chunk.usage_only:
            self.ending_seen = True
            if not self.wants_usage:
                return False
        if chunk.payload:
            held += (b"data: ", chunk.payload, b"\n\n")
        # Events that arrived together leave in one write; past the finish reason only usage
        # follows, and it can leave with [DONE].
        return bool(held) and not chunk.more and not self.ending_seen

    def _outcome(self, outcome: Outcome) -> Outcome:
        """The outcome with what was streamed so far, and the serving attempt settled."""
        text = "".join(self.text)
        outcome.text, outcome.finish_reason = text, self.finish_reason
        if self.served is not None:
            entry, attempt = self.served
            usage = self.usage
            if usage is None or not usage.total_tokens:
                usage = Usage(tokens.count_messages(self.ctx.body["messages"]), tokens.count_text(text))
                self.ctx.trace.metadata["usage_estimated"] = True
            settle(attempt, entry, usage)
            attempt.latency_ms = (attempt.ttft_ms or 0.0) + ms(self.first_at)
            if outcome.status != "ok":
                attempt.status, attempt.http_status, attempt.error = (
                    outcome.status, outcome.http_status, outcome.error,
                )  # fmt: skip
        return outcome

    async def _run(self) -> AsyncGenerator[bytes]:
        ctx, upstream = self.ctx, self.upstream
        held: list[bytes] = []  # events read but not sent yet: they leave with what follows them
        try:
            if self.first is not None:
                if self._take(self.first, held):
                    yield b"".join(held)
                    held.clear()
                async for chunk in upstream:
                    if self._take(chunk, held):
                        yield b"".join(held)
                        held.clear()
            await self.ending.end(ctx, self._outcome(Outcome()))
            held.append(DONE)
            yield b"".join(held)
        except GatewayError as exc:
            await self._fail(exc)
            yield b"".join((*held, _error_event(exc)))  # the client gets all the trace says it got
        except Exception:  # a bug or an unforeseen failure mid-stream: still an error, not a disconnect
            log.exception("a stream failed")
            error = internal_error()
            await self._fail(error)
            yield b"".join((*held, _error_event(error)))
        finally:
            await _close(upstream)
            if not ctx.ended:  # the client went away mid-stream
                gone = cancelled("client disconnected before the stream ended")
                self.ending.end_later(ctx, self._outcome(gone))

    async def _fail(self, error: GatewayError) -> None:
        error.trace_id = self.ctx.trace.id
        # If the trace cannot be written either, the client still hears why the stream failed.
        with contextlib.suppress(GatewayError):
            await self.ending.end(self.ctx, self._outcome(failed(error)))


def _error_event(error: GatewayError) -> bytes:
    return b"data: " + orjson.dumps(error.to_body()) + b"\n\n"


async def _close(stream: AsyncIterator[Chunk]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.debug("closing a provider stream failed", exc_info=True)
