"""The hot routes served in front of Starlette (api/hot.py): the same headers, errors and routing
as through Starlette, over a real daemon."""

from __future__ import annotations

import httpx

from tests.daemon_process import DaemonProcess

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hi"}]


def test_stream_headers_and_body(gateway: DaemonProcess) -> None:
    with httpx.stream(
        "POST", gateway.url + CHAT, json={"model": "fake", "messages": HELLO, "stream": True}, timeout=30
    ) as response:
        body = response.read()
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache" and response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-llmops-model"] == "fake" and response.headers["x-llmops-trace-id"]
    assert float(response.headers["x-llmops-overhead-ms"]) >= 0
    assert body.startswith(b"data: {") and body.endswith(b"data: [DONE]\n\n")


def test_json_reply_headers(gateway: DaemonProcess) -> None:
    response = httpx.post(gateway.url + CHAT, json={"model": "fake", "messages": HELLO}, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.json()["choices"][0]["message"]["content"] == "Echo: hi"


def test_traced_error_names_its_trace(gateway: DaemonProcess) -> None:
    response = httpx.post(gateway.url + CHAT, json={"model": "fake"}, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    row = httpx.get(f"{gateway.url}/admin/traces/{response.headers['x-llmops-trace-id']}").json()
    assert row["status"] == "error" and row["http_status"] == 400


def test_other_methods_and_paths_reach_starlette(gateway: DaemonProcess) -> None:
    assert httpx.get(gateway.url + CHAT).status_code == 405
    assert httpx.post(gateway.url + CHAT + "/", json={}).status_code == 404
    assert httpx.get(gateway.url + "/health").json()["status"] == "ok"
