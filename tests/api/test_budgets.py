"""Budgets through real daemons: no overspend under 64 concurrent calls (one daemon, and two on one
database), reservations released on a disconnect, an upstream error and a crash, the 429's body
and headers (and the openai SDK's RateLimitError), the remaining-budget headers, and the ledger
always equal to its traces."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from daemon.storage import budgets as budget_store
from tests.daemon_process import DaemonProcess, fake_profile, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"
QUESTION = [{"role": "user", "content": "how much is left?"}]


def budget_profile(base_url: str, budgets: str = "  users: {}\n") -> str:
    # Calls wait at the upstream while a test counts them: no read timeout (and retry) meanwhile.
    profile = fake_profile(base_url).replace("read: 1}", "read: 60}")
    return profile + "budgets:\n  timezone: Europe/Paris\n" + budgets


def ask(url: str, user: str, stream: bool = False, **params: Any) -> httpx.Response:
    body = {"model": "fake", "user": user, "messages": QUESTION, "max_tokens": 40, "stream": stream, **params}
    return httpx.post(url + CHAT, json=body, timeout=30)


def trace(url: str, response: httpx.Response) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/admin/traces/{response.headers['x-llmops-trace-id']}").json())


def budgets(url: str, subject: str) -> list[dict[str, Any]]:
    response = httpx.get(url + "/admin/budgets", params={"subject": subject})
    assert response.status_code == 200, response.text
    return list(response.json()["budgets"])


def ledger_and_traces(db: Path, user: str) -> tuple[tuple[int, int], tuple[int, int], int]:
    """The ledger's spent (nano-USD, tokens) for the user, the sum of the user's traces, and the
    nano-USD the daemons' leases hold of the user's budgets."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        # The ledger follows the traces: bring it up to date first, as a daemon's check-in does every
        # few seconds, and read both in the same snapshot (a daemon may still be writing traces).
        conn.execute("BEGIN IMMEDIATE")
        budget_store.catch_up_ledger(conn)
        ledger = conn.execute(
            "SELECT coalesce(sum(spent_nanos), 0), coalesce(sum(spent_tokens), 0) FROM budget_ledger"
            " WHERE subject = ?", (f"user:{user}",)
        ).fetchone()  # fmt: skip
        traced = conn.execute(
            "SELECT coalesce(sum(CAST(round(cost_usd * 1e9) AS INTEGER)), 0),"
            " coalesce(sum(prompt_tokens + completion_tokens), 0) FROM traces WHERE user = ?", (user,)
        ).fetchone()  # fmt: skip
        held = conn.execute(
            "SELECT coalesce(sum(usd_nanos), 0) FROM budget_leases WHERE subject = ?", (f"user:{user}",)
        ).fetchone()[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    return tuple(ledger), tuple(traced), int(held)  # type: ignore[return-value]


@pytest.fixture
def budgeted(fake_upstream: FakeOpenAI, tmp_path: Path) -> Iterator[DaemonProcess]:
    (tmp_path / "profile.yaml").write_text(budget_profile(fake_upstream.base_url))
    daemon = DaemonProcess(profile=tmp_path / "profile.yaml", db=tmp_path / "llmops.db").start()
    yield daemon
    daemon.stop()


def reservation(url: str) -> float:
    """What one of the test's calls reserves (learnt from a probe under a budget of its own)."""
    set_budget(url, "user:probe", per="day", usd=100)
    response = ask(url, "probe")
    assert response.status_code == 200, response.text
    (reserved,) = [d["reason"] for d in trace(url, response)["decisions"] if d["stage"] == "budgets"]
    return float(reserved.split()[0].lstrip("$"))  # "$0.000290 and 52 tokens against ..."


def reserved(url: str, subject: str) -> float:
    """What the daemon at `url` says its calls in flight (and other daemons' leases) hold."""
    return sum(b["reserved_usd"] for b in budgets(url, subject))


def set_budget(url: str, subject: str, **limit: Any) -> None:
    response = httpx.put(f"{url}/admin/budgets/{subject}", json=limit)
    assert response.status_code == 200, response.text


def race(urls: list[str], fake: FakeOpenAI, calls: int, fits: int) -> list[httpx.Response]:
    """`calls` concurrent calls for alice over `urls` in turn; the upstream holds the ones it gets
    until all have either reached it or been refused, so that none settles early."""
    fake.hold()
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        response = ask(urls[n % len(urls)], "alice")
        with lock:
            results.append(response)

    try:
        with ThreadPoolExecutor(calls) as pool:
            futures = [pool.submit(one, n) for n in range(calls)]
            wait_until(
                lambda: fake.held + len(results) >= calls,
                timeout=30,
                what="every call to arrive or be refused",
            )
            assert fake.held == fits, f"{fake.held} calls reached the upstream; the budget fits {fits}"
            fake.release()
            for future in futures:
                future.result()
    finally:
        fake.release()
    return results


@pytest.mark.parametrize("fits", [7])
def test_64_concurrent_calls_against_a_budget_that_fits_n_never_overspend(
    budgeted: DaemonProcess, fake_upstream: FakeOpenAI, fits: int
) -> None:
    url = budgeted.url
    set_budget(url, "user:alice", per="day", usd=reservation(url) * fits)
    results = race([url], fake_upstream, 64, fits)
    refused = [r for r in results if r.status_code == 429]
    assert sum(r.status_code == 200 for r in results) == fits
    assert len(refused) == 64 - fits
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exceeded"}
    assert {r.json()["error"]["type"] for r in refused} == {"budget_exceeded"}
    ledger, traced, _ = ledger_and_traces(budgeted.db, "alice")
    assert ledger == traced and traced[0] > 0
    (day,) = budgets(url, "user:alice")
    assert day["reserved_usd"] == 0 and abs(day["spent_usd"] - traced[0] / 1e9) < 1e-12


def test_two_daemons_on_one_database_never_overspend_together(
    fake_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "profile.yaml").write_text(budget_profile(fake_upstream.base_url))
    first = DaemonProcess(profile=tmp_path / "profile.yaml", db=tmp_path / "llmops.db").start()
    second = DaemonProcess(profile=tmp_path / "profile.yaml", db=tmp_path / "llmops.db").start()
    try:
        fits = 9
        set_budget(first.url, "user:alice", per="day", usd=reservation(first.url) * fits)
        # The second daemon reads budgets set through the first one's API within its refresh.
        wait_until(lambda: budgets(second.url, "user:alice")[0]["source"] == "api", what="the second daemon")
        results = race([first.url, second.url], fake_upstream, 64, fits)
        assert sum(r.status_code == 200 for r in results) == fits
        assert all(r.json()["error"]["code"] == "budget_exceeded" for r in results if r.status_code != 200)
        assert {r.url.port for r in results} == {first.port, second.port}
        ledger, traced, _ = ledger_and_traces(first.db, "alice")
        assert ledger == traced
        # What a daemon's lease holds beyond its calls in flight goes back within its check-in (5 s).
        wait_until(
            lambda: ledger_and_traces(first.db, "alice")[2] == 0, timeout=15, what="the leases to empty"
        )
        assert reserved(first.url, "user:alice") == 0 == reserved(second.url, "user:alice")
    finally:
        first.stop()
        second.stop()


def test_the_429_names_the_budget_its_spend_and_reset_and_a_max_tokens_that_fits(
    budgeted: DaemonProcess,
) -> None:
    url = budgeted.url
    one = reservation(url)
    set_budget(url, "user:alice", per="day", usd=one * 1.5)
    answered = [ask(url, "alice") for _ in range(20)]
    refused = next(r for r in answered if r.status_code != 200)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    message = error["message"]
    assert "daily budget of user:alice (api)" in message
    assert "spent" in message and "reserved" in message and "resets at" in message
    assert "CET" in message  # the profile's timezone
    assert "A max_tokens of" in message
    smaller = int(message.split("A max_tokens of ")[1].split(" ")[0].replace(",", ""))
    assert 0 < smaller < 40
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["x-llmops-budget"] == "user:alice/day"
    fitted = ask(url, "alice", max_tokens=smaller)
    assert fitted.status_code == 200, fitted.text
    assert trace(url, refused)["error_code"] == "budget_exceeded"


def test_the_openai_sdk_raises_rate_limit_error_for_a_budget_429(budgeted: DaemonProcess) -> None:
    set_budget(budgeted.url, "user:sdk", per="total", tokens=5)
    client = openai.OpenAI(base_url=budgeted.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="fake", messages=QUESTION, user="sdk", max_tokens=40)  # type: ignore[arg-type]
    assert raised.value.code == "budget_exceeded"
    assert raised.value.type == "budget_exceeded"
    assert "total budget of user:sdk" in raised.value.message
    assert raised.value.response.headers["x-should-retry"] == "false"  # a total budget never resets


def test_every_answer_says_what_remains_and_warns_near_the_limit(budgeted: DaemonProcess) -> None:
    url = budgeted.url
    set_budget(url, "user:bob", per="month", tokens=400, warn_at=0.3)
    first = ask(url, "bob")
    assert first.status_code == 200
    spent = trace(url, first)
    used = spent["prompt_tokens"] + spent["completion_tokens"]
    assert int(first.headers["x-llmops-budget-remaining-tokens"]) == 400 - used
    assert first.headers["x-llmops-budget"] == "user:bob/month"
    warned = None
    for _ in range(20):
        response = ask(url, "bob")
        if "x-llmops-budget-warning" in response.headers:
            warned = response
            break
    assert warned is not None
    assert warned.headers["x-llmops-budget-warning"].startswith("user:bob/month at ")
    assert trace(url, warned)["metadata"]["budget_warning"] == warned.headers["x-llmops-budget-warning"]


def test_a_reservation_is_released_on_an_upstream_error_and_a_disconnect(
    budgeted: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    url = budgeted.url
    set_budget(url, "user:carol", per="day", usd=1.0)
    fake_upstream.inject(status=400, count=1)  # not retried: the call fails at once
    failed = ask(url, "carol")
    assert failed.status_code == 502 and trace(url, failed)["status"] == "error"
    ledger, traced, _ = ledger_and_traces(budgeted.db, "carol")
    assert reserved(url, "user:carol") == 0 and ledger == traced

    fake_upstream.inject(stream="slow")
    with httpx.stream("POST", url + CHAT, json={"model": "fake", "user": "carol", "stream": True,
                      "messages": [{"role": "user", "content": "one two three four five six seven eight"}]},
                      timeout=30) as response:  # fmt: skip
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content":"one"' in line.replace(" ", ""):
                assert reserved(url, "user:carol") > 0  # held while it streams
                break  # the client leaves mid-stream
    wait_until(lambda: reserved(url, "user:carol") == 0, what="the reservation's release")
    ledger, traced, _ = ledger_and_traces(budgeted.db, "carol")
    assert ledger == traced


def test_a_crashed_daemons_reservations_are_released_when_one_starts(
    fake_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "profile.yaml").write_text(budget_profile(fake_upstream.base_url))
    daemon = DaemonProcess(profile=tmp_path / "profile.yaml", db=tmp_path / "llmops.db").start()
    try:
        set_budget(daemon.url, "user:dave", per="week", usd=1.0)
        fake_upstream.hold()
        pool = ThreadPoolExecutor(3)
        calls = [pool.submit(ask, daemon.url, "dave") for _ in range(3)]
        wait_until(lambda: fake_upstream.held == 3, what="three calls in flight")
        assert reserved(daemon.url, "user:dave") > 0
        assert ledger_and_traces(daemon.db, "dave")[2] > 0  # the daemon's lease in the database
        daemon.kill()  # kill -9: nothing is settled or released
        fake_upstream.release()
        for call in calls:
            with pytest.raises(httpx.HTTPError):
                call.result()
        assert ledger_and_traces(daemon.db, "dave")[2] > 0
        daemon.start()
        assert ledger_and_traces(daemon.db, "dave")[2] == 0
        (week,) = budgets(daemon.url, "user:dave")
        assert week["reserved_usd"] == 0
    finally:
        fake_upstream.release()
        daemon.stop()


def test_a_cache_hit_reserves_nothing_and_costs_nothing(fake_upstream: FakeOpenAI, tmp_path: Path) -> None:
    profile = budget_profile(fake_upstream.base_url).replace(
        "budgets:\n", "cache:\n  scope: user\nbudgets:\n"
    )
    (tmp_path / "profile.yaml").write_text(profile)
    daemon = DaemonProcess(profile=tmp_path / "profile.yaml", db=tmp_path / "llmops.db").start()
    try:
        set_budget(daemon.url, "user:erin", per="day", usd=1.0)
        first = ask(daemon.url, "erin")
        assert first.headers["x-llmops-cache"] == "miss"
        spent = budgets(daemon.url, "user:erin")[0]["spent_usd"]
        assert spent > 0
        hit = ask(daemon.url, "erin")
        assert hit.headers["x-llmops-cache"] == "hit-exact"
        assert not any(d["stage"] == "budgets" for d in trace(daemon.url, hit)["decisions"])
        (day,) = budgets(daemon.url, "user:erin")
        assert (day["spent_usd"], day["reserved_usd"]) == (spent, 0)
    finally:
        daemon.stop()
