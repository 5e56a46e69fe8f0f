"""The request pipeline with a toy stage of the test's own: it answers early, rewrites the call and
its stream, picks the candidates, and sees every outcome, for chat, streaming chat and embeddings,
through a real daemon over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from daemon.core.cost import Usage
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.stage import Answer, Stage
from daemon.providers.base import Chunk, Completion, Embeddings
from daemon.storage import db
from tests.daemon_process import fake_profile
from tests.fixtures.fake_openai import FakeOpenAI, free_port
from tests.inprocess import InProcessDaemon

TOY_TABLE = "CREATE TABLE IF NOT EXISTS toy_outcomes (trace_id TEXT, status TEXT, text TEXT)"


class ToyStage(Stage):
    """Does what the request's `x-toy` header says."""

    name = "toy"

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str, str]] = []

    async def before(self, ctx: Context) -> Answer | None:
        mode = ctx.request_headers.get(b"x-toy", b"").decode()
        if mode == "answer":
            ctx.decide(self.name, "answered", "x-toy: answer")
            if ctx.endpoint == "embeddings":
                body = {"object": "list", "model": "toy", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.5]}]}  # fmt: skip
                return Embeddings(body=body, usage=Usage(1))
            message = {"role": "assistant", "content": "toy answer"}
            body = {"id": "chatcmpl-toy", "object": "chat.completion", "created": 1, "model": "toy",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}  # fmt: skip
            return Completion(body=body, usage=Usage(3, 2), text="toy answer", finish_reason="stop")
        if mode == "rewrite":
            if ctx.endpoint == "embeddings":
                ctx.body = {**ctx.body, "input": "rewritten input"}
            else:
                ctx.body = {**ctx.body, "messages": [{"role": "user", "content": "rewritten by the toy"}]}
            ctx.reply_headers["x-toy"] = "rewrote"
            ctx.decide(self.name, "rewrote", "x-toy: rewrite")
        if mode == "fallback":
            ctx.candidates = [ctx.runtime.model("fake-down"), ctx.runtime.model("fake")]
        return None

    def on_chunk(self, ctx: Context, chunk: Chunk) -> Chunk | None:
        if ctx.request_headers.get(b"x-toy") != b"shout" or not chunk.text:
            return chunk
        payload = orjson.loads(chunk.payload)
        payload["choices"][0]["delta"]["content"] = chunk.text.upper()
        return Chunk(orjson.dumps(payload), chunk.text.upper(), chunk.usage, chunk.finish_reason)

    def after(self, ctx: Context, outcome: Outcome) -> None:
        row = (ctx.trace.id, outcome.status, outcome.text)
        self.outcomes.append(row)

        def write(conn: Any) -> None:
            conn.execute(TOY_TABLE)
            conn.execute("INSERT INTO toy_outcomes VALUES (?, ?, ?)", row)

        ctx.jobs.append(write)


@pytest.fixture(scope="module")
def toy() -> ToyStage:
    return ToyStage()


@pytest.fixture(scope="module")
def daemon(
    fake_upstream: FakeOpenAI, toy: ToyStage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessDaemon]:
    folder = tmp_path_factory.mktemp("pipeline")
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connecting fails at once
    extra = f"""
  fake-down:
    provider: openai
    base_url: "{dead}"
    price: {{input: 5.0, output: 5.0}}
    retries: 0
"""
    (folder / "profile.yaml").write_text(fake_profile(fake_upstream.base_url, extra=extra))
    served = InProcessDaemon(
        folder / "profile.yaml", folder / "llmops.db", [lambda profile, services, models: toy]
    )
    yield served.start()
    served.stop()


