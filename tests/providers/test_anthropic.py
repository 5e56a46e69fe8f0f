"""AnthropicProvider: the pure translation both ways, then the provider against a fake Messages API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from daemon.config.schema import AnthropicModel, Timeouts
from daemon.core.cost import Usage
from daemon.errors import InvalidRequest, ModelUnavailable, ProviderError, UpstreamTimeout
from daemon.providers.anthropic import AnthropicProvider
from daemon.providers.anthropic_stream import StreamTranslator
from daemon.providers.anthropic_translate import to_completion, to_messages_request
from daemon.providers.base import Call, Chunk
from tests.fixtures.fake_anthropic import FakeAnthropic, Reply, stream_events

KEY = "sk-ant-test-7f3a9c-not-a-real-key"
KEY_ENV = "LLMOPS_TEST_ANTHROPIC_KEY"
MODEL = "claude-test"  # the profile's name
UPSTREAM = "claude-upstream-1"  # the name Anthropic knows
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat(messages: list[dict[str, Any]] | None = None, **params: Any) -> Call:
    body = {"model": MODEL, "messages": messages or [{"role": "user", "content": "Hi"}], **params}
    return Call(body=body, model=MODEL, upstream_model=UPSTREAM)


def translate(messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return to_messages_request({"model": MODEL, "messages": messages, **params}, UPSTREAM, 1024)


def payloads(chunks: list[Chunk]) -> list[dict[str, Any]]:
    return [orjson.loads(chunk.payload) for chunk in chunks]


def tool_call_deltas(chunks: list[Chunk]) -> list[dict[str, Any]]:
    deltas = [body["choices"][0]["delta"] for body in payloads(chunks) if body["choices"]]
    return [call for delta in deltas for call in delta.get("tool_calls", [])]


def feed_all(events: list[tuple[str, dict[str, Any]]]) -> tuple[StreamTranslator, list[Chunk]]:
    translator = StreamTranslator(MODEL, created=1_700_000_000, upstream=MODEL)
    chunks = [chunk for name, data in events for chunk in translator.feed(name, orjson.dumps(data))]
    return translator, chunks


# -- request translation -------------------------------------------------------------------------


def test_conversation_with_system_and_tool_round_trip() -> None:
    request = translate(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
            {"role": "user", "content": "And tomorrow?"},
        ]
    )
    assert request["system"] == "You are terse.\n\nAnswer in French."
    assert request["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, sunny"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    assert request["model"] == UPSTREAM


def test_consecutive_same_role_messages_are_merged_and_empty_ones_dropped() -> None:
    request = translate(
        [
            {"role": "user", "content": "one"},
            {"role": "user", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": "four"},
        ]
    )
    assert "system" not in request
    assert request["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}],
        },
    ]


def test_image_parts_become_image_blocks() -> None:
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    blocks = translate([{"role": "user", "content": parts}])["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:text/plain,hi"}}]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
            "messages[0].content[0].type",
        ),
        ({"role": "function", "name": "f", "content": "x"}, "messages[0].role"),
        ({"role": "tool", "content": "no id"}, "messages[0].tool_call_id"),
        (
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"role": "system", "content": "only a system prompt"}, "messages"),
    ],
)
def test_untranslatable_messages_are_rejected_naming_the_field(message: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        translate([message])
    assert caught.value.param == param


def test_sampling_parameters() -> None:
    request = translate(
        [{"role": "user", "content": "hi"}],
        max_tokens=50,
        max_completion_tokens=70,
        temperature=1.6,
        top_p=0.9,
        stop="END",
        user="alice",
        seed=7,
        n=1,
        frequency_penalty=0.5,
    )
    assert request["max_tokens"] == 70  # the newer OpenAI name wins
    assert request["temperature"] == 1.0  # Anthropic's maximum
    assert request["top_p"] == 0.9
    assert request["stop_sequences"] == ["END"]
    assert request["metadata"] == {"user_id": "alice"}
    assert not {"seed", "n", "frequency_penalty", "user", "stop"} & request.keys()
    assert translate([{"role": "user", "content": "hi"}], stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert translate([{"role": "user", "content": "hi"}])["max_tokens"] == 1024  # Anthropic requires it


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tools_and_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    request = translate([{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL], tool_choice=choice)
    assert request["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert request["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_tool_use() -> None:
    request = translate([{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL], parallel_tool_calls=False)
    assert request["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


# -- response translation ------------------------------------------------------------------------


def test_text_response_becomes_chat_completion_with_cache_usage() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": UPSTREAM,
        "content": [{"type": "text", "text": "Bonjour"}, {"type": "text", "text": " !"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 4,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
        },
    }
    completion = to_completion(message, MODEL, created=1_700_000_000, upstream=MODEL)
    assert completion.text == "Bonjour !"
    assert completion.finish_reason == "stop"
    assert completion.usage == Usage(prompt_tokens=130, completion_tokens=4, cached_tokens=100)
    body = completion.body
    assert (body["object"], body["model"], body["created"]) == ("chat.completion", MODEL, 1_700_000_000)
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Bonjour !"}
    assert body["usage"] == {
        "prompt_tokens": 130,
        "completion_tokens": 4,
        "total_tokens": 134,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


def test_tool_use_response_becomes_tool_calls() -> None:
    tool_use = {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}}
    message = {"id": "msg_2", "content": [tool_use], "stop_reason": "tool_use", "usage": {}}
    completion = to_completion(message, MODEL, created=0, upstream=MODEL)
    choice = completion.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_9" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls")],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, finish: str) -> None:
    message = {"id": "m", "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}
    assert to_completion(message, MODEL, created=0, upstream=MODEL).finish_reason == finish


def test_response_without_content_is_a_provider_error() -> None:
    with pytest.raises(ProviderError, match=MODEL):
        to_completion({"id": "m", "type": "message"}, MODEL, created=0, upstream=MODEL)


# -- stream translation --------------------------------------------------------------------------


def test_text_stream_becomes_chunks_then_finish_then_usage() -> None:
    reply = Reply.text("Hello there, world", input_tokens=9, output_tokens=3, cache_read_input_tokens=4)
    translator, chunks = feed_all(stream_events(reply, "msg_s1", UPSTREAM))
    bodies = payloads(chunks)
    assert bodies[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(b["id"] == "chatcmpl-msg_s1" and b["model"] == MODEL for b in bodies)
    assert all(b["object"] == "chat.completion.chunk" for b in bodies)
    assert "".join(c.text for c in chunks) == "Hello there, world"
    assert len([c for c in chunks if c.text]) == 3  # one chunk per delta
    finish, usage = chunks[-2], chunks[-1]
    assert finish.finish_reason == "stop" and bodies[-2]["choices"][0]["finish_reason"] == "stop"
    assert usage.usage_only and bodies[-1]["choices"] == []
    # input from message_start, output from message_delta (which replaces message_start's 1)
    assert usage.usage == Usage(prompt_tokens=13, completion_tokens=3, cached_tokens=4)
    assert bodies[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}
    assert translator.stopped
    translator.close()  # complete: no error


def test_tool_use_stream_becomes_tool_call_deltas() -> None:
    arguments = {"city": "Paris", "unit": "celsius"}
    reply = Reply.tool_use("get_weather", arguments, id="toolu_s", text="Let me check.")
    _, chunks = feed_all(stream_events(reply, "msg_s2", UPSTREAM))
    calls = tool_call_deltas(chunks)
    assert calls[0] == {
        "index": 0,
        "id": "toolu_s",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(c["index"] == 0 for c in calls) and len(calls) > 2
    assert orjson.loads("".join(c["function"]["arguments"] for c in calls)) == arguments
    assert "".join(c.text for c in chunks) == "Let me check."
    assert chunks[-2].finish_reason == "tool_calls"


def test_stream_error_event_raises_provider_error() -> None:
    translator = StreamTranslator(MODEL, created=0, upstream=MODEL)
    translator.feed("message_start", orjson.dumps({"type": "message_start", "message": {"id": "m"}}))
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(ProviderError, match="overloaded_error: Overloaded") as caught:
        translator.feed("error", orjson.dumps(error))
    assert MODEL in caught.value.message


def test_stream_without_message_stop_is_incomplete() -> None:
    events = stream_events(Reply(), "msg_s3", UPSTREAM)
    translator, _ = feed_all(events[:-1])
    with pytest.raises(ProviderError, match="before message_stop"):
        translator.close()


def test_stream_rejects_garbage_and_out_of_order_events() -> None:
    translator = StreamTranslator(MODEL, created=0, upstream=MODEL)
    assert translator.feed("ping", b'{"type": "ping"}') == []
    with pytest.raises(ProviderError, match="before message_start"):
        translator.feed("content_block_delta", b'{"type": "content_block_delta", "index": 0}')
    with pytest.raises(ProviderError, match="not JSON"):
        translator.feed("message_start", b"{not json")


# -- the provider against the fake API -----------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> FakeAnthropic:
    server.reset()
    monkeypatch.setenv(KEY_ENV, KEY)
    return server


def make_provider(fake: FakeAnthropic, **config: Any) -> AnthropicProvider:
    settings: dict[str, Any] = {"timeout": Timeouts(connect=2, read=5), "retries": 2, **config}
    model = AnthropicModel(
        provider="anthropic", base_url=fake.base_url, api_key=f"${{{KEY_ENV}}}", **settings
    )
    return AnthropicProvider(MODEL, model)


@pytest.fixture
async def provider(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    provider = make_provider(fake)
    yield provider
    await provider.aclose()


async def drain(provider: AnthropicProvider, call: Call, into: list[Chunk]) -> None:
    async for chunk in provider.stream(call):
        into.append(chunk)


async def test_complete_sends_a_messages_request_and_returns_a_chat_completion(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.reply = Reply.text("Bonjour.", input_tokens=21, output_tokens=3)
    call = chat([{"role": "system", "content": "Speak French."}, {"role": "user", "content": "Hello"}])
    completion = await provider.complete(call)

    assert completion.text == "Bonjour."
    assert completion.finish_reason == "stop"
    assert completion.usage == Usage(prompt_tokens=21, completion_tokens=3)
    assert completion.body["model"] == MODEL
    assert completion.body["choices"][0]["message"]["content"] == "Bonjour."
    [request] = fake.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.body["model"] == UPSTREAM
    assert request.body["system"] == "Speak French."
    assert request.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert request.body["max_tokens"] == 1024
    assert "stream" not in request.body


async def test_stream_yields_openai_chunks_and_usage(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.reply = Reply.text(
        "Streaming works fine", input_tokens=30, output_tokens=4, cache_read_input_tokens=8
    )
    chunks: list[Chunk] = []
    await drain(provider, chat(stream=True, stream_options={"include_usage": True}), chunks)

    assert fake.requests[0].body["stream"] is True
    assert "stream_options" not in fake.requests[0].body
    assert "".join(c.text for c in chunks) == "Streaming works fine"
    bodies = payloads(chunks)
    assert bodies[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage_only and bodies[-1]["choices"] == []
    assert chunks[-1].usage == Usage(prompt_tokens=38, completion_tokens=4, cached_tokens=8)
    assert sum(c.usage_only for c in chunks) == 1


async def test_tool_use_round_trip(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.reply = Reply.tool_use("get_weather", {"city": "Oslo"}, id="toolu_77")
    call = chat(
        [{"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER_TOOL], tool_choice="required"
    )
    completion = await provider.complete(call)

    assert completion.finish_reason == "tool_calls"
    [tool_call] = completion.body["choices"][0]["message"]["tool_calls"]
    assert tool_call["id"] == "toolu_77"
    assert orjson.loads(tool_call["function"]["arguments"]) == {"city": "Oslo"}
    sent = fake.requests[0].body
    assert sent["tools"][0]["name"] == "get_weather" and sent["tool_choice"] == {"type": "any"}

    # The client answers the call; the fake sees a tool_result in a user turn.
    fake.reply = Reply.text("It is 3C in Oslo.")
    follow_up = [
        {"role": "user", "content": "Weather in Oslo?"},
        completion.body["choices"][0]["message"],
        {"role": "tool", "tool_call_id": "toolu_77", "content": "3C"},
    ]
    chunks: list[Chunk] = []
    await drain(provider, chat(follow_up, tools=[WEATHER_TOOL], stream=True), chunks)
    assert "".join(c.text for c in chunks) == "It is 3C in Oslo."
    turns = fake.requests[1].body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "toolu_77", "name": "get_weather", "input": {"city": "Oslo"}}
    ]
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_77", "content": "3C"}]


async def test_streamed_tool_call_arguments_reassemble(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    arguments = {"city": "Lisbon", "days": [1, 2, 3]}
    fake.reply = Reply.tool_use("get_weather", arguments)
    chunks: list[Chunk] = []
    await drain(provider, chat(tools=[WEATHER_TOOL], stream=True), chunks)
    pieces = [call["function"]["arguments"] for call in tool_call_deltas(chunks)]
    assert orjson.loads("".join(pieces)) == arguments
    assert chunks[-2].finish_reason == "tool_calls"


@pytest.mark.parametrize(("status", "retry_after"), [(529, "0"), (500, None), (429, "0")])
async def test_retries_overloaded_and_server_errors_then_succeeds(
    fake: FakeAnthropic, provider: AnthropicProvider, status: int, retry_after: str | None
) -> None:
    fake.fail_next(2, status=status, retry_after=retry_after)
    completion = await provider.complete(chat())
    assert completion.text == Reply().content[0]["text"]
    assert len(fake.requests) == 3


async def test_retries_give_up_after_the_configured_count(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.fail_next(3, status=503, retry_after="0")
    with pytest.raises(ProviderError, match="HTTP 503"):
        await provider.complete(chat())
    assert len(fake.requests) == 3  # the first try and 2 retries


async def test_bad_request_is_not_retried_and_never_names_the_key(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.fail_next(1, status=400, error_type="invalid_request_error", message="max_tokens: too large")
    with pytest.raises(ProviderError) as caught:
        await provider.complete(chat())
    error = caught.value
    assert error.status == 502
    assert MODEL in error.message and "max_tokens: too large" in error.message
    assert KEY not in error.message and KEY not in str(error.to_body())
    assert len(fake.requests) == 1


async def test_wrong_key_is_reported_without_the_key(
    fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-ant-wrong-key-123")
    provider = make_provider(fake)
    try:
        with pytest.raises(ProviderError, match="HTTP 401") as caught:
            await provider.complete(chat())
    finally:
        await provider.aclose()
    assert "sk-ant-wrong-key-123" not in caught.value.message


async def test_missing_key_env_makes_the_model_unavailable(
    fake: FakeAnthropic, provider: AnthropicProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ModelUnavailable, match=KEY_ENV):
        await provider.complete(chat())
    assert fake.requests == []


async def test_anthropic_version_comes_from_the_profile(fake: FakeAnthropic) -> None:
    provider = make_provider(fake, anthropic_version="2099-01-01")
    try:
        with pytest.raises(ProviderError, match="anthropic-version"):
            await provider.complete(chat())
    finally:
        await provider.aclose()
    assert fake.requests[0].headers["anthropic-version"] == "2099-01-01"


@pytest.mark.parametrize("drop_connection", [False, True], ids=["body-ended", "connection-dropped"])
async def test_broken_stream_is_a_provider_error(
    fake: FakeAnthropic, provider: AnthropicProvider, drop_connection: bool
) -> None:
    fake.break_next_stream(after_events=5, drop_connection=drop_connection)
    chunks: list[Chunk] = []
    with pytest.raises(ProviderError) as caught:
        await drain(provider, chat(stream=True), chunks)
    assert chunks and chunks[0].text == ""  # the stream had started
    assert not any(c.usage_only for c in chunks)
    assert MODEL in caught.value.message and KEY not in caught.value.message


async def test_error_event_mid_stream_is_a_provider_error(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.error_next_stream(after_events=4, message="Overloaded right now")
    chunks: list[Chunk] = []
    with pytest.raises(ProviderError, match="Overloaded right now"):
        await drain(provider, chat(stream=True), chunks)
    assert any(c.text for c in chunks)


async def test_slow_upstream_times_out(fake: FakeAnthropic) -> None:
    provider = make_provider(fake, timeout=Timeouts(connect=2, read=0.3), retries=0)
    fake.delay_next(10)
    try:
        with pytest.raises(UpstreamTimeout) as caught:
            await provider.complete(chat())
    finally:
        await provider.aclose()
    assert caught.value.status == 504 and MODEL in caught.value.message


async def test_stalled_stream_times_out(fake: FakeAnthropic) -> None:
    provider = make_provider(fake, timeout=Timeouts(connect=2, read=0.3), retries=0)
    fake.stall_next_stream(after_events=3, seconds=10)
    chunks: list[Chunk] = []
    try:
        with pytest.raises(UpstreamTimeout):
            await drain(provider, chat(stream=True), chunks)
    finally:
        await provider.aclose()
    assert chunks  # timed out mid-stream, not before it


async def test_embed_is_refused(provider: AnthropicProvider) -> None:
    with pytest.raises(InvalidRequest, match="no embeddings API") as caught:
        await provider.embed(Call(body={"model": MODEL, "input": "x"}, model=MODEL, upstream_model=UPSTREAM))
    assert caught.value.param == "model"


async def test_aclose_closes_the_pooled_client(fake: FakeAnthropic) -> None:
    provider = make_provider(fake)
    await provider.complete(chat())
    assert not provider.client.closed
    await provider.aclose()
    assert provider.client.closed
