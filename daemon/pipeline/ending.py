"""The one ending of every call: complete the trace, let the stages see the outcome, write the trace,
its attempts and the stages' writes in one transaction, then tell the console.

Every way a call ends comes here exactly once (`Context.ended`): answered, refused, failed
upstream, failed mid-stream, abandoned by its client, or an unexpected exception. A call that is
still being answered waits for its trace to be durable; one whose client left does not.
"""

from __future__ import annotations

import logging
from typing import Any

from daemon.core.trace import truncate
from daemon.errors import GatewayError
from daemon.events import EventBus
from daemon.pipeline.attempts import ms
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.records import safe_request_record
from daemon.storage.traces import record_job
from daemon.storage.writer import Writer

log = logging.getLogger(__name__)


def failed(error: GatewayError) -> Outcome:
    return Outcome(status="error", http_status=error.status, error=error.message, error_code=error.code)


def cancelled(error: str = "client disconnected") -> Outcome:
    return Outcome(status="cancelled", http_status=499, error=error)


class Ending:
    def __init__(self, writer: Writer, bus: EventBus) -> None:
        self._writer = writer
        self._bus = bus

    async def end(self, ctx: Context, outcome: Outcome) -> None:
        """Record the call and return once its trace is durable (a later call does nothing)."""
        if ctx.ended:
            return
        job = self._close(ctx, outcome)
        try:
            # The only call in flight has no one to share a group commit with: commit it inline.
            # (Calls still pinned to a replaced runtime are not counted: a guess is fine.)
            alone = ctx.runtime.in_flight <= 1
            # The console hears of the trace once it is committed, even if this call is cancelled
            # meanwhile (the write goes on).
            await self._writer.run(job, alone=alone, on_commit=lambda seq: self._publish(ctx, seq))
        finally:
            ctx.runtime.unpin()

    def end_later(self, ctx: Context, outcome: Outcome) -> None:
        """Record the call without waiting: its client is gone."""
        if ctx.ended:
            return
        job = self._close(ctx, outcome)
        ctx.runtime.unpin()
        future = self._writer.submit(job, on_commit=lambda seq: self._publish(ctx, seq))
        future.add_done_callback(_log_failure)

    def _close(self, ctx: Context, outcome: Outcome) -> Any:
        ctx.ended = True
        trace = ctx.trace
        trace.status, trace.http_status, trace.error = outcome.status, outcome.http_status, outcome.error
        trace.error_code = outcome.error_code
        trace.latency_ms = ms(ctx.started)
        if trace.overhead_ms is None:
            trace.overhead_ms = trace.latency_ms - ctx.provider_ms
        limit = ctx.runtime.profile.traces.max_text_chars
        if trace.request is None and ctx.body:
            trace.request = safe_request_record(ctx.endpoint, ctx.body, limit)
        if outcome.text:
            trace.response = truncate(outcome.text, limit)
        if outcome.finish_reason:
            trace.finish_reason = outcome.finish_reason
        _sum_attempts(ctx)
        if ctx.stream and outcome.status == "ok" and outcome.answered_by is None and ctx.attempts:
            ctx.runtime.health.of(trace.served_model or "").latencies.add(trace.latency_ms)
        for stage in ctx.runtime.stages.after:
            try:
                stage.after(ctx, outcome)
            except Exception:  # one stage's bookkeeping must not lose the trace
                log.exception("stage %s failed after the call", stage.name)
        if ctx.decisions:
            trace.decisions = [decision.as_dict() for decision in ctx.decisions]
        return record_job(trace, ctx.attempts, ctx.jobs)

    def _publish(self, ctx: Context, seq: int) -> None:
        if self._bus.subscribers:
            event = ctx.trace.summary()
            event["seq"] = seq
            self._bus.publish("trace", event)


def _sum_attempts(ctx: Context) -> None:
    """The trace's tokens and cost are its attempts' sums; the last one tried is the one that served."""
    attempts = ctx.attempts
    if not attempts:
        return
    trace = ctx.trace
    if len(attempts) == 1:
        (a,) = attempts
        trace.prompt_tokens, trace.completion_tokens = a.prompt_tokens, a.completion_tokens
        trace.cached_tokens, trace.cost_usd = a.cached_tokens, a.cost_usd
        trace.shadow_cost_usd = a.shadow_cost_usd
    else:
        trace.prompt_tokens = sum(a.prompt_tokens for a in attempts)
        trace.completion_tokens = sum(a.completion_tokens for a in attempts)
        trace.cached_tokens = sum(a.cached_tokens for a in attempts)
        trace.cost_usd = sum(a.cost_usd for a in attempts)
        trace.shadow_cost_usd = sum(a.shadow_cost_usd for a in attempts)
    served = next((a for a in reversed(attempts) if a.status != "skipped"), attempts[-1])
    trace.served_model, trace.provider = served.model, served.provider


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("writing the trace of an abandoned call failed: %s", future.exception())
