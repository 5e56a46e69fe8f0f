"""Hot reload: a valid edit serves new requests without a restart or dropping in-flight ones;
an invalid edit keeps the old profile serving and the error shows in /admin/status."""

from __future__ import annotations

import threading

import httpx

from tests.daemon_process import DaemonProcess, fake_profile, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

HELLO = [{"role": "user", "content": "hi"}]


def status(daemon: DaemonProcess) -> dict:
    return httpx.get(daemon.url + "/admin/status").json()


def models(daemon: DaemonProcess) -> set[str]:
    return {m["id"] for m in httpx.get(daemon.url + "/v1/models").json()["data"]}


def test_valid_edit_takes_effect_without_dropping_in_flight(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, name="before"))
    new_daemon.start()
    pid = new_daemon.proc.pid  # type: ignore[union-attr]
    fake_upstream.inject(stream="slow")  # every stream takes a while: one is in flight during the reload
    results: list[httpx.Response] = []
    in_flight = threading.Thread(
        target=lambda: results.append(
            httpx.post(
                new_daemon.url + "/v1/chat/completions",
                timeout=30,
                json={
                    "model": "fake",
                    "stream": True,
                    "messages": [{"role": "user", "content": " ".join(["w"] * 30)}],
                },
            )
        )
    )
    in_flight.start()
    wait_until(lambda: any(r.get("stream") for r in fake_upstream.requests[-1:]))
    extra = f"""
  fake-2:
    provider: openai
    base_url: "{fake_upstream.base_url}"
    api_key: "${{FAKE_KEY}}"
"""
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, name="after", extra=extra))
    wait_until(lambda: status(new_daemon)["profile"]["name"] == "after")
    assert "fake-2" in models(new_daemon)
    assert (
        httpx.post(
            new_daemon.url + "/v1/chat/completions", json={"model": "fake-2", "messages": HELLO}
        ).status_code
        == 200
    )
    in_flight.join(30)
    assert results and results[0].status_code == 200 and results[0].text.rstrip().endswith("data: [DONE]")
    assert new_daemon.proc.pid == pid and new_daemon.proc.poll() is None  # type: ignore[union-attr]


def test_invalid_edit_keeps_old_profile_and_reports_error(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, name="good"))
    new_daemon.start()
    new_daemon.profile.write_text(
        fake_profile(fake_upstream.base_url, name="bad").replace("read: 1", "read: -5")
    )
    wait_until(lambda: status(new_daemon)["profile"]["error"] is not None)
    error = status(new_daemon)["profile"]["error"]
    assert str(new_daemon.profile) in error and "models.fake.timeout.read" in error
    assert status(new_daemon)["profile"]["name"] == "good"
    assert (
        httpx.post(
            new_daemon.url + "/v1/chat/completions", json={"model": "fake", "messages": HELLO}
        ).status_code
        == 200
    )
    assert "rejected" in new_daemon.log()

    new_daemon.profile.write_text("models: [not, a, mapping")  # broken YAML
    wait_until(lambda: "YAML" in (status(new_daemon)["profile"]["error"] or ""))
    assert status(new_daemon)["profile"]["name"] == "good"

    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, name="fixed"))
    wait_until(lambda: status(new_daemon)["profile"]["name"] == "fixed")
    assert status(new_daemon)["profile"]["error"] is None


def test_unknown_key_and_literal_secret_are_rejected(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url, name="good"))
    new_daemon.start()
    new_daemon.profile.write_text(
        fake_profile(fake_upstream.base_url).replace('api_key: "${FAKE_KEY}"', 'api_key: "sk-literal"', 1)
    )
    wait_until(lambda: status(new_daemon)["profile"]["error"] is not None)
    error = status(new_daemon)["profile"]["error"]
    assert "models.fake.api_key" in error and "${ENV_VAR}" in error
    assert "sk-literal" not in error
