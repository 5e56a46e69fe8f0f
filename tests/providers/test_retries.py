"""Issue 8, defect 6: which failures are retried, counted at the upstream.

A POST is sent again only when it provably did not reach the model (no connection), or when
the upstream said to (429, 5xx, 529 with a response head). A timeout, a reset after the request
went out and a response that had begun are final: the model may be running, and billing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from daemon.errors import ProviderError, UpstreamTimeout
from daemon.providers.failures import retry_after_seconds
from tests.fixtures.fake_openai import free_port
from tests.fixtures.faulty_upstream import Fault, FaultyUpstream
from tests.providers.conftest import KEY, KEY_ENV, MODEL, TRANSPORTS, chat, openai_provider

RETRIES = 2
SLACK = 2.0

# fault, its options, the error's class (status), attempts at the upstream, the message
FINAL = [
    (Fault.RESET_BEFORE_ANSWER, {}, ProviderError, 1, "reset the connection before answering"),
    (Fault.RESET_AFTER_HEAD, {"body_bytes": 10}, ProviderError, 1, "broke off its response"),
    (Fault.HANG, {}, UpstreamTimeout, 1, "timed out waiting for a response"),
    (Fault.NOT_HTTP, {}, ProviderError, 1, "sent an invalid or incomplete response"),
    (Fault.KEY_ECHO_JSON, {"masked": True}, ProviderError, 1, "answered HTTP 401"),
    (Fault.RATE_LIMITED, {"retry_after": "120"}, ProviderError, 1, "asked to be retried after 120 s"),
    (
        Fault.HTML_500,
        {},
        ProviderError,
        1 + RETRIES,
        r"answered HTTP 500: an HTML page \(500 Internal Server",
    ),
    (
        Fault.HTML_503,
        {},
        ProviderError,
        1 + RETRIES,
        r"answered HTTP 503: an HTML page \(503 Service Unavailable",
    ),
    (Fault.RATE_LIMITED, {"retry_after": "0"}, ProviderError, 1 + RETRIES, "answered HTTP 429: Rate limit"),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("fault", "options", "error", "attempts", "match"),
    FINAL,
    ids=[f"{f[0].value}-{f[3]}" for f in FINAL],
)
async def test_each_fault_is_retried_only_when_the_model_cannot_have_run(
    upstream: FaultyUpstream,
    transport: str,
    fault: Fault,
    options: dict[str, Any],
    error: type[ProviderError],
    attempts: int,
    match: str,
) -> None:
    upstream.inject(fault, count=None, **options)
    provider = openai_provider(upstream, transport, retries=RETRIES, read=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError, match=match) as caught:
            await provider.complete(chat())
    finally:
        await provider.aclose()
    elapsed = time.monotonic() - started
    assert type(caught.value) is error, caught.value
    assert MODEL in caught.value.message
    assert upstream.attempts(fault) == attempts, caught.value.message
    if attempts > 1:
        assert f"({attempts} attempts)" in caught.value.message
    assert elapsed < attempts * 0.5 + MAX_BACKOFF_TOTAL + SLACK  # one read timeout per attempt at most


MAX_BACKOFF_TOTAL = 0.25 + 0.5  # the jittered backoff's ceilings for attempts 0 and 1


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", [Fault.HTML_503, Fault.HTML_500, Fault.RATE_LIMITED])
async def test_a_refusal_then_an_answer_succeeds(
    upstream: FaultyUpstream, transport: str, fault: Fault
) -> None:
    upstream.inject(fault, count=2, retry_after="0.2")
    provider = openai_provider(upstream, transport, retries=RETRIES)
    started = time.monotonic()
    try:
        completion = await provider.complete(chat())
    finally:
        await provider.aclose()
    assert completion.text == "Echo: one two three"
    assert upstream.attempts(fault) == 2 and upstream.attempts(None) == 1
    if fault is Fault.RATE_LIMITED:
        assert time.monotonic() - started >= 0.4  # retry-after was honoured, twice


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_refused_connection_is_retried_and_says_so(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)

    class Nowhere:  # an upstream whose port nobody listens on
        openai_url = f"http://127.0.0.1:{free_port()}/v1"

    provider = openai_provider(Nowhere(), transport, retries=RETRIES)  # type: ignore[arg-type]
    try:
        with pytest.raises(ProviderError, match="could not be reached") as caught:
            await provider.complete(chat())
    finally:
        await provider.aclose()
    assert f"({1 + RETRIES} attempts)" in caught.value.message  # connection errors are retried


async def test_a_reused_connection_closed_before_answering_is_resent_once(upstream: FaultyUpstream) -> None:
    """http1's one transparent resend: a kept-alive connection that turns out closed is, almost
    always, one the upstream dropped while idle. The resend goes over a fresh connection, and a
    failure there is final."""
    provider = openai_provider(upstream, retries=RETRIES)
    try:
        await provider.complete(chat())  # leaves a kept-alive connection in the pool
        upstream.inject(Fault.RESET_BEFORE_ANSWER, count=1)
        assert (await provider.complete(chat())).text == "Echo: one two three"
        assert upstream.attempts(Fault.RESET_BEFORE_ANSWER) == 1 and upstream.attempts(None) == 2

        upstream.inject(Fault.RESET_BEFORE_ANSWER, count=None)
        with pytest.raises(ProviderError, match="reset the connection before answering"):
            await provider.complete(chat())
        assert upstream.attempts(Fault.RESET_BEFORE_ANSWER) == 1 + 2  # the reused try, the fresh one
    finally:
        await provider.aclose()


async def test_a_reused_connection_that_breaks_after_the_head_is_not_resent(upstream: FaultyUpstream) -> None:
    provider = openai_provider(upstream, retries=RETRIES)
    try:
        await provider.complete(chat())
        upstream.inject(Fault.RESET_AFTER_HEAD, count=None)
        with pytest.raises(ProviderError, match="broke off its response"):
            await provider.complete(chat())
    finally:
        await provider.aclose()
    assert upstream.attempts(Fault.RESET_AFTER_HEAD) == 1


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past: now
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_in_its_forms(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(headers) == seconds
