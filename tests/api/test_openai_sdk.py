"""The official openai SDK, sync and async, against the daemon serving a fake OpenAI-compatible upstream."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.daemon_process import UPSTREAM_KEY, DaemonProcess
from tests.fixtures.fake_openai import FakeOpenAI


def trace(daemon: DaemonProcess, trace_id: str) -> dict:
    response = httpx.get(f"{daemon.url}/admin/traces/{trace_id}")
    assert response.status_code == 200, response.text
    return response.json()


def client(daemon: DaemonProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=daemon.url + "/v1", api_key="unused-in-local-mode", max_retries=0)


def test_sync_chat_is_served_and_traced_with_tokens_and_cost(gateway: DaemonProcess) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="fake",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}],
        temperature=0.2,
        max_tokens=50,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello world"
    assert raw.headers["x-llmops-model"] == "fake"
    assert float(raw.headers["x-llmops-overhead-ms"]) >= 0
    row = trace(gateway, raw.headers["x-llmops-trace-id"])
    assert row["status"] == "ok" and row["stream"] is False
    assert row["user"] == "local" and row["provider"] == "openai"
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    assert row["completion_tokens"] == completion.usage.completion_tokens
    expected = (completion.usage.prompt_tokens * 1.0 + completion.usage.completion_tokens * 2.0) / 1e6
    assert row["cost_usd"] == pytest.approx(expected)
    assert row["response"] == "Echo: hello world"
    assert row["request"]["messages"][1]["content"] == "hello world"
    assert row["request"]["params"]["temperature"] == 0.2
    assert row["latency_ms"] > 0


def test_sync_streaming_with_usage(gateway: DaemonProcess) -> None:
    stream = client(gateway).chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three four"
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    row = trace(gateway, stream.response.headers["x-llmops-trace-id"])  # this call's, not the newest
    assert row["stream"] is True and row["status"] == "ok"
    assert row["completion_tokens"] == usage.completion_tokens
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_stream_without_include_usage_hides_usage_chunk_but_traces_tokens(
    gateway: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    with client(gateway).chat.completions.with_streaming_response.create(
        model="fake", messages=[{"role": "user", "content": "a b c"}], stream=True
    ) as response:
        trace_id = response.headers["x-llmops-trace-id"]
        chunks = list(response.parse())
    assert chunks and all(c.usage is None for c in chunks)
    # the gateway asked the upstream for usage anyway, so the trace has real counts
    assert fake_upstream.requests[-1]["stream_options"] == {"include_usage": True}
    row = trace(gateway, trace_id)
    assert row["completion_tokens"] == 4 and row["metadata"] is None


def test_unknown_fields_pass_through_to_remote(gateway: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    client(gateway).chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "hi"}],
        seed=7,
        stop=["\n"],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        tool_choice="auto",
        response_format={"type": "json_object"},
        extra_body={"logit_bias": {"50256": -100}, "vendor_flag": {"x": 1}},
    )
    received = fake_upstream.requests[-1]
    assert received["vendor_flag"] == {"x": 1} and received["logit_bias"] == {"50256": -100}
    assert (
        received["seed"] == 7
        and received["tool_choice"] == "auto"
        and received["tools"][0]["function"]["name"] == "f"
    )
    assert received["model"] == "fake"
    assert fake_upstream.headers[-1]["Authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_embeddings_use_upstream_model_name(gateway: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    raw = client(gateway).embeddings.with_raw_response.create(
        model="fake-embed", input=["alpha beta", "gamma"]
    )
    result = raw.parse()
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == [10.0, 1.0, 0.0]
    assert fake_upstream.requests[-1]["model"] == "text-embedding-fake"
    row = trace(gateway, raw.headers["x-llmops-trace-id"])
    assert row["endpoint"] == "embeddings" and row["prompt_tokens"] == result.usage.prompt_tokens == 3
    assert row["cost_usd"] == pytest.approx(3 * 0.1 / 1e6)


def test_models_lists_the_profile(gateway: DaemonProcess) -> None:
    ids = {m.id for m in client(gateway).models.list()}
    assert ids == {"fake", "fake-embed"}


async def test_async_client_chat_stream_and_embeddings(gateway: DaemonProcess) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as aclient:
        completion = await aclient.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "async"}]
        )
        assert completion.choices[0].message.content == "Echo: async"
        stream = await aclient.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "async stream"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "Echo: async stream"
        embedded = await aclient.embeddings.create(model="fake-embed", input="x")
        assert len(embedded.data) == 1
        models = await aclient.models.list()
        assert {m.id async for m in models} == {"fake", "fake-embed"}


def test_trace_listing_filters_and_cursor(gateway: DaemonProcess) -> None:
    sdk = client(gateway)
    for i in range(5):
        sdk.chat.completions.create(model="fake", messages=[{"role": "user", "content": f"needle-{i} page"}])
    page = httpx.get(f"{gateway.url}/admin/traces", params={"q": "page", "limit": 2}).json()
    assert len(page["data"]) == 2 and page["next_cursor"] is not None
    seen = [r["id"] for r in page["data"]]
    while page["next_cursor"] is not None:
        page = httpx.get(
            f"{gateway.url}/admin/traces", params={"q": "page", "limit": 2, "cursor": page["next_cursor"]}
        ).json()
        seen += [r["id"] for r in page["data"]]
    assert len(seen) == len(set(seen)) == 5
    only = httpx.get(f"{gateway.url}/admin/traces", params={"q": "needle-3"}).json()["data"]
    assert len(only) == 1
    assert httpx.get(f"{gateway.url}/admin/traces", params={"model": "nope"}).json()["data"] == []
    failed = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
    )
    errors = httpx.get(f"{gateway.url}/admin/traces", params={"status": "error"}).json()["data"]
    assert errors and all(r["status"] == "error" for r in errors)  # a failed call is listed, and only those
    assert failed.headers["x-llmops-trace-id"] in [r["id"] for r in errors]


def test_user_field_names_the_user_in_local_mode(gateway: DaemonProcess) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="fake", messages=[{"role": "user", "content": "who"}], user="erin"
    )
    assert trace(gateway, raw.headers["x-llmops-trace-id"])["user"] == "erin"
    rows = httpx.get(f"{gateway.url}/admin/traces", params={"user": "erin"}).json()["data"]
    assert [r["id"] for r in rows] == [raw.headers["x-llmops-trace-id"]]
