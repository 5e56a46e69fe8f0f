"""Fixtures for the console's tests: real daemons (live, and seeded with fixed traffic), waiting helpers."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot

from tests.daemon_process import DaemonProcess
from tests.fixtures.fake_openai import FakeOpenAI

# 2026-01-15 15:00:00 UTC: the frozen "now" of the seeded daemon's traffic and of the spend screen.
FROZEN_NOW = 1_768_489_200.0
SNAPSHOT_LABEL = "http://127.0.0.1:8700"


def live_profile(base_url: str) -> str:
    return f"""
name: console-test
default_model: fake
models:
  fake:
    {{provider: openai, base_url: "{base_url}", api_key: "${{FAKE_KEY}}", price: {{input: 1.0, output: 2.0}}}}
  fake-mini:
    {{provider: openai, base_url: "{base_url}", api_key: "${{FAKE_KEY}}", price: {{input: .15, output: .6}}}}
"""


@pytest.fixture(scope="module")
def live_daemon(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    """A daemon in local mode proxying the fake upstream; tests add their own calls."""
    folder = tmp_path_factory.mktemp("console-live")
    daemon = DaemonProcess.serving(folder, live_profile(fake_upstream.base_url))
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def populated_daemon(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    """What experiment_traffic.populate makes (two versions of summarize, classify, an experiment
    started on summarize, 60 users' rated calls): the recorded prompts and experiments answers' source."""
    from tests.tui import experiment_traffic

    folder = tmp_path_factory.mktemp("console-prompts")
    daemon = DaemonProcess.serving(folder, live_profile(fake_upstream.base_url))
    experiment_traffic.populate(daemon.url)
    yield daemon
    daemon.stop()


@pytest.fixture
def restartable_daemon(fake_upstream: FakeOpenAI, tmp_path: Path) -> Iterator[DaemonProcess]:
    (tmp_path / "profile.yaml").write_text(live_profile(fake_upstream.base_url))
    daemon = DaemonProcess(profile=tmp_path / "profile.yaml", db=tmp_path / "llmops.db").start()
    yield daemon
    daemon.stop()


async def chat(
    url: str, content: str, *, model: str = "fake", stream: bool = False, key: str | None = None
) -> str:
    """One call through the gateway; returns its trace id."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
    }
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:
        if stream:
            async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                async for _ in response.aiter_lines():
                    pass
        else:
            response = await http.post("/v1/chat/completions", json=body)
        return response.headers["x-llmops-trace-id"]


async def traces_api(url: str, **params: Any) -> list[dict[str, Any]]:
    """Every trace the daemon lists for these filters, following the cursor to the end."""
    rows: list[dict[str, Any]] = []
    cursor = None
    async with httpx.AsyncClient(base_url=url) as http:
        while True:
            query = {**params, "limit": "500", **({"cursor": str(cursor)} if cursor else {})}
            page = (await http.get("/admin/traces", params=query)).json()
            rows += page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                return rows


