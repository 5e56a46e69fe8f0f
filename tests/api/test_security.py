"""Keys used where they do not belong (issue 8, Security): event streams of revoked keys, ratings of
other people's traces, the last key revoked, keys on command lines; and README promises about keys."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.daemon_process import DaemonProcess, fake_profile, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hi"}]
REVOCATION_SECONDS = 2.0  # what the README promises


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
def keyed(new_daemon: DaemonProcess, fake_upstream: FakeOpenAI) -> DaemonProcess:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url))
    return new_daemon


def chat_as(daemon: DaemonProcess, key: str, **headers: str) -> httpx.Response:
    return httpx.post(
        daemon.url + CHAT, json={"model": "fake", "messages": HELLO}, headers={**bearer(key), **headers}
    )


def test_a_revoked_key_loses_its_event_stream_within_2_seconds(keyed: DaemonProcess) -> None:
    ops = keyed.create_key("ops", "--admin")
    spare = keyed.create_key("spare", "--admin")
    keyed.start()
    lines: list[str] = []
    ended = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", keyed.url + "/admin/events", headers=bearer(ops), timeout=30) as response:
            for line in response.iter_lines():
                lines.append(line)
        ended.set()

    threading.Thread(target=listen, daemon=True).start()
    wait_until(lambda: ": connected" in lines)
    assert chat_as(keyed, spare).status_code == 200
    wait_until(lambda: any(line == "event: trace" for line in lines))  # the stream works
    assert keyed.cli("keys", "revoke", "ops", "--db", str(keyed.db)).returncode == 0
    revoked_at = time.monotonic()
    assert ended.wait(10), "the stream of a revoked key stayed open"
    assert time.monotonic() - revoked_at < REVOCATION_SECONDS + 0.5  # the promise, and a little to notice it
    assert "event: error" in lines and any("revoked" in line for line in lines)


def test_a_revoked_key_fails_calls_within_2_seconds(keyed: DaemonProcess) -> None:
    alice = keyed.create_key("alice")
    keyed.create_key("ops", "--admin")
    keyed.start()
    assert chat_as(keyed, alice).status_code == 200  # and its lookup is now cached
    assert keyed.cli("keys", "revoke", "alice", "--db", str(keyed.db)).returncode == 0
    revoked_at = time.monotonic()
    wait_until(lambda: chat_as(keyed, alice).status_code == 401, timeout=10)
    assert time.monotonic() - revoked_at < REVOCATION_SECONDS + 0.5


def test_a_key_rates_only_traces_it_may_see(keyed: DaemonProcess) -> None:
    admin = keyed.create_key("ops", "--admin")
    alice = keyed.create_key("alice", "--team", "research")
    rita = keyed.create_key("rita", "--team", "research")
    bob = keyed.create_key("bob", "--team", "support")
    carol = keyed.create_key("carol")  # no team: her own traces only
    dave = keyed.create_key("dave")
    keyed.start()
    alices = chat_as(keyed, alice).headers["x-llmops-trace-id"]
    carols = chat_as(keyed, carol).headers["x-llmops-trace-id"]

    def rate(key: str, trace_id: str, score: int = 4) -> httpx.Response:
        return httpx.post(
            keyed.url + "/v1/feedback", json={"trace_id": trace_id, "score": score}, headers=bearer(key)
        )

    unknown = rate(bob, "tr_000000000000000000000000")
    forbidden = rate(bob, alices)
    assert (unknown.status_code, forbidden.status_code) == (404, 404)
    # An unknown id and a forbidden one look the same, but for the id itself.
    assert forbidden.json()["error"]["message"].replace(alices, "ID") == unknown.json()["error"][
        "message"
    ].replace("tr_000000000000000000000000", "ID")
    assert rate(dave, carols).status_code == 404  # no team: not someone else's
    assert rate(alice, alices).status_code == 201  # her own
    assert rate(rita, alices).status_code == 201  # her team's
    assert rate(carol, carols).status_code == 201
    assert rate(admin, alices).status_code == 201  # an admin: any
    first, again = rate(alice, alices, 2), rate(alice, alices, 5)  # one rating per person, replaced
    assert first.json()["id"] == again.json()["id"]
    feedback = httpx.get(f"{keyed.url}/admin/traces/{alices}", headers=bearer(admin)).json()["feedback"]
    assert sorted((f["rated_by"], f["score"]) for f in feedback) == [
        ("alice", 5.0),
        ("ops", 4.0),
        ("rita", 4.0),
    ]


def test_revoking_the_last_key_does_not_reopen_local_mode(keyed: DaemonProcess) -> None:
    only = keyed.create_key("only", "--admin")
    keyed.start()
    assert chat_as(keyed, only).status_code == 200
    revoked = keyed.cli("keys", "revoke", "only", "--db", str(keyed.db))
    assert revoked.returncode == 0 and "refuses every call" in revoked.stderr
    wait_until(lambda: chat_as(keyed, only).status_code == 401)
    assert (
        httpx.post(keyed.url + CHAT, json={"model": "fake", "messages": HELLO}).status_code == 401
    )  # no key
    assert httpx.get(keyed.url + "/admin/traces").status_code == 401  # no keyless admin either
    deleted = keyed.cli("keys", "delete", "only", "--db", str(keyed.db))
    assert deleted.returncode == 0 and "local mode" in deleted.stdout
    wait_until(
        lambda: httpx.post(keyed.url + CHAT, json={"model": "fake", "messages": HELLO}).status_code == 200
    )


def test_x_api_key_and_key_files(keyed: DaemonProcess, tmp_path: Path) -> None:
    admin = keyed.create_key("ops", "--admin")
    keyed.start()
    assert (
        httpx.post(
            keyed.url + CHAT, json={"model": "fake", "messages": HELLO}, headers={"x-api-key": admin}
        ).status_code
        == 200
    )
    key_file = tmp_path / "key"
    key_file.write_text(admin + "\n")
    status = keyed.cli("status", "--url", keyed.url, "--key-file", str(key_file))
    assert status.returncode == 0 and "auth: keys" in status.stdout, status.stderr
    missing = keyed.cli("status", "--url", keyed.url, "--key-file", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "cannot read --key-file" in missing.stderr
    assert "ps" in keyed.cli("status", "--help").stdout  # --help says why --key is a bad idea


def test_user_keys_get_403_on_admin_status_and_events(keyed: DaemonProcess) -> None:
    alice = keyed.create_key("alice")
    keyed.create_key("ops", "--admin")
    keyed.start()
    for path in ("/admin/status", "/admin/events", "/admin/traces", "/admin/spend"):
        response = httpx.get(keyed.url + path, headers=bearer(alice))
        assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error", path


def test_the_end_user_field_is_kept_beside_the_keys_user(keyed: DaemonProcess) -> None:
    admin = keyed.create_key("ops", "--admin")
    alice = keyed.create_key("alice", "--team", "research")
    keyed.start()
    response = httpx.post(
        keyed.url + CHAT,
        json={"model": "fake", "messages": HELLO, "user": "customer-42"},
        headers=bearer(alice),
    )
    trace = httpx.get(
        f"{keyed.url}/admin/traces/{response.headers['x-llmops-trace-id']}", headers=bearer(admin)
    ).json()
    assert trace["user"] == "alice" and trace["metadata"]["end_user"] == "customer-42"
