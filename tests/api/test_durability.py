"""kill -9 under load, then restart: the database is intact and every response a client
received in full has its trace (a response is sent only once its trace is committed)."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx

from tests.daemon_process import DaemonProcess, fake_profile
from tests.fixtures.fake_openai import FakeOpenAI

CONCURRENCY = 16


async def _client_loop(daemon: DaemonProcess, index: int, completed: list[str], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=daemon.url, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            stream = n % 2 == 0
            body = {
                "model": "fake",
                "stream": stream,
                "messages": [{"role": "user", "content": f"c{index} n{n}"}],
            }
            try:
                if stream:
                    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                        text = (await response.aread()).decode()
                        if response.status_code == 200 and text.rstrip().endswith("data: [DONE]"):
                            completed.append(response.headers["x-llmops-trace-id"])
                else:
                    response = await client.post("/v1/chat/completions", json=body)
                    if response.status_code == 200 and response.json()["choices"]:
                        completed.append(response.headers["x-llmops-trace-id"])
            except httpx.HTTPError:
                return  # the daemon is gone


async def _load_then_kill(daemon: DaemonProcess, completed: list[str]) -> None:
    stop = asyncio.Event()
    clients = [asyncio.create_task(_client_loop(daemon, i, completed, stop)) for i in range(CONCURRENCY)]
    while len(completed) < 400:
        await asyncio.sleep(0.01)
    daemon.kill()  # SIGKILL while requests are in flight
    stop.set()
    await asyncio.gather(*clients)


def test_kill_9_under_load_loses_no_completed_trace(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url))
    new_daemon.start()
    completed: list[str] = []
    asyncio.run(_load_then_kill(new_daemon, completed))
    assert len(completed) >= 400

    with sqlite3.connect(new_daemon.db) as conn:  # opening recovers the WAL as a restart would
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in conn.execute("SELECT id FROM traces")}
    missing = [trace_id for trace_id in completed if trace_id not in stored]
    assert not missing, f"{len(missing)} completed responses have no trace"

    new_daemon.start()  # and it starts again on the same database
    response = httpx.post(
        new_daemon.url + "/v1/chat/completions",
        json={"model": "fake", "messages": [{"role": "user", "content": "after"}]},
    )
    assert response.status_code == 200
