"""The semantic cache through a real daemon: the real MiniLM embeds questions (converted from its
PyPI package into a temporary data dir), sqlite-vec finds the nearest entries; chat answers come
from the fake upstream."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.storage.cache import VECTOR_TABLE
from tests.daemon_process import DaemonProcess, fake_profile, local_package, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

pytestmark = pytest.mark.model
CHAT = "/v1/chat/completions"
MINILM = """
  minilm:
    provider: llama_cpp
    path: "package:all-minilm-l6-v2"
    embedding: true
    n_ctx: 512
    load: eager
"""


def semantic_profile(base_url: str, embedder: str = "minilm", extra_models: str = "") -> str:
    models = MINILM + extra_models
    return (
        fake_profile(base_url, extra=models)
        + f"cache:\n  scope: user\n  semantic: {{embedder: {embedder}}}\n"
    )


def ask(daemon: DaemonProcess, question: str, *, system: str | None = None, stream: bool = False,
        key: str | None = None, store: bool = True) -> httpx.Response:  # fmt: skip
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": question}
    ]
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if not store:
        headers["cache-control"] = "no-store"
    body = {"model": "fake", "messages": messages, "stream": stream}
    return httpx.post(daemon.url + CHAT, json=body, headers=headers, timeout=30)


def trace(daemon: DaemonProcess, response: httpx.Response) -> dict[str, Any]:
    return dict(httpx.get(f"{daemon.url}/admin/traces/{response.headers['x-llmops-trace-id']}").json())


def vectors(daemon: DaemonProcess) -> int:
    conn = sqlite3.connect(daemon.db)
    try:
        names = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'cache_vectors_%'")
        ]
        tables = [name for name in names if VECTOR_TABLE.match(name)]
        return sum(conn.execute(f"SELECT count(*) FROM {t}_rowids").fetchone()[0] for t in tables)
    finally:
        conn.close()


@pytest.fixture
def semantic(new_daemon: DaemonProcess, fake_upstream: FakeOpenAI, tmp_path: Path) -> Iterator[DaemonProcess]:
    local_package("all_minilm_l6_v2")
    new_daemon.env["LLMOPS_DATA_DIR"] = str(tmp_path / "data")
    new_daemon.profile.write_text(semantic_profile(fake_upstream.base_url))
    yield new_daemon.start(timeout=120)


def stored(daemon: DaemonProcess, count: int) -> None:
    wait_until(lambda: vectors(daemon) >= count, timeout=10, what=f"{count} vectors saved")


def test_a_rewording_is_answered_by_meaning_and_a_different_question_is_not(
    semantic: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    first = ask(semantic, "What is the capital of France?")
    assert first.headers["x-llmops-cache"] == "miss"
    stored(semantic, 1)
    calls = len(fake_upstream.requests)
    reworded = ask(semantic, "What's the capital of France?")
    assert reworded.headers["x-llmops-cache"] == "hit-semantic" and len(fake_upstream.requests) == calls
    similarity = float(reworded.headers["x-llmops-cache-similarity"])
    assert 0.95 <= similarity < 1.0 and reworded.json()["choices"] == first.json()["choices"]
    hit = trace(semantic, reworded)
    assert (
        hit["cache"] == "hit-semantic"
        and hit["metadata"]["cache"]["question"] == "What is the capital of France?"
    )
    assert "similarity" in hit["decisions"][0]["reason"] and hit["saved_usd"] > 0
    assert hit["metadata"]["cache"]["score"] >= 0.97  # what the verifier gave
    other = ask(semantic, "What is the capital of Germany?")
    assert other.headers["x-llmops-cache"] == "miss"
    assert "cosine 0." in trace(semantic, other)["decisions"][0]["reason"]  # how near the nearest was


def test_a_semantic_hit_replays_as_a_stream(semantic: DaemonProcess) -> None:
    ask(semantic, "How many legs does a spider have?")
    stored(semantic, 1)
    replay = ask(semantic, "how many legs does a spider have", stream=True)
    assert replay.headers["x-llmops-cache"] == "hit-semantic" and replay.text.rstrip().endswith(
        "data: [DONE]"
    )
    assert "spider" in replay.text.lower()


def test_meaning_is_never_matched_across_tenants_or_contexts(semantic: DaemonProcess) -> None:
    alice = semantic.create_key("alice")
    bob = semantic.create_key("bob")
    wait_until(lambda: ask(semantic, "x").status_code == 401)  # the keys are seen: no more open access
    before = vectors(semantic)
    ask(semantic, "Which planet is the largest?", key=alice)
    stored(semantic, before + 1)
    assert (
        ask(semantic, "Which is the largest planet?", key=alice).headers["x-llmops-cache"] == "hit-semantic"
    )
    assert ask(semantic, "Which is the largest planet?", key=bob).headers["x-llmops-cache"] == "miss"
    other_context = ask(semantic, "Which is the largest planet?", key=alice, system="Answer in French.")
    assert other_context.headers["x-llmops-cache"] == "miss"


def test_code_and_the_present_are_never_matched_by_meaning(semantic: DaemonProcess) -> None:
    ask(semantic, "Write a Python function that reverses a list.")
    near = ask(semantic, "write a python function that reverses a list")
    assert (
        near.headers["x-llmops-cache"] == "miss" and "code" in trace(semantic, near)["decisions"][0]["reason"]
    )
    assert (
        ask(semantic, "Write a Python function that reverses a list.").headers["x-llmops-cache"]
        == "hit-exact"
    )


def test_a_restart_keeps_semantic_entries(semantic: DaemonProcess) -> None:
    ask(semantic, "Who wrote Hamlet?")
    stored(semantic, 1)
    semantic.stop()
    semantic.start(timeout=120)
    assert ask(semantic, "who wrote hamlet").headers["x-llmops-cache"] == "hit-semantic"


def test_a_new_embedder_drops_the_old_vectors_and_never_mixes_them(
    semantic: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    ask(semantic, "What is the boiling point of water?")
    stored(semantic, 1)
    renamed = MINILM.replace("minilm:", "minilm-2:")
    semantic.profile.write_text(semantic_profile(fake_upstream.base_url, "minilm-2", renamed))
    wait_until(lambda: vectors(semantic) == 0, timeout=30, what="the old embedder's vectors to be dropped")
    # The old entry still answers word for word, never by meaning (its vectors are gone).
    assert ask(semantic, "What is the boiling point of water?").headers["x-llmops-cache"] == "hit-exact"
    assert ask(semantic, "what is the boiling point of water").headers["x-llmops-cache"] == "miss"
    stored(semantic, 1)  # the new embedder's first vector
    assert ask(semantic, "What is the boiling point of water").headers["x-llmops-cache"] == "hit-semantic"


def test_a_bad_hit_fences_the_pair_and_the_fence_outlives_the_entry_and_a_restart(
    semantic: DaemonProcess,
) -> None:
    ask(semantic, "Which planet is the largest?")
    stored(semantic, 1)
    wrong = ask(semantic, "Which is the largest planet?")  # say the user meant something else
    assert wrong.headers["x-llmops-cache"] == "hit-semantic"
    rewording = "Which is largest planet?"  # a rewording of the wrongly answered question
    assert ask(semantic, rewording, store=False).headers["x-llmops-cache"] == "hit-semantic"
    marked = httpx.post(
        f"{semantic.url}/admin/cache/bad-hits", json={"trace_id": wrong.headers["x-llmops-trace-id"]}
    )
    assert marked.status_code == 201 and marked.json()["fenced"] is True
    assert httpx.get(f"{semantic.url}/admin/cache").json()["fences"] == 1
    # The entry's question is cached again: evicting alone would let the same mistake happen.
    before = vectors(semantic)
    assert ask(semantic, "Which planet is the largest?").headers["x-llmops-cache"] == "miss"
    stored(semantic, before + 1)
    for restarted in (False, True):
        if restarted:
            semantic.stop()
            semantic.start(timeout=120)
        for question in ("Which is the largest planet?", rewording):  # held by the fence
            again = ask(semantic, question, store=False)
            assert again.headers["x-llmops-cache"] == "miss"
            assert "fence" in trace(semantic, again)["decisions"][0]["reason"]
        # A question the entry's own words answer (the same words, the ? dropped) still hits.
        same = ask(semantic, "Which planet is the largest", store=False)
        assert same.headers["x-llmops-cache"] == "hit-semantic"
    cleared = semantic.cli("cache", "clear", "--fences", "--url", semantic.url)
    assert cleared.returncode == 0 and "Cleared 1 fences" in cleared.stdout
    assert httpx.get(f"{semantic.url}/admin/cache").json()["fences"] == 0
    assert (
        ask(semantic, "Which is the largest planet?", store=False).headers["x-llmops-cache"] == "hit-semantic"
    )
    semantic.stop()
    semantic.start(timeout=120)  # cleared in the database too
    assert (
        ask(semantic, "Which is the largest planet?", store=False).headers["x-llmops-cache"] == "hit-semantic"
    )


def test_an_exact_bad_hit_sets_no_fence(semantic: DaemonProcess) -> None:
    ask(semantic, "Name a prime number.")
    hit = ask(semantic, "Name a prime number.")
    assert hit.headers["x-llmops-cache"] == "hit-exact"
    marked = httpx.post(
        f"{semantic.url}/admin/cache/bad-hits", json={"trace_id": hit.headers["x-llmops-trace-id"]}
    )
    assert marked.status_code == 201 and marked.json()["fenced"] is False


def test_a_remote_embedder_serves_the_semantic_cache(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    """An embeddings model behind an OpenAI-compatible API (the fake's "bag-of-words": 64
    dimensions) embeds the questions; without the MiniLM verifier, plain cosine decides."""
    words = f"""
  words:
    provider: openai
    base_url: "{fake_upstream.base_url}"
    api_key: "${{FAKE_KEY}}"
    upstream_model: bag-of-words
    embedding: true
