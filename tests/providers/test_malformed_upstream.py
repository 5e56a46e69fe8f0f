"""Issue 8, defects 3 and 4: whatever shape an upstream's answer has, or wherever it breaks off, the
provider raises a ProviderError (502), never a TypeError, ValueError, AttributeError or
ConnectionResetError (which the gateway turns into a 500, or mistakes for the client leaving)."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.errors import ProviderError, UpstreamTimeout
from daemon.providers.base import Call, Chunk, Embeddings
from daemon.providers.openai_compat import parse_chunk
from tests.fixtures.faulty_upstream import Fault, FaultyUpstream
from tests.providers.conftest import MODEL, TRANSPORTS, anthropic_provider, chat, openai_provider


def assert_upstream_error(error: ProviderError, match: str) -> None:
    assert type(error) is ProviderError and error.status == 502, error  # not a timeout, not a 500
    assert MODEL in error.message and match in error.message, error.message


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("fault", "options", "match"),
    [
        (Fault.BAD_USAGE, {"value": "lots"}, "prompt_tokens is a str"),
        (Fault.BAD_USAGE, {"value": "12"}, "prompt_tokens is a str"),  # int("12") would have believed it
        (Fault.BAD_USAGE, {"value": {"n": 1}}, "prompt_tokens is a dict"),
        (Fault.BAD_MESSAGE, {}, "message is not an object"),
        (Fault.INVALID_JSON, {}, "not JSON"),
        (Fault.RESET_AFTER_HEAD, {"body_bytes": 10}, "broke off its response"),
    ],
)
async def test_a_malformed_or_broken_completion_is_a_502(
    upstream: FaultyUpstream, transport: str, fault: Fault, options: dict[str, Any], match: str
) -> None:
    upstream.inject(fault, **options)
    provider = openai_provider(upstream, transport)
    try:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(chat())
    finally:
        await provider.aclose()
    assert_upstream_error(caught.value, match)
    assert upstream.attempts(fault) == 1 and len(upstream.requests) == 1  # a 200 had begun: final


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("fault", "options", "match"),
    [
        (Fault.BAD_USAGE, {"value": "lots"}, "prompt_tokens is a str"),
        (Fault.BAD_MESSAGE, {}, "delta is not an object"),
        (Fault.INVALID_JSON, {}, "not JSON"),
        (Fault.MALFORMED_SSE, {}, "without [DONE]"),
        (Fault.MISSING_DONE, {}, "without [DONE]"),
        (Fault.RESET_MID_STREAM, {"after_events": 2}, "broke off its response"),
    ],
)
async def test_a_stream_that_turns_bad_after_it_began_is_a_502(
    upstream: FaultyUpstream, transport: str, fault: Fault, options: dict[str, Any], match: str
) -> None:
    upstream.inject(fault, **options)
    provider = openai_provider(upstream, transport)
    chunks: list[Chunk] = []
    try:
        with pytest.raises(ProviderError) as caught:
            async for chunk in provider.stream(chat(stream=True)):
                chunks.append(chunk)
    finally:
        await provider.aclose()
    assert_upstream_error(caught.value, match)
    assert chunks, "the fault comes after the stream began"
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("fault", "stream", "match"),
    [
        (Fault.BAD_USAGE, False, "input_tokens is a str"),
        (Fault.BAD_MESSAGE, False, "without content"),
        (Fault.INVALID_JSON, False, "not JSON"),
        (Fault.BAD_USAGE, True, "output_tokens is a str"),
        (Fault.BAD_MESSAGE, True, "delta is not an object"),
        (Fault.INVALID_JSON, True, "not JSON"),
        (Fault.MALFORMED_SSE, True, "before message_stop"),
        (Fault.MISSING_DONE, True, "before message_stop"),
        (Fault.RESET_MID_STREAM, True, "broke off its response"),
    ],
)
async def test_a_malformed_or_broken_anthropic_answer_is_a_502(
    upstream: FaultyUpstream, transport: str, fault: Fault, stream: bool, match: str
) -> None:
    upstream.inject(fault)
    provider = anthropic_provider(upstream, transport)
    try:
        with pytest.raises(ProviderError) as caught:
            if stream:
                async for _ in provider.stream(chat(stream=True)):
                    pass
            else:
                await provider.complete(chat())
    finally:
        await provider.aclose()
    assert_upstream_error(caught.value, match)
    assert len(upstream.requests) == 1


async def test_malformed_embeddings_usage_is_a_502(upstream: FaultyUpstream) -> None:
    upstream.inject(Fault.BAD_USAGE, value="two")
    provider = openai_provider(upstream)
    call = Call(body={"model": MODEL, "input": ["a", "b"]}, model=MODEL, upstream_model="upstream-model")
    try:
        with pytest.raises(ProviderError, match="prompt_tokens is a str"):
            await provider.embed(call)
        result = await provider.embed(call)  # and without a fault, the answer is fine
    finally:
        await provider.aclose()
    assert isinstance(result, Embeddings) and result.usage.prompt_tokens == 2


@pytest.mark.parametrize(
    "event",
    [
        b'{"choices": "nope"}',
        b'{"choices": ["nope"]}',
        b'{"choices": [{"delta": {"content": 5}}]}',
        b'{"choices": [{"delta": {}, "finish_reason": {"x": 1}}]}',
        b'{"choices": [], "usage": "ten"}',
        b'{"choices": [], "usage": {"prompt_tokens": -3}}',
        b'{"choices": [], "usage": {"prompt_tokens": 1, "prompt_tokens_details": "none"}}',
        b'{"choices": [], "usage": {"prompt_tokens": 1, "prompt_tokens_details": {"cached_tokens": "1"}}}',
        b"[1, 2]",
    ],
)
def test_parse_chunk_rejects_shapes_it_cannot_read(event: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_chunk(event, MODEL)
    assert type(caught.value) is ProviderError


def test_parse_chunk_reads_what_servers_legitimately_send() -> None:
    assert (
        parse_chunk(b'{"choices": [{"delta": {"content": null}, "finish_reason": null}]}', MODEL).text == ""
    )
    usage = parse_chunk(b'{"choices": [], "usage": {"prompt_tokens": 3.0, "completion_tokens": null}}', MODEL)
    assert usage.usage is not None and usage.usage.prompt_tokens == 3 and usage.usage_only
    assert parse_chunk(b'{"choices": [{"delta": {"content": "hi"}}], "error": null}', MODEL).text == "hi"


async def test_a_timeout_is_not_mistaken_for_a_malformed_answer(upstream: FaultyUpstream) -> None:
    upstream.inject(Fault.HANG)
    provider = openai_provider(upstream, read=0.3)
    try:
        with pytest.raises(UpstreamTimeout):
            await provider.complete(chat())
    finally:
        await provider.aclose()
