"""API keys: hashed in the database, 401 without a valid one, 403 for non-admins on /admin,
local mode only on loopback."""

from __future__ import annotations

import sqlite3
import time

import httpx
import openai
import pytest

from tests.daemon_process import DaemonProcess, fake_profile
from tests.fixtures.fake_openai import FakeOpenAI

HELLO = [{"role": "user", "content": "hi"}]


def wait_for_status(make_request, status: int, timeout: float = 10.0) -> httpx.Response:  # type: ignore[no-untyped-def]
    # the daemon caches key lookups for a moment; wait for the change to show
    deadline = time.monotonic() + timeout
    while True:
        response = make_request()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


@pytest.fixture
def keyed(new_daemon: DaemonProcess, fake_upstream: FakeOpenAI) -> DaemonProcess:
    new_daemon.profile.write_text(fake_profile(fake_upstream.base_url))
    return new_daemon


def test_keys_lifecycle_and_roles(keyed: DaemonProcess) -> None:
    admin = keyed.create_key("ops", "--admin", "--user", "olga", "--team", "platform")
    alice = keyed.create_key("alice", "--team", "research")
    keyed.start()
    chat = keyed.url + "/v1/chat/completions"

    missing = httpx.post(chat, json={"model": "fake", "messages": HELLO})
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    wrong = httpx.post(
        chat, json={"model": "fake", "messages": HELLO}, headers={"authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401

    sdk = openai.OpenAI(base_url=keyed.url + "/v1", api_key=alice, max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(model="fake", messages=HELLO)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed.url + "/v1", api_key="bad", max_retries=0).models.list()

    as_alice = {"authorization": f"Bearer {alice}"}
    denied = httpx.get(keyed.url + "/admin/traces", headers=as_alice)
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    as_admin = {"authorization": f"Bearer {admin}"}
    row = httpx.get(f"{keyed.url}/admin/traces/{raw.headers['x-llmops-trace-id']}", headers=as_admin).json()
    assert row["user"] == "alice" and row["team"] == "research" and row["key_id"]

    listing = keyed.cli("keys", "list", "--db", str(keyed.db))
    assert "alice" in listing.stdout and alice not in listing.stdout
    revoked = keyed.cli("keys", "revoke", "alice", "--db", str(keyed.db))
    assert revoked.returncode == 0
    after = wait_for_status(  # the README promises 2 s; a little more to notice it
        lambda: httpx.post(chat, json={"model": "fake", "messages": HELLO}, headers=as_alice),
        401,
        timeout=2.5,
    )
    assert after.status_code == 401


def test_secrets_are_stored_hashed(keyed: DaemonProcess) -> None:
    secret = keyed.create_key("bob")
    with sqlite3.connect(keyed.db) as conn:
        dump = "\n".join(conn.iterdump())
    assert secret not in dump and "bob" in dump


def test_non_loopback_without_keys_is_refused(keyed: DaemonProcess) -> None:
    done = keyed.cli(
        "serve",
        "--profile",
        str(keyed.profile),
        "--db",
        str(keyed.db),
        "--host",
        "0.0.0.0",
        "--port",
        str(keyed.port),
    )
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0" in done.stderr and "keys create" in done.stderr


def test_status_command(keyed: DaemonProcess) -> None:
    keyed.start()
    done = keyed.cli("status", "--url", keyed.url)
    assert done.returncode == 0, done.stderr
    assert "profile   test" in done.stdout and "fake" in done.stdout and "auth: local" in done.stdout
    gone = keyed.cli("status", "--url", "http://127.0.0.1:9")
    assert gone.returncode == 1 and "no daemon answering" in gone.stderr
