"""Issue 8, defect 5: `timeout.total` bounds the whole call and `timeout.idle` a stream's gap
between events, over both transports, where a per-read timeout never trips (a byte at a time).

Elapsed times are checked against the configured timeouts with generous upper bounds (the
machine may be busy): the point is "stopped near its deadline", not speed."""

from __future__ import annotations

import asyncio
import time

import pytest

from daemon.config.schema import OpenAIModel, Timeouts
from daemon.errors import UpstreamTimeout
from daemon.providers.base import Chunk
from tests.fixtures.faulty_upstream import Fault, FaultyUpstream
from tests.providers.conftest import MODEL, TRANSPORTS, anthropic_provider, chat, openai_provider

SLACK = 2.0  # seconds a loaded machine may add to a deadline


def test_total_and_idle_have_defaults_and_are_validated() -> None:
    assert Timeouts().total == 600 and Timeouts().idle is None
    assert Timeouts(read=30).idle_seconds == 30 and Timeouts(read=30, idle=5).idle_seconds == 5
    with pytest.raises(ValueError, match="greater than 0"):
        OpenAIModel.model_validate({"provider": "openai", "base_url": "http://x", "timeout": {"total": 0}})
    with pytest.raises(ValueError, match="greater than 0"):
        OpenAIModel.model_validate({"provider": "openai", "base_url": "http://x", "timeout": {"idle": -1}})


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_body_trickled_a_byte_at_a_time_stops_at_the_total_timeout(
    upstream: FaultyUpstream, transport: str
) -> None:
    """`Content-Length: 100000` and a byte every 0.2 s: every read is quick, the body never ends."""
    upstream.inject(Fault.TRICKLE_BODY, interval=0.2)
    provider = openai_provider(upstream, transport, read=1.0, total=1.5)
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamTimeout, match="longer than its total timeout \\(1.5 s\\)") as caught:
            await provider.complete(chat())
    finally:
        await provider.aclose()
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 1.5 + SLACK
    assert caught.value.status == 504 and MODEL in caught.value.message
    assert upstream.attempts(Fault.TRICKLE_BODY) == 1  # never retried: the model ran


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_stream_that_trickles_bytes_but_no_event_stops_at_the_idle_timeout(
    upstream: FaultyUpstream, transport: str
) -> None:
    upstream.inject(Fault.TRICKLE_STREAM, interval=0.1)
    provider = openai_provider(upstream, transport, read=1.0, idle=0.8)
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamTimeout, match="no complete stream event for 0.8 s") as caught:
            async for _ in provider.stream(chat(stream=True)):
                pass
    finally:
        await provider.aclose()
    elapsed = time.monotonic() - started
    assert 0.8 <= elapsed < 0.8 + SLACK
    assert caught.value.status == 504
    assert upstream.attempts(Fault.TRICKLE_STREAM) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_total_timeout_also_bounds_a_trickling_stream(
    upstream: FaultyUpstream, transport: str
) -> None:
    upstream.inject(Fault.TRICKLE_STREAM, interval=0.1)
    provider = anthropic_provider(upstream, transport, read=1.0, idle=5.0, total=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamTimeout, match="total timeout"):
            async for _ in provider.stream(chat(stream=True)):
                pass
    finally:
        await provider.aclose()
    assert 1.0 <= time.monotonic() - started < 1.0 + SLACK


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_slow_consumer_does_not_count_against_the_idle_timeout(
    upstream: FaultyUpstream, transport: str
) -> None:
    """The idle clock measures the upstream's silence, not the time our client takes to read."""
    provider = openai_provider(upstream, transport, read=1.0, idle=0.3)
    chunks: list[Chunk] = []
    try:
        async for chunk in provider.stream(chat(stream=True)):
            if not chunks:
                await asyncio.sleep(0.8)  # (events meanwhile wait in the socket)
            chunks.append(chunk)
    finally:
        await provider.aclose()
    assert "".join(c.text for c in chunks) == "Echo: one two three"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_retries_stop_at_the_total_timeout(upstream: FaultyUpstream, transport: str) -> None:
    """A 429 every time, asking for 0.4 s: retries=10 would take 4 s, total is 1 s."""
    upstream.inject(Fault.RATE_LIMITED, count=None, retry_after="0.4")
    provider = openai_provider(upstream, transport, retries=10, total=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(Exception, match="HTTP 429") as caught:
            await provider.complete(chat())
    finally:
        await provider.aclose()
    assert time.monotonic() - started < 1.0 + SLACK
    assert 2 <= upstream.attempts(Fault.RATE_LIMITED) <= 3
    assert "attempts)" in str(caught.value)
