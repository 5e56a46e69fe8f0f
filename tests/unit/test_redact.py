"""daemon/core/redact.py: keys (ours, and anyone's) out of what upstreams say; ordinary text kept."""

from __future__ import annotations

import pytest

from daemon.core.redact import MIN_RUN, REDACTED, scrub

KEY = "sk-proj-abc1Q7vL2mXk9RtPz4NwYc8HbJd3GfSe6UoVa5KiTl0Mn-wxyz"
PLAIN_KEY = "my-very-own-secret-token-7q2x9z"  # a key with no recognisable shape


def masked_like_openai(key: str) -> str:
    return key[:7] + "*" * (len(key) - 11) + key[-4:]


@pytest.mark.parametrize(
    "text",
    [
        f"Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com.",
        f"Incorrect API key provided: {masked_like_openai(KEY)}. You can find your API key at ...",
        "Incorrect API key provided: sk-proj-****************************************wxyz.",
        "key sk-proj-abc1...wxyz rejected",
        "key ...Mn-wxyz rejected",
        "key \u2022\u2022\u2022\u2022Mn-wxyz rejected",
        f"truncated echo: {KEY[:20]}",
        f"tail of it: {KEY[-12:]}",
        f"inside a run of letters: zz{KEY[10:30]}zz",
        f'{{"error": {{"message": "bad key {KEY}"}}}}',
        f"authorization: Bearer {KEY}",
        f"x-api-key: {KEY}",
        f"GET /v1/models?api_key={KEY}&x=1",
    ],
)
def test_our_key_and_its_masked_forms_are_blanked(text: str) -> None:
    scrubbed = scrub(text, [KEY])
    assert REDACTED in scrubbed
    assert KEY not in scrubbed and masked_like_openai(KEY) not in scrubbed
    assert not any(KEY[i : i + MIN_RUN] in scrubbed for i in range(len(KEY) - MIN_RUN + 1)), scrubbed


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        (f"denied for {PLAIN_KEY}", PLAIN_KEY),
        (f"denied for {PLAIN_KEY[:9]}****{PLAIN_KEY[-4:]}", PLAIN_KEY[:9]),
        (f"denied for {PLAIN_KEY[3:15]}", PLAIN_KEY[3:15]),
    ],
)
def test_a_key_of_no_known_shape_is_blanked_when_configured(text: str, gone: str) -> None:
    assert gone in text
    assert gone not in scrub(text, [PLAIN_KEY])
    assert gone in scrub(text) or "****" in text  # without the key, only masked shapes go


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Invalid key sk-ant-api03-Xy7_kLmN0pQrStUvWxYz012345-AbCdEfGh-IjKlMnOpAA", "sk-ant-api03-Xy7"),
        (
            "key sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef is out of credit",
            "0123456789abcdef",
        ),
        ("Incorrect API key provided: sk-abc1***************wxyz", "sk-abc1"),
        ("legacy key sk-T3BlbkFJ0123456789abcdef", "T3BlbkFJ"),
        ("API key not valid: AIzaSyD-0123456789abcdefghijklmnopqrstu", "AIzaSyD"),
        ("token ghp_0123456789abcdefghijABCDEFGHIJ012345 expired", "ghp_0123"),
        ("groq gsk_0123456789abcdefghijABCDEFGHIJ", "gsk_0123"),
        ("xai-0123456789abcdefghijABCDEFGHIJ is not valid", "xai-0123"),
        ("hf_0123456789abcdefghijABCDEFGHIJ rejected", "hf_0123"),
        ("aws AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7"),
        ("slack xoxb-1234567890-abcdefghij", "xoxb-1234"),
        (
            "session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9",
            "eyJhbGciOiJIUzI1NiJ9",
        ),
        ("Authorization: Bearer 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a"),
        ("proxy said: bearer abc.def.ghi-123", "abc.def.ghi"),
        ('echo of headers {"x-api-key": "k-live-123456"}', "k-live-123456"),
        ("api_key=0a1b2c3d4e5f", "0a1b2c3d4e5f"),
        ("your key ab12*****************yz89 is invalid", "ab12"),
    ],
)
def test_key_shaped_tokens_of_any_provider_are_blanked(text: str, secret: str) -> None:
    scrubbed = scrub(text)
    assert secret not in scrubbed and REDACTED in scrubbed, scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "Rate limit reached for requests. Please try again in 20s.",
        "The model `gpt-4o-mini` does not exist or you do not have access to it.",
        "Bearer authentication failed",
        "x-api-key header is required",
        "Loading...done",
        "task-force-one and risk-free answers",
        "**Overloaded** (request req_011CQ2x) see https://docs.anthropic.com/en/api/errors",
        "messages.0.content: Input should be a valid list",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text, [KEY]) == text


def test_scrubbing_is_idempotent_and_merges_overlapping_finds() -> None:
    text = f"authorization: Bearer {KEY} and {KEY[:-3]}"
    once = scrub(text, [KEY])
    assert once == f"authorization: {REDACTED} and {REDACTED}"
    assert scrub(once, [KEY]) == once


def test_secrets_too_short_to_search_for_are_ignored() -> None:
    assert scrub("the word abc stays", ["abc", ""]) == "the word abc stays"
