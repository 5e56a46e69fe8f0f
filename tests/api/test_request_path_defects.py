"""Defects of the request path found by reading the code (issue 7), kept fixed through a real daemon."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import orjson
import pytest

from daemon.pipeline.context import Context
from daemon.pipeline.stage import Stage
from daemon.providers.base import Chunk
from tests.daemon_process import DaemonProcess, fake_profile, wait_until
from tests.fixtures.fake_openai import FakeOpenAI
from tests.inprocess import InProcessDaemon

CHAT = "/v1/chat/completions"


def status(daemon: DaemonProcess) -> dict[str, Any]:
    return dict(httpx.get(daemon.url + "/admin/status", timeout=5).json())


def in_flight(daemon: DaemonProcess) -> int:
    return int(status(daemon)["in_flight"])


def test_a_client_leaving_while_its_trace_commits_is_traced_once(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    """Defect 2: the queued insert commits, then the disconnect path inserted the same id again."""
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url))
    new_daemon.start()
    assert (
        httpx.post(
            new_daemon.url + CHAT, json={"model": "fake", "messages": [{"role": "user", "content": "warm"}]}
        ).status_code
        == 200
    )
    fake_upstream.inject(stream="slow")  # words arrive one by one, and are forwarded so
    lock = sqlite3.connect(new_daemon.db, isolation_level=None, timeout=10)
    lock.execute("BEGIN IMMEDIATE")  # the daemon's trace commit now waits for this lock
    try:
        body = {"model": "fake", "stream": True, "messages": [{"role": "user", "content": "leave early"}]}
        with httpx.stream("POST", new_daemon.url + CHAT, json=body, timeout=10) as response:
            trace_id = response.headers["x-llmops-trace-id"]
            received = b""
            for piece in response.iter_bytes():  # the answer's words arrive; the end waits for the commit
                received += piece
                if b"leave" in received:  # (the last word leaves with the end of the stream)
                    break
            # The stream has ended upstream and its trace waits for the lock: now the client leaves.
            wait_until(
                lambda: status(new_daemon)["writer_pending"] == 1, what="the trace to wait for its commit"
            )
        wait_until(lambda: in_flight(new_daemon) == 0, what="the daemon to notice the client left")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    conn = sqlite3.connect(new_daemon.db)
    wait_until(
        lambda: conn.execute("SELECT count(*) FROM traces WHERE id = ?", (trace_id,)).fetchone()[0] == 1
    )
    after = httpx.post(
        new_daemon.url + CHAT, json={"model": "fake", "messages": [{"role": "user", "content": "after"}]}
    )
    assert after.status_code == 200
    assert conn.execute("SELECT count(*) FROM traces WHERE id = ?", (trace_id,)).fetchone()[0] == 1
    conn.close()
    log = new_daemon.log()
    assert "UNIQUE constraint" not in log and "write transaction failed" not in log, log


class BreakMidStream(Stage):
    """Fails with an error that is not a GatewayError after the first words, as a bug would."""

    name = "breaker"

    def on_chunk(self, ctx: Context, chunk: Chunk) -> Chunk | None:
        if ctx.request_headers.get(b"x-break") and "two" in chunk.text:
            raise RuntimeError("a bug in a stage")
        return chunk


@pytest.fixture(scope="module")
def breaking(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessDaemon]:
    folder = tmp_path_factory.mktemp("breaking")
    (folder / "profile.yaml").write_text(fake_profile(fake_upstream.base_url))
    served = InProcessDaemon(
        folder / "profile.yaml", folder / "llmops.db", [lambda p, s, m: BreakMidStream()]
    )
    yield served.start()
    served.stop()


def test_an_unexpected_error_mid_stream_is_an_error_not_a_disconnect(breaking: InProcessDaemon) -> None:
    """Defect 3: the client got a cut stream with no error event; the trace said 'client disconnected'."""
    body = {"model": "fake", "stream": True, "messages": [{"role": "user", "content": "one two three"}]}
    response = httpx.post(breaking.url + CHAT, json=body, headers={"x-break": "1"}, timeout=10)
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    last = orjson.loads(events[-1])
    assert last["error"]["code"] == "internal_error" and "[DONE]" not in events
    trace = httpx.get(f"{breaking.url}/admin/traces/{response.headers['x-llmops-trace-id']}").json()
    assert (trace["status"], trace["http_status"]) == ("error", 500)
    assert trace["attempts"][0]["status"] == "error"


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_name_outside_latin1_serves_and_shuts_down(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI, stream: bool
) -> None:
    """Defect 4: the header could not be encoded; a stream's relay never started and its runtime pin
    leaked, so shutdown waited forever."""
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url).replace("default_model: fake", "default_model: 模型")
                                  + f'  模型:\n    provider: openai\n    base_url: "{fake_upstream.base_url}"\n    api_key: "${{FAKE_KEY}}"\n')  # fmt: skip
    new_daemon.start()
    body = {"model": "模型", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(new_daemon.url + CHAT, json=body, timeout=10)
    assert response.status_code == 200, response.text
    assert unquote(response.headers["x-llmops-model"]) == "模型"
    assert in_flight(new_daemon) == 0
    # A clean exit on SIGTERM (uvicorn re-raises it once shut down), not a kill after shutdown hung.
    assert new_daemon.stop() in (0, -signal.SIGTERM)
    assert "stopped cleanly" in new_daemon.log()