"""
    new_daemon.profile.write_text(
        semantic_profile(fake_upstream.base_url, "words", "").replace(MINILM, words)
    )
    new_daemon.start()
    ask(new_daemon, "What is the capital of France?")
    stored(new_daemon, 1)
    same_words = ask(new_daemon, "what is THE capital of france")
    assert same_words.headers["x-llmops-cache"] == "hit-semantic"
    assert float(same_words.headers["x-llmops-cache-similarity"]) > 0.999
    other = ask(new_daemon, "What is the capital of Peru?")
    assert other.headers["x-llmops-cache"] == "miss"
    assert "best 0." in trace(new_daemon, other)["decisions"][0]["reason"]  # plain cosine, no verifier
    embedded = [r for r in fake_upstream.requests if r.get("model") == "bag-of-words"]
    assert len(embedded) == 3


def test_concurrent_misses_and_hits_keep_the_search_in_step(semantic: DaemonProcess) -> None:
    """24 distinct questions at once (each embedded, missed and stored), then each one's lowercase,
    unpunctuated twin at once: every twin is a match by meaning, to its own question."""
    questions = [f"How many moons does planet number {n} have?" for n in range(24)]
    with ThreadPoolExecutor(max_workers=24) as pool:
        first = list(pool.map(lambda q: ask(semantic, q), questions))
        assert [r.headers["x-llmops-cache"] for r in first] == ["miss"] * 24
        twins = list(pool.map(lambda q: ask(semantic, q.lower().rstrip("?")), questions))
    assert [r.headers["x-llmops-cache"] for r in twins] == ["hit-semantic"] * 24
    assert [r.json()["choices"] for r in twins] == [r.json()["choices"] for r in first]