def trace_of(daemon: InProcessDaemon, trace_id: str) -> dict[str, Any]:
    response = httpx.get(f"{daemon.url}/admin/traces/{trace_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def toy_row(daemon: InProcessDaemon, trace_id: str) -> tuple[str, str, str] | None:
    # The daemon's own SQLite library: two SQLite builds in one process break each other's POSIX locks.
    conn = db.connect_sync(daemon.db)
    try:
        row = conn.execute("SELECT * FROM toy_outcomes WHERE trace_id = ?", (trace_id,)).fetchone()
    finally:
        conn.close()
    return tuple(row) if row else None


def client(daemon: InProcessDaemon, mode: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=daemon.url + "/v1", api_key="local", default_headers={"x-toy": mode}, max_retries=0
    )


HELLO = [{"role": "user", "content": "hello there"}]


def text_of(response: httpx.Response, stream: bool) -> str:
    if not stream:
        return str(response.json()["choices"][0]["message"]["content"])
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(event) for event in events[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_a_stage_answers_chat_early(daemon: InProcessDaemon, fake_upstream: FakeOpenAI) -> None:
    calls = len(fake_upstream.requests)
    raw = client(daemon, "answer").chat.completions.with_raw_response.create(model="fake", messages=HELLO)
    assert raw.parse().choices[0].message.content == "toy answer"
    trace = trace_of(daemon, raw.headers["x-llmops-trace-id"])
    assert len(fake_upstream.requests) == calls  # no provider was called
    assert trace["attempts"] == [] and trace["status"] == "ok" and trace["response"] == "toy answer"
    assert trace["decisions"] == [{"stage": "toy", "outcome": "answered", "reason": "x-toy: answer"}]
    assert toy_row(daemon, trace["id"]) == (trace["id"], "ok", "toy answer")


def test_a_stage_answers_a_stream_early_as_sse(daemon: InProcessDaemon, fake_upstream: FakeOpenAI) -> None:
    calls = len(fake_upstream.requests)
    stream = client(daemon, "answer").chat.completions.create(
        model="fake", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "toy answer"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2
    assert len(fake_upstream.requests) == calls
    trace_id = stream.response.headers["x-llmops-trace-id"]
    assert toy_row(daemon, trace_id) == (trace_id, "ok", "toy answer")


def test_a_stage_answers_embeddings_early(daemon: InProcessDaemon) -> None:
    raw = client(daemon, "answer").embeddings.with_raw_response.create(model="fake-embed", input="x")
    assert raw.parse().data[0].embedding == [0.5, 0.5]
    trace_id = raw.headers["x-llmops-trace-id"]
    assert toy_row(daemon, trace_id) == (trace_id, "ok", "")


@pytest.mark.parametrize("stream", [False, True])
def test_a_stage_rewrites_a_chat_call(
    daemon: InProcessDaemon, fake_upstream: FakeOpenAI, stream: bool
) -> None:
    body = {"model": "fake", "messages": HELLO, "stream": stream}
    response = httpx.post(
        f"{daemon.url}/v1/chat/completions", json=body, headers={"x-toy": "rewrite"}, timeout=10
    )
    assert response.status_code == 200 and response.headers["x-toy"] == "rewrote"
    assert fake_upstream.requests[-1]["messages"] == [{"role": "user", "content": "rewritten by the toy"}]
    assert text_of(response, stream) == "Echo: rewritten by the toy"
    trace = trace_of(daemon, response.headers["x-llmops-trace-id"])
    assert trace["request"]["messages"] == [
        {"role": "user", "content": "rewritten by the toy"}
    ]  # after stages
    assert trace["decisions"][0]["outcome"] == "rewrote"


def test_a_stage_rewrites_an_embeddings_call(daemon: InProcessDaemon, fake_upstream: FakeOpenAI) -> None:
    raw = client(daemon, "rewrite").embeddings.with_raw_response.create(model="fake-embed", input="original")
    assert fake_upstream.requests[-1]["input"] == "rewritten input"
    assert trace_of(daemon, raw.headers["x-llmops-trace-id"])["request"] == {"input": "rewritten input"}


def test_a_stage_rewrites_each_chunk_of_a_stream(daemon: InProcessDaemon) -> None:
    stream = client(daemon, "shout").chat.completions.create(model="fake", messages=HELLO, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "ECHO: HELLO THERE"
    trace = trace_of(daemon, stream.response.headers["x-llmops-trace-id"])
    assert trace["response"] == "ECHO: HELLO THERE"  # the trace keeps what the client got


def test_the_stage_sees_an_upstream_failure(daemon: InProcessDaemon, fake_upstream: FakeOpenAI) -> None:
    fake_upstream.inject(status=400)
    response = httpx.post(
        f"{daemon.url}/v1/chat/completions", json={"model": "fake", "messages": HELLO}, timeout=10
    )
    assert response.status_code == 502
    trace_id = response.headers["x-llmops-trace-id"]
    assert toy_row(daemon, trace_id) == (trace_id, "error", "")
    assert trace_of(daemon, trace_id)["attempts"][0]["status"] == "error"


def test_the_stage_sees_a_client_leave_mid_stream(daemon: InProcessDaemon, fake_upstream: FakeOpenAI) -> None:
    fake_upstream.inject(stream="slow")
    body = {"model": "fake", "stream": True, "messages": [{"role": "user", "content": "word " * 60}]}
    with httpx.stream("POST", f"{daemon.url}/v1/chat/completions", json=body, timeout=10) as response:
        trace_id = response.headers["x-llmops-trace-id"]
        received = b""
        for piece in response.iter_bytes():
            received += piece
            if b"Echo" in received:
                break
    deadline = time.monotonic() + 10
    while (row := toy_row(daemon, trace_id)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert row is not None and row[1] == "cancelled" and row[2].startswith("Echo:")
    trace = trace_of(daemon, trace_id)
    assert trace["status"] == "cancelled" and trace["attempts"][0]["status"] == "cancelled"


def test_fallback_tries_the_next_candidate_and_records_every_attempt(daemon: InProcessDaemon) -> None:
    raw = client(daemon, "fallback").chat.completions.with_raw_response.create(model="fake", messages=HELLO)
    assert raw.parse().choices[0].message.content == "Echo: hello there"
    assert raw.headers["x-llmops-model"] == "fake"
    trace = trace_of(daemon, raw.headers["x-llmops-trace-id"])
    down, served = trace["attempts"]
    assert (down["model"], down["status"], down["http_status"]) == ("fake-down", "error", 502)
    assert "fake-down" in down["error"] and down["cost_usd"] == 0
    assert (served["model"], served["status"]) == ("fake", "ok") and served["cost_usd"] > 0
    assert trace["served_model"] == "fake"
    assert trace["cost_usd"] == pytest.approx(down["cost_usd"] + served["cost_usd"])
    assert trace["decisions"][0]["stage"] == "fallback" and trace["decisions"][0]["outcome"] == "fake"


def test_a_stream_falls_back_before_its_first_byte(daemon: InProcessDaemon) -> None:
    stream = client(daemon, "fallback").chat.completions.create(model="fake", messages=HELLO, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Echo: hello there"
    trace = trace_of(daemon, stream.response.headers["x-llmops-trace-id"])
    assert [a["status"] for a in trace["attempts"]] == ["error", "ok"]


def test_no_stage_no_change(tmp_path: Path, fake_upstream: FakeOpenAI) -> None:
    """The same daemon without stages: no decisions, one attempt."""
    (tmp_path / "profile.yaml").write_text(fake_profile(fake_upstream.base_url))
    bare = InProcessDaemon(tmp_path / "profile.yaml", tmp_path / "llmops.db", []).start()
    try:
        raw = client(bare, "answer").chat.completions.with_raw_response.create(model="fake", messages=HELLO)
        assert raw.parse().choices[0].message.content == "Echo: hello there"
        trace = trace_of(bare, raw.headers["x-llmops-trace-id"])
        assert trace["decisions"] == [] and len(trace["attempts"]) == 1
    finally:
        bare.stop()