async def wait_for(pilot: Pilot[Any], condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Let the app run until `condition()` is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


# -- a daemon seeded with fixed traffic, for snapshots and pagination --------------------------------

SEED_MODELS = (
    ("gpt-4o-mini", "openai", 0.15, 0.60, 0.0),
    ("local-gemma", "llama_cpp", 0.0, 0.0, 0.15),
    ("claude-haiku", "anthropic", 0.80, 4.00, 0.0),
)
SEED_USERS = (("alice", "research"), ("bob", "support"), ("carol", "research"), ("dave", None))
RESPONSE = """Here is a palindrome check:

```python
def is_palindrome(text: str) -> bool:
    cleaned = [c.lower() for c in text if c.isalnum()]
    return cleaned == cleaned[::-1]
```

It ignores case and punctuation, so **"A man, a plan, a canal: Panama"** passes."""


def seed_rows(count: int) -> list[dict[str, Any]]:
    """`count` traces over the 30 days before FROZEN_NOW, newest at FROZEN_NOW - 60 s; fully determined."""
    rows = []
    for i in range(count):
        model, provider, price_in, price_out, shadow_in = SEED_MODELS[i % 3]
        user, team = SEED_USERS[i % 4]
        age = 60 + i * 97 if i < 40 else 60 + 40 * 97 + (i - 40) * 5_000
        prompt, completion = 20 + (i * 7) % 90, 10 + (i * 13) % 120
        status, http_status, error = "ok", 200, None
        if i % 11 == 5:
            status, http_status, error = "error", 502, "upstream answered 503: overloaded"
        elif i % 17 == 8:
            status, http_status, error = "cancelled", 499, "client disconnected before the stream ended"
        latency = [350.0, 820.0, 2_600.0, 140.0, 12_400.0, 610.0][i % 6]
        stream = i % 2 == 0
        ok = status == "ok"
        rows.append(
            {
                "id": f"tr_seed{i:05d}",
                "ts": FROZEN_NOW - age,
                "endpoint": "chat",
                "user": user,
                "team": team,
                "requested_model": model,
                "served_model": model,
                "provider": provider,
                "stream": int(stream),
                "status": status,
                "http_status": http_status,
                "error": error,
                "request": '{"messages": [{"role": "system", "content": "You are a senior Python developer."}, '
                '{"role": "user", "content": "Write a palindrome check in Python."}], '
                '"params": {"temperature": 0.2, "max_tokens": 200}}',
                "response": RESPONSE if ok else None,
                "finish_reason": "stop" if ok else None,
                "prompt_tokens": prompt if ok else 0,
                "completion_tokens": completion if ok else 0,
                "cost_usd": (prompt * price_in + completion * price_out) / 1e6 if ok else 0.0,
                "shadow_cost_usd": (prompt * shadow_in + completion * shadow_in * 4) / 1e6 if ok else 0.0,
                "latency_ms": latency,
                "ttft_ms": latency / 4 if stream else None,
                "overhead_ms": 1.5,
            }
        )
    return rows


SEEDED_TRACES = 460  # seed_database's 450 and seed_cache's 10
CACHED_QUESTIONS = (
    "What is the capital of France?",
    "Summarise our refund policy.",
    "Translate 'thank you' to German.",
)


def seed_cache(conn: sqlite3.Connection) -> None:
    """Three cache entries and, three hours before FROZEN_NOW, four misses then six hits of them."""
    for n, question in enumerate(CACHED_QUESTIONS):
        body = {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"answer {n}"},
                             "finish_reason": "stop"}]}  # fmt: skip
        conn.execute(
            "INSERT INTO cache_entries (id, kind, namespace, model, question, body, prompt_tokens, completion_tokens,"
            " cost_usd, trace_id, created_at, expires_at, last_hit_at, hits)"
            " VALUES (?, 'exact', ?, 'gpt-4o-mini', ?, ?, 30, 20, 0.0000165, ?, ?, ?, ?, ?)",
            (f"{n:064x}", f"user:{SEED_USERS[n][0]}|gpt-4o-mini", question, json.dumps(body), f"tr_miss{n}",
             FROZEN_NOW - 4 * 3600, FROZEN_NOW + 10 * 365 * 86400, FROZEN_NOW - 3 * 3600 + n, 2),
        )  # fmt: skip
    for n in range(10):
        hit = n >= 4
        question = CACHED_QUESTIONS[n % 3]
        cache = {"entry": f"{n % 3:064x}", "namespace": f"user:{SEED_USERS[n % 3][0]}|gpt-4o-mini",
                 "question": question, "similarity": 1.0}  # fmt: skip
        conn.execute(
            "INSERT INTO traces (id, ts, endpoint, user, team, requested_model, served_model, provider, status,"
            " http_status, request, response, cache, saved_usd, saved_tokens, prompt_tokens, completion_tokens,"
            " cost_usd, metadata) VALUES (?, ?, 'chat', ?, ?, 'gpt-4o-mini', 'gpt-4o-mini', ?, 'ok', 200, ?, ?,"
            " ?, ?, ?, ?, ?, ?, ?)",
            (f"tr_{'hit' if hit else 'miss'}{n}", FROZEN_NOW - 3 * 3600 + n * 60, *SEED_USERS[n % 3],
             None if hit else "openai", json.dumps({"messages": [{"role": "user", "content": question}]}),
             f"answer {n % 3}", "hit-exact" if hit else "miss", 0.0000165 if hit else 0.0, 50 if hit else 0,
             0 if hit else 30, 0 if hit else 20, 0.0 if hit else 0.0000165,
             json.dumps({"cache": cache}) if hit else None),
        )  # fmt: skip


def seed_database(db: Path, count: int) -> None:
    from daemon.app import prepare_database

    prepare_database(db)
    conn = sqlite3.connect(db)
    rows = seed_rows(count)
    columns = list(rows[0])
    conn.executemany(
        f"INSERT INTO traces ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})",
        sorted(rows, key=lambda r: r["ts"]),  # seq follows time, as in a real database
    )
    # The newest trace (the one the detail snapshot opens) fell back: a failed attempt, then the served one.
    seq, model, provider, status, latency, prompt, completion, cost = conn.execute(
        "SELECT seq, served_model, provider, status, latency_ms, prompt_tokens, completion_tokens, cost_usd"
        " FROM traces ORDER BY ts DESC LIMIT 1"
    ).fetchone()
    failure = "Upstream 'claude-haiku' answered HTTP 529: overloaded (3 attempts)"
    conn.executemany(
        "INSERT INTO attempts (trace_seq, n, model, provider, status, http_status, error, latency_ms,"
        " prompt_tokens, completion_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(seq, 0, "claude-haiku", "anthropic", "error", 502, failure, latency * 0.3, 0, 0, 0.0),
         (seq, 1, model, provider, status, 200, None, latency * 0.6, prompt, completion, cost)],
    )  # fmt: skip
    decisions = [{"stage": "fallback", "outcome": model, "reason": "claude-haiku failed with 502"}]
    conn.execute("UPDATE traces SET decisions = ? WHERE seq = ?", (json.dumps(decisions), seq))
    seed_cache(conn)
    conn.executemany(
        "INSERT INTO feedback (trace_id, kind, score, comment, rated_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("tr_seed00000", "stars", 5, "clear and correct", "alice", FROZEN_NOW - 30),
            ("tr_seed00002", "thumbs", -1, None, "bob", FROZEN_NOW - 20),
        ],
    )
    conn.commit()
    conn.close()


@pytest.fixture(scope="session")
def seeded_daemon(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    """SEEDED_TRACES fixed traces: 450 of traffic (40 in the last hour before FROZEN_NOW), 10 cache
    lookups three hours before it, and two ratings."""
    folder = tmp_path_factory.mktemp("console-seeded")
    profile = live_profile(fake_upstream.base_url).replace("console-test", "team") + "cache: {scope: user}\n"
    seed_database(folder / "llmops.db", 450)
    daemon = DaemonProcess.serving(folder, profile)
    yield daemon
    daemon.stop()


@pytest.fixture
def utc() -> Iterator[None]:
    """Times render in UTC, whatever the machine's zone."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()
