"""The openai SDK through the daemon to in-process GGUF models: gemma (its PyPI package) and MiniLM."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import orjson
import pytest

from tests.daemon_process import DaemonProcess, shared_path

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    minilm = shared_path("models", "all-MiniLM-L6-v2-q8_0.gguf")
    folder = tmp_path_factory.mktemp("local")
    profile = folder / "profile.yaml"
    profile.write_text(f"""
name: local
default_model: gemma
models:
  gemma:
    provider: llama_cpp
    path: "package:gemma3-270m"
    chat_format: gemma
    n_ctx: 1024
    load: eager
    shadow_price: gpt-4o-mini
  minilm:
    provider: llama_cpp
    path: "{minilm}"
    embedding: true
    n_ctx: 512
""")
    daemon = DaemonProcess(profile=profile, db=folder / "t.db").start(timeout=180)
    yield daemon
    daemon.stop()


def sdk(daemon: DaemonProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=daemon.url + "/v1", api_key="x", max_retries=0, timeout=120)


def model_stats(daemon: DaemonProcess, name: str) -> dict:
    models = httpx.get(daemon.url + "/admin/status").json()["models"]
    return next(m for m in models if m["name"] == name)


def test_chat_with_usage_and_shadow_cost(local: DaemonProcess) -> None:
    raw = sdk(local).chat.completions.with_raw_response.create(
        model="gemma",
        messages=[{"role": "user", "content": "Name three colours."}],
        max_tokens=16,
        temperature=0,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert 0 < completion.usage.completion_tokens <= 16
    row = httpx.get(f"{local.url}/admin/traces/{raw.headers['x-llmops-trace-id']}").json()
    assert row["provider"] == "llama_cpp" and row["cost_usd"] == 0
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    expected = (completion.usage.prompt_tokens * 0.15 + completion.usage.completion_tokens * 0.60) / 1e6
    assert row["shadow_cost_usd"] == pytest.approx(expected)


def test_streaming_matches_non_streaming_greedy(local: DaemonProcess) -> None:
    body = {
        "model": "gemma",
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 12,
        "temperature": 0,
        "seed": 1,
    }
    whole = sdk(local).chat.completions.create(**body).choices[0].message.content
    chunks = list(
        sdk(local).chat.completions.create(**body, stream=True, stream_options={"include_usage": True})
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_embeddings_match_reference(local: DaemonProcess) -> None:
    reference = orjson.loads(shared_path("models", "minilm_reference.json").read_bytes())["vectors"]
    chosen = [v for v in reference if v["text"]][:6]
    result = sdk(local).embeddings.create(model="minilm", input=[v["text"] for v in chosen])
    assert [item.index for item in result.data] == list(range(len(chosen)))
    for item, ref in zip(result.data, chosen, strict=True):
        got, want = np.array(item.embedding), np.array(ref["embedding"])
        assert float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want))) >= 0.999
    assert result.usage.prompt_tokens > 0


def test_client_disconnect_cancels_generation(local: DaemonProcess) -> None:
    before = model_stats(local, "gemma")
    body = orjson.dumps(
        {
            "model": "gemma",
            "stream": True,
            "max_tokens": 400,
            "temperature": 0,
            "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
        }
    )
    with socket.create_connection(("127.0.0.1", local.port)) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        received = b""
        while received.count(b"data: ") < 4:  # a few tokens arrived: generation is under way
            received += conn.recv(4096)
    deadline = time.monotonic() + 30
    while model_stats(local, "gemma")["cancelled_generations"] == before["cancelled_generations"]:
        assert time.monotonic() < deadline, "generation was not cancelled"
        time.sleep(0.05)
    generated = model_stats(local, "gemma")["generated_tokens"] - before["generated_tokens"]
    assert generated < 200  # stopped long before max_tokens=400
    rows = httpx.get(local.url + "/admin/traces", params={"status": "cancelled"}).json()["data"]
    assert rows and rows[0]["http_status"] == 499
    # the model is free again at once
    assert (
        sdk(local)
        .chat.completions.create(model="gemma", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        .choices
    )
