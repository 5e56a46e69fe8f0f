"""The exact cache through a real daemon: hits, replayed streams, tenants, TTL and LRU, the client's
headers, what is never cached, a restart, bad hits, and the management API and CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.daemon_process import DaemonProcess, fake_profile, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"


def cache_profile(base_url: str, **settings: Any) -> str:
    lines = "".join(f"  {name}: {json.dumps(value)}\n" for name, value in settings.items())
    return fake_profile(base_url) + "cache:\n" + (lines or "  scope: user\n")


def ask(daemon: DaemonProcess, question: str, key: str | None = None, stream: bool = False,
        headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:  # fmt: skip
    body = {"model": "fake", "stream": stream, "messages": [{"role": "user", "content": question}], **params}
    auth = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(daemon.url + CHAT, json=body, headers={**auth, **(headers or {})}, timeout=15)


def text(response: httpx.Response) -> str:
    if not response.headers["content-type"].startswith("text/event-stream"):
        return str(response.json()["choices"][0]["message"]["content"])
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(event) for event in events[:-1]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def trace(daemon: DaemonProcess, response: httpx.Response, key: str | None = None) -> dict[str, Any]:
    auth = {"authorization": f"Bearer {key}"} if key else {}
    return dict(
        httpx.get(f"{daemon.url}/admin/traces/{response.headers['x-llmops-trace-id']}", headers=auth).json()
    )


@pytest.fixture(scope="module")
def cached(fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("cache")
    daemon = DaemonProcess.serving(folder, cache_profile(fake_upstream.base_url))
    yield daemon
    daemon.stop()


def test_a_repeated_request_is_answered_from_the_cache(
    cached: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    first = ask(cached, "what is a cache?")
    assert first.headers["x-llmops-cache"] == "miss"
    calls = len(fake_upstream.requests)
    again = ask(cached, "what is a cache?")
    assert (
        again.headers["x-llmops-cache"] == "hit-exact"
        and again.headers["x-llmops-cache-similarity"] == "1.000"
    )
    assert again.json()["choices"] == first.json()["choices"] and len(fake_upstream.requests) == calls
    original, hit = trace(cached, first), trace(cached, again)
    assert hit["cache"] == "hit-exact" and hit["attempts"] == [] and hit["cost_usd"] == 0
    assert hit["saved_usd"] == pytest.approx(original["cost_usd"]) and hit["saved_usd"] > 0
    assert hit["saved_tokens"] == original["prompt_tokens"] + original["completion_tokens"]
    assert hit["metadata"]["cache"]["question"] == "what is a cache?"
    assert hit["metadata"]["cache"]["from_trace"] == original["id"]
    assert [d["stage"] for d in hit["decisions"]] == ["cache"] and hit["decisions"][0][
        "outcome"
    ] == "hit-exact"
    assert (
        ask(cached, "what is a cache?", temperature=0.1).headers["x-llmops-cache"] == "miss"
    )  # params count


@pytest.mark.parametrize("first_stream", [True, False])
def test_a_stream_and_a_json_call_share_an_entry(cached: DaemonProcess, first_stream: bool) -> None:
    question = f"stream first: {first_stream}"
    original = ask(cached, question, stream=first_stream)
    assert original.headers["x-llmops-cache"] == "miss"
    for stream in (True, False):
        replay = ask(cached, question, stream=stream)
        assert replay.headers["x-llmops-cache"] == "hit-exact" and text(replay) == text(original)
    replayed = ask(cached, question, stream=True, stream_options={"include_usage": True})
    events = [orjson.loads(line[6:]) for line in replayed.text.splitlines() if line.startswith("data: {")]
    assert [c["choices"][0]["finish_reason"] for c in events if c["choices"]][-1] == "stop"
    assert events[-1]["usage"]["completion_tokens"] > 0


def test_tenants_never_share_entries(new_daemon: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    new_daemon.profile.write_text(cache_profile(fake_upstream.base_url, scope="team"))
    alice = new_daemon.create_key("alice", "--team", "research")
    rita = new_daemon.create_key("rita", "--team", "research")
    bob = new_daemon.create_key("bob", "--team", "support")
    carol = new_daemon.create_key("carol")  # no team: her own namespace
    new_daemon.start()
    assert ask(new_daemon, "a shared question", alice).headers["x-llmops-cache"] == "miss"
    assert ask(new_daemon, "a shared question", rita).headers["x-llmops-cache"] == "hit-exact"  # same team
    assert ask(new_daemon, "a shared question", bob).headers["x-llmops-cache"] == "miss"  # another team
    assert ask(new_daemon, "a shared question", carol).headers["x-llmops-cache"] == "miss"
    assert ask(new_daemon, "a shared question", carol).headers["x-llmops-cache"] == "hit-exact"  # her own


def test_entries_expire_after_their_ttl(new_daemon: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    new_daemon.profile.write_text(cache_profile(fake_upstream.base_url, ttl=1))
    new_daemon.start()
    ask(new_daemon, "short-lived")
    assert ask(new_daemon, "short-lived").headers["x-llmops-cache"] == "hit-exact"
    expired = wait_until(
        lambda: (r := ask(new_daemon, "short-lived")).headers["x-llmops-cache"] == "miss" and r
    )
    assert trace(new_daemon, expired)["decisions"][0]["reason"] == "the entry had expired"


def test_the_least_recently_used_entry_goes_first(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    new_daemon.profile.write_text(cache_profile(fake_upstream.base_url, max_entries=2))
    new_daemon.start()
    ask(new_daemon, "a")
    ask(new_daemon, "b")
    assert ask(new_daemon, "a").headers["x-llmops-cache"] == "hit-exact"  # a is now the most recent
    ask(new_daemon, "c")  # over the limit: b, the least recently used, goes
    assert [ask(new_daemon, q).headers["x-llmops-cache"] for q in ("a", "c", "b")] == [
        "hit-exact",
        "hit-exact",
        "miss",
    ]


def test_the_clients_cache_headers(cached: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    bypass = {"x-llmops-cache": "bypass"}
    assert ask(cached, "bypassed", headers=bypass).headers["x-llmops-cache"] == "bypass"
    assert ask(cached, "bypassed").headers["x-llmops-cache"] == "miss"  # a bypass stores nothing
    calls = len(fake_upstream.requests)
    refreshed = ask(cached, "bypassed", headers={"cache-control": "no-cache"})
    assert refreshed.headers["x-llmops-cache"] == "miss" and len(fake_upstream.requests) == calls + 1
    assert ask(cached, "bypassed").headers["x-llmops-cache"] == "hit-exact"  # a refresh stores
    assert ask(cached, "kept out", headers={"cache-control": "no-store"}).headers["x-llmops-cache"] == "miss"
    assert ask(cached, "kept out").headers["x-llmops-cache"] == "miss"  # no-store stored nothing


@pytest.mark.parametrize(
    ("params", "question", "reason"),
    [
        ({"temperature": 1.5}, "a hot question", "temperature 1.5 > 0.7"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            "use a tool",
            "tools",
        ),
        ({}, "what is the weather today?", "present"),
    ],
)
def test_skip_rules_bypass_and_say_why(
    cached: DaemonProcess, params: dict[str, Any], question: str, reason: str
) -> None:
    for _ in range(2):
        response = ask(cached, question, **params)
        assert response.headers["x-llmops-cache"] == "bypass"
    assert reason in trace(cached, response)["decisions"][0]["reason"]


def test_errors_truncations_and_cancellations_are_never_cached(
    cached: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    fake_upstream.inject(status=500, count=3)
    assert ask(cached, "fails once").status_code == 502
    assert ask(cached, "fails once").headers["x-llmops-cache"] == "miss"
    assert ask(cached, "cut short please", max_tokens=2).json()["choices"][0]["finish_reason"] == "length"
    assert ask(cached, "cut short please", max_tokens=2).headers["x-llmops-cache"] == "miss"
    fake_upstream.inject(stream="slow")
    body = {"model": "fake", "stream": True, "messages": [{"role": "user", "content": "left " * 30}]}
    with httpx.stream("POST", cached.url + CHAT, json=body, timeout=10) as response:
        trace_id = response.headers["x-llmops-trace-id"]
        next(response.iter_bytes())
    wait_until(lambda: httpx.get(f"{cached.url}/admin/traces/{trace_id}").status_code == 200)
    fake_upstream.inject()
    assert ask(cached, "left " * 30, stream=True).headers["x-llmops-cache"] == "miss"


def test_a_restart_keeps_the_cache(new_daemon: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    new_daemon.profile.write_text(cache_profile(fake_upstream.base_url))
    new_daemon.start()
    first = ask(new_daemon, "remember me")
    assert ask(new_daemon, "remember me").headers["x-llmops-cache"] == "hit-exact"
    new_daemon.stop()
    new_daemon.start()
    again = ask(new_daemon, "remember me")
    assert again.headers["x-llmops-cache"] == "hit-exact"
    assert again.json()["choices"] == first.json()["choices"]
    (entry,) = httpx.get(f"{new_daemon.url}/admin/cache/entries").json()["data"]
    assert entry["hits"] == 2  # the hit before the restart was saved at shutdown


def test_a_bad_hit_evicts_its_entry_and_is_recorded(cached: DaemonProcess) -> None:
    ask(cached, "answered wrongly")
    hit = ask(cached, "answered wrongly")
    marked = httpx.post(
        f"{cached.url}/admin/cache/bad-hits", json={"trace_id": hit.headers["x-llmops-trace-id"]}
    )
    assert marked.status_code == 201 and marked.json()["question"] == "answered wrongly"
    twice = httpx.post(
        f"{cached.url}/admin/cache/bad-hits", json={"trace_id": hit.headers["x-llmops-trace-id"]}
    )
    assert twice.status_code == 200 and twice.json()["already_marked"] is True
    assert twice.json()["bad_hit"] == marked.json()["bad_hit"]
    assert ask(cached, "answered wrongly").headers["x-llmops-cache"] == "miss"
    stats = httpx.get(f"{cached.url}/admin/cache").json()
    assert (
        stats["bad_hits"][0]["trace_id"] == hit.headers["x-llmops-trace-id"] and len(stats["bad_hits"]) == 1
    )
    not_a_hit = httpx.post(
        f"{cached.url}/admin/cache/bad-hits", json={"trace_id": hit.headers["x-llmops-trace-id"][:-1]}
    )
    assert not_a_hit.status_code == 404


def test_stats_entries_evict_and_clear_through_api_and_cli(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    new_daemon.profile.write_text(cache_profile(fake_upstream.base_url))
    new_daemon.start()
    for question in ("one", "two", "one"):
        ask(new_daemon, question)
    stats = httpx.get(f"{new_daemon.url}/admin/cache").json()
    assert (stats["entries"], stats["lookups"], stats["hits"]) == (2, 3, 1) and stats[
        "hit_rate"
    ] == pytest.approx(1 / 3)
    assert stats["recent_hits"][0]["question"] == "one" and stats["saved_usd"] > 0
    spend = httpx.get(f"{new_daemon.url}/admin/spend").json()
    assert spend["savings"]["cache_usd"] == pytest.approx(stats["saved_usd"])  # the saving shows in spend
    listed = httpx.get(f"{new_daemon.url}/admin/cache/entries", params={"order": "hits"}).json()["data"]
    assert [entry["question"] for entry in listed] == ["one", "two"] and "body" not in listed[0]
    printed = new_daemon.cli("cache", "stats", "--url", new_daemon.url)
    assert printed.returncode == 0 and "entries   2 in 1 namespaces" in printed.stdout
    assert printed.stderr == ""  # no log line per HTTP request under the output
    assert new_daemon.cli("cache", "evict", listed[1]["id"], "--url", new_daemon.url).returncode == 0
    assert ask(new_daemon, "two").headers["x-llmops-cache"] == "miss"
    assert httpx.delete(f"{new_daemon.url}/admin/cache/entries/nope").status_code == 404
    cleared = new_daemon.cli("cache", "clear", "--url", new_daemon.url)
    assert cleared.returncode == 0 and "Cleared 2 entries" in cleared.stdout
    assert httpx.get(f"{new_daemon.url}/admin/cache").json()["entries"] == 0


def test_models_outside_the_cache_say_nothing(new_daemon: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    new_daemon.profile.write_text(cache_profile(fake_upstream.base_url, models=["fake-embed"]))
    new_daemon.start()
    response = ask(new_daemon, "not cached here")
    assert "x-llmops-cache" not in response.headers and trace(new_daemon, response)["cache"] is None
