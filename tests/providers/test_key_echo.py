"""Issue 8, defect 1: upstreams quote the key they were given; no error of ours may repeat it.

The error's message becomes the client's error, the trace, the event bus and the log, so the
check is on the message (and the error body) the provider raises."""

from __future__ import annotations

import pytest

from daemon.errors import ProviderError
from daemon.providers.base import Chunk
from daemon.providers.openai_compat import parse_chunk
from tests.fixtures.faulty_upstream import Fault, FaultyUpstream
from tests.providers.conftest import (
    KEY,
    MODEL,
    TRANSPORTS,
    anthropic_provider,
    assert_no_key,
    chat,
    openai_provider,
)


def assert_scrubbed(error: ProviderError) -> None:
    assert error.status == 502 and MODEL in error.message
    assert "[redacted]" in error.message
    for text in (error.message, str(error), str(error.to_body())):
        assert_no_key(text)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", [Fault.KEY_ECHO_JSON, Fault.KEY_ECHO_TEXT])
@pytest.mark.parametrize("masked", [False, True], ids=["whole", "masked"])
async def test_openai_401_quoting_the_key(
    upstream: FaultyUpstream, transport: str, fault: Fault, masked: bool
) -> None:
    upstream.inject(fault, masked=masked)
    provider = openai_provider(upstream, transport)
    try:
        with pytest.raises(ProviderError, match="HTTP 401: .*Incorrect API key provided") as caught:
            await provider.complete(chat())
    finally:
        await provider.aclose()
    assert_scrubbed(caught.value)
    assert upstream.attempts(fault) == 1  # a 401 is not retried
    assert upstream.requests[0].headers["authorization"] == f"Bearer {KEY}"  # the key did go out


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_openai_error_event_mid_stream_quoting_the_key(
    upstream: FaultyUpstream, transport: str
) -> None:
    upstream.inject(Fault.KEY_ECHO_MID_STREAM, after_events=3)
    provider = openai_provider(upstream, transport)
    chunks: list[Chunk] = []
    try:
        with pytest.raises(ProviderError, match="failed mid-stream: Incorrect API key") as caught:
            async for chunk in provider.stream(chat(stream=True)):
                chunks.append(chunk)
    finally:
        await provider.aclose()
    assert len(chunks) == 3  # the stream had begun: the error comes after what was sent
    assert_scrubbed(caught.value)


@pytest.mark.parametrize("fault", [Fault.KEY_ECHO_JSON, Fault.KEY_ECHO_TEXT])
@pytest.mark.parametrize("masked", [False, True], ids=["whole", "masked"])
async def test_anthropic_401_quoting_the_key(upstream: FaultyUpstream, fault: Fault, masked: bool) -> None:
    upstream.inject(fault, masked=masked)
    provider = anthropic_provider(upstream)
    try:
        with pytest.raises(ProviderError, match="HTTP 401") as caught:
            await provider.complete(chat())
    finally:
        await provider.aclose()
    assert_scrubbed(caught.value)
    assert upstream.requests[0].headers["x-api-key"] == KEY


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_anthropic_error_event_mid_stream_quoting_the_key(
    upstream: FaultyUpstream, transport: str
) -> None:
    upstream.inject(Fault.KEY_ECHO_MID_STREAM, after_events=4, masked=True)
    provider = anthropic_provider(upstream, transport)
    chunks: list[Chunk] = []
    try:
        with pytest.raises(ProviderError, match="failed mid-stream: authentication_error") as caught:
            async for chunk in provider.stream(chat(stream=True)):
                chunks.append(chunk)
    finally:
        await provider.aclose()
    assert chunks  # message_start and the first text had been translated
    assert_scrubbed(caught.value)


def test_a_mid_stream_error_is_scrubbed_even_without_the_key() -> None:
    """parse_chunk on its own (no client to say which key went out) still blanks key shapes."""
    event = b'{"error": {"message": "Incorrect API key provided: ' + KEY.encode() + b'"}}'
    with pytest.raises(ProviderError) as caught:
        parse_chunk(event, MODEL)
    assert_scrubbed(caught.value)


async def test_a_rotated_key_is_still_scrubbed_from_a_later_echo(
    upstream: FaultyUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An echo of the previous key (an answer to a call made before the rotation) is blanked too."""
    provider = openai_provider(upstream)
    try:
        await provider.complete(chat())  # reads KEY
        provider.client._key_read_at = -1e9  # as if a second had passed
        monkeypatch.setenv("LLMOPS_TEST_EDGE_KEY", "another-rotated-secret-value-42")
        provider.client.api_key()
        assert_no_key(provider.client.redact(f"old key {KEY} and new another-rotated-secret-value-42"))
        assert "another-rotated" not in provider.client.redact("another-rotated-secret-value-42")
    finally:
        await provider.aclose()
