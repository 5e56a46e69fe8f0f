"""SIGTERM drains: a request in flight completes and is traced, then the daemon exits 0."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time

import httpx

from tests.daemon_process import DaemonProcess, fake_profile
from tests.fixtures.fake_openai import FakeOpenAI


def test_sigterm_finishes_in_flight_stream(new_daemon: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url))
    new_daemon.start()
    fake_upstream.inject(stream="slow")
    outcome: dict[str, str] = {}
    started = threading.Event()

    def stream() -> None:
        body = {
            "model": "fake",
            "stream": True,
            "messages": [{"role": "user", "content": " ".join(["w"] * 20)}],
        }
        with httpx.stream("POST", new_daemon.url + "/v1/chat/completions", json=body, timeout=30) as response:
            outcome["trace_id"] = response.headers["x-llmops-trace-id"]
            started.set()
            outcome["text"] = response.read().decode()

    client = threading.Thread(target=stream)
    client.start()
    assert started.wait(10)
    new_daemon.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    client.join(30)
    assert outcome["text"].rstrip().endswith("data: [DONE]")
    # uvicorn re-raises the signal once shut down, so the exit status says "terminated by SIGTERM"
    assert new_daemon.proc.wait(30) in (0, -signal.SIGTERM)  # type: ignore[union-attr]
    assert "stopped cleanly" in new_daemon.log()
    with sqlite3.connect(new_daemon.db) as conn:
        row = conn.execute("SELECT status FROM traces WHERE id = ?", (outcome["trace_id"],)).fetchone()
    assert row == ("ok",)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # and it no longer accepts connections
        try:
            httpx.get(new_daemon.url + "/health", timeout=0.5)
        except httpx.HTTPError:
            break
    else:
        raise AssertionError("daemon still answering after SIGTERM")


def test_sigterm_ends_open_event_streams_promptly(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url))
    new_daemon.start()
    lines: list[str] = []
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", new_daemon.url + "/admin/events", timeout=60) as response:
            for line in response.iter_lines():
                lines.append(line)
                connected.set()

    listener = threading.Thread(target=listen)
    listener.start()
    assert connected.wait(10)
    started = time.monotonic()
    new_daemon.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    new_daemon.proc.wait(30)  # type: ignore[union-attr]
    listener.join(10)
    assert time.monotonic() - started < 10  # not the 30 s graceful-shutdown limit
    assert "event: closing" in lines
