"""Rate limits and token caps through a real daemon, and budgets from the CLI."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.daemon_process import DaemonProcess, fake_profile
from tests.fixtures.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"
LIMITS = """
rate_limits:
  users:
    rita: {requests_per_minute: 60}
    tom: {tokens_per_minute: 200}
caps:
  default_max_tokens: 15
  models: {fake: 20}
  users: {alice: 10}
budgets:
  users: {}
"""


@pytest.fixture(scope="module")
def limited(fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("limits")
    daemon = DaemonProcess.serving(folder, fake_profile(fake_upstream.base_url) + LIMITS)
    yield daemon
    daemon.stop()


def ask(daemon: DaemonProcess, user: str, **params: Any) -> httpx.Response:
    body = {"model": "fake", "user": user, "messages": [{"role": "user", "content": "hi there"}], **params}
    return httpx.post(daemon.url + CHAT, json=body, timeout=15)


def trace(daemon: DaemonProcess, response: httpx.Response) -> dict[str, Any]:
    return dict(httpx.get(f"{daemon.url}/admin/traces/{response.headers['x-llmops-trace-id']}").json())


def test_requests_per_minute_hold_their_rate_within_tolerance(limited: DaemonProcess) -> None:
    started = time.monotonic()
    answers = [ask(limited, "rita") for _ in range(75)]
    elapsed = time.monotonic() - started
    allowed = sum(r.status_code == 200 for r in answers)
    # A burst of a minute's worth (60), then one more per second that passed.
    assert 60 <= allowed <= 60 + math.ceil(elapsed) + 1
    refused = next(r for r in answers if r.status_code == 429)
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_exceeded", "rate_limit_exceeded")
    assert "60 requests per minute" in error["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-requests"] == "60"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    first = answers[0]
    assert (first.headers["x-ratelimit-limit-requests"], first.headers["x-ratelimit-remaining-requests"]) == (
        "60",
        "59",
    )


def test_a_rate_limit_429_is_the_openai_sdks_rate_limit_error(limited: DaemonProcess) -> None:
    client = openai.OpenAI(base_url=limited.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        for _ in range(70):
            client.chat.completions.create(
                model="fake", messages=[{"role": "user", "content": "x"}], user="rita"
            )
    assert raised.value.code == "rate_limit_exceeded"


def test_tokens_per_minute_count_the_prompt_and_the_cap_then_what_was_used(
    limited: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    fake_upstream.inject(usage={"prompt_tokens": 5, "completion_tokens": 5})
    first = ask(limited, "tom", max_tokens=20)
    assert first.status_code == 200
    # Charged 11 prompt + 15 capped max_tokens, then corrected to the 10 tokens really used.
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 200
    huge = ask(limited, "tom", messages=[{"role": "user", "content": "word " * 400}])
    assert huge.status_code == 429
    assert "more than its whole limit of 200 tokens per minute" in huge.json()["error"]["message"]
    assert huge.headers["x-should-retry"] == "false"
    allowed = sum(ask(limited, "tom", max_tokens=20).status_code == 200 for _ in range(30))
    assert allowed >= 6  # ~26 tokens a call on admission, ~10 once counted: well over 200 / 26


def test_caps_clip_a_request_and_the_trace_says_so(limited: DaemonProcess, fake_upstream: FakeOpenAI) -> None:
    clipped = ask(limited, "alice", max_tokens=500)
    assert clipped.status_code == 200
    assert fake_upstream.requests[-1]["max_tokens"] == 10  # alice's cap beats the model's 20
    found = trace(limited, clipped)
    assert found["metadata"]["max_tokens"] == "clipped max_tokens 500 -> 10 (cap of user alice)"
    assert {"stage": "caps", "outcome": "clipped", "reason": found["metadata"]["max_tokens"]} in found[
        "decisions"
    ]
    defaulted = ask(limited, "bob")
    assert fake_upstream.requests[-1]["max_tokens"] == 15
    assert trace(limited, defaulted)["metadata"]["max_tokens"] == "set max_tokens 15 (the default)"
    newer = ask(limited, "bob", max_completion_tokens=99)
    assert newer.status_code == 200
    assert (
        fake_upstream.requests[-1]["max_completion_tokens"] == 20
        and "max_tokens" not in fake_upstream.requests[-1]
    )
    untouched = ask(limited, "bob", max_tokens=5)
    assert fake_upstream.requests[-1]["max_tokens"] == 5
    assert "max_tokens" not in (trace(limited, untouched)["metadata"] or {})


def test_budgets_from_the_cli_set_show_reset_and_unset(limited: DaemonProcess) -> None:
    def cli(*args: str) -> str:
        done = limited.cli("budget", *args, "--url", limited.url)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "Set the day budget of user:erin: $0.50" in cli("set", "user:erin", "--per", "day", "--usd", "0.5")
    assert ask(limited, "erin").status_code == 200
    shown = cli("show", "user:erin")
    assert "user:erin" in shown and "of $0.50" in shown and "api" in shown and "resets in" in shown
    assert "Reset user:erin (day)" in cli("reset", "user:erin", "--per", "day")
    assert "$0.00+$0.00 of $0.50" in cli("show", "user:erin")
    assert "Removed 1 budget(s)" in cli("unset", "user:erin")
    assert "user:erin" not in cli("show")
    bad = limited.cli("budget", "set", "everyone", "--per", "day", "--usd", "1", "--url", limited.url)
    assert bad.returncode == 1 and "Invalid budget subject 'everyone'" in bad.stderr


def test_a_key_created_with_a_budget_is_held_to_it(fake_upstream: FakeOpenAI, tmp_path: Path) -> None:
    (tmp_path / "profile.yaml").write_text(fake_profile(fake_upstream.base_url) + "budgets: {}\n")
    daemon = DaemonProcess(profile=tmp_path / "profile.yaml", db=tmp_path / "llmops.db")
    admin = daemon.create_key("admin", "--admin")
    ci = daemon.create_key("ci", "--budget", "40tokens/day", "--budget", "1usd/day")
    daemon.start()
    try:
        body = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
        answers = [
            httpx.post(daemon.url + CHAT, json=body, headers={"authorization": f"Bearer {ci}"}, timeout=15)
            for _ in range(5)
        ]
        codes = [r.status_code for r in answers]
        assert codes[0] == 200 and 429 in codes
        refused = next(r for r in answers if r.status_code == 429)
        assert "daily budget of key:ci (api)" in refused.json()["error"]["message"]
        shown = httpx.get(daemon.url + "/admin/budgets", params={"subject": "key:ci"},
                          headers={"authorization": f"Bearer {admin}"}).json()["budgets"]  # fmt: skip
        assert [(b["name"], b["usd"], b["tokens"]) for b in shown] == [("key:ci", 1.0, 40)]
    finally:
        daemon.stop()
