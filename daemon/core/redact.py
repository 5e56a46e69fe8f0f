"""Scrubbing secrets out of text an upstream sent back, before the gateway copies it anywhere.

Why this exists: providers quote the key they were given ("Incorrect API key provided: sk-..."),
whole or masked, in error bodies and in error events in the middle of a stream. Whatever an
upstream says ends up in the client's error, the trace, the event bus and the log, and a gateway
holds every provider key of a team. So every upstream text we copy passes through `scrub` first.

Two kinds of rule, both replacing what they find with REDACTED:
- the keys we know (the ones we sent): the key itself, any run of it of MIN_RUN characters or
  more (a truncated echo still leaks most of a key), and its masked forms (a prefix or suffix of
  the key around a run of `*`, `•`, `…` or `...`: OpenAI shows `sk-abc1****...wxyz`);
- anything key-shaped, known or not (another provider's key in a proxy's message, a header
  echoed back): `sk-...` (OpenAI, Anthropic `sk-ant-`, OpenRouter `sk-or-`), other vendors'
  prefixed keys, JWTs, `Bearer <token>`, `x-api-key: ...`, `api_key=...`, masked tokens.

Pure: `re` only, no I/O (daemon/core is I/O-free; a test checks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_RUN = 8  # a shared run this long is the key's, not a coincidence (a key is 30-200 characters)
MIN_SECRET = 4  # shorter "secrets" are not searched for: they would blank ordinary words
MIN_AFFIX = 3  # the visible part of a masked key that must match the key's start or end

_KEY_CHAR = r"[A-Za-z0-9_\-]"
# A character of a possibly masked token. A dot counts only when more token follows, so the full
# stop after "sk-abc***wxyz." stays.
_TOKEN_CHAR = r"(?:[A-Za-z0-9_\-*\u2022\u2026]|\.(?=[A-Za-z0-9_\-*.\u2022\u2026]))"

# (pattern, group to blank): the group keeps a label ("Bearer ", "x-api-key: ") readable.
_SHAPES: tuple[tuple[re.Pattern[str], str | int], ...] = (
    # OpenAI, Anthropic (sk-ant-), OpenRouter (sk-or-), DeepSeek and others, masked or not
    (re.compile(rf"(?<!{_KEY_CHAR})sk-{_TOKEN_CHAR}{{4,}}"), 0),
    # other vendors' prefixed keys: Google, GitHub, Groq, xAI, Hugging Face, Replicate,
    # Perplexity, Fireworks, Slack, AWS access key ids
    (
        re.compile(
            r"(?<![A-Za-z0-9_\-])(?:AIza[0-9A-Za-z_\-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}"
            r"|github_pat_[A-Za-z0-9_]{20,}|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,}"
            r"|hf_[A-Za-z0-9]{20,}|r8_[A-Za-z0-9]{20,}|pplx-[A-Za-z0-9]{20,}|fw_[A-Za-z0-9]{20,}"
            r"|xox[abposr]-[A-Za-z0-9\-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16})"
        ),
        0,
    ),
    # JSON Web Tokens (a session token is as good as a key)
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), 0),
    # "Bearer <token>": a token has a digit or punctuation, so "Bearer authentication" survives
    (
        re.compile(r"(?i)\b(?:bearer|basic)\s+(?P<secret>(?=[^\s\"'<>,;]*[\d_.~+/=\-])[^\s\"'<>,;]{8,})"),
        "secret",
    ),
    # a header or field that holds a secret, echoed back: "x-api-key: ...", "api_key": "..."
    (
        re.compile(
            r"(?i)\b(?:x-api-key|api[-_ ]?key|authorization|access[-_]token|client[-_]secret)"
            r"[\"']?\s*[:=]\s*[\"']?(?P<secret>(?:(?:bearer|basic|token)\s+)?[^\s\"',;}&]+)"
        ),
        "secret",
    ),
    # a secret in a query string
    (re.compile(r"(?i)[?&](?:api[-_]?key|key|token|access[-_]token)=(?P<secret>[^&\s\"'#]+)"), "secret"),
    # a masked token: visible characters around a run of stars (or bullets, or an ellipsis)
    (re.compile(rf"(?<!{_KEY_CHAR}){_KEY_CHAR}{{2,}}(?:[*\u2022]{{3,}}|\u2026){_KEY_CHAR}*"), 0),
    (re.compile(rf"(?<!{_KEY_CHAR}){_KEY_CHAR}*(?:[*\u2022]{{3,}}|\u2026){_KEY_CHAR}{{2,}}"), 0),
)

# A key's masked form: what is shown of it around a mask (dots count here, for a known key only:
# "Loading...done" is not a key, "sk-abc...wxyz" is when the key starts with "sk-abc").
# (Matches start only where a token starts: a long unmasked token costs one scan, not one per
# character.)
_MASKED = re.compile(
    rf"(?<!{_KEY_CHAR})(?P<head>{_KEY_CHAR}*)(?:[*.\u2022]{{3,}}|\u2026+)(?P<tail>{_KEY_CHAR}*)"
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret, masked form and key-shaped token replaced by REDACTED."""
    if not text:
        return text
    spans: list[tuple[int, int]] = []
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET:
            spans += _runs_of(secret, text)
            spans += _masked_forms(secret, text)
    for pattern, group in _SHAPES:
        for match in pattern.finditer(text):
            start, end = match.span(group)
            if text[start:end] != REDACTED:
                spans.append((start, end))
    return _blank(text, spans)


def _runs_of(secret: str, text: str) -> list[tuple[int, int]]:
    """Where `text` shares a run of at least MIN_RUN characters with `secret` (the whole of a
    shorter secret): each seed of MIN_RUN characters found is widened as far as both agree."""
    if len(secret) < MIN_RUN:
        return [(m.start(), m.end()) for m in re.finditer(re.escape(secret), text)]
    spans = []
    for offset in range(len(secret) - MIN_RUN + 1):
        seed = secret[offset : offset + MIN_RUN]
        found = text.find(seed)
        while found >= 0:
            start, end = found, found + MIN_RUN
            left, right = offset, offset + MIN_RUN
            while start > 0 and left > 0 and text[start - 1] == secret[left - 1]:
                start, left = start - 1, left - 1
            while end < len(text) and right < len(secret) and text[end] == secret[right]:
                end, right = end + 1, right + 1
            spans.append((start, end))
            found = text.find(seed, found + 1)
    return spans


def _masked_forms(secret: str, text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _MASKED.finditer(text):
        head, tail = match.group("head"), match.group("tail")
        shown_start = len(head) >= MIN_AFFIX and secret.startswith(head)
        shown_end = len(tail) >= MIN_AFFIX and secret.endswith(tail)
        if shown_start or shown_end:
            spans.append(match.span())
    return spans


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    spans.sort()
    pieces, position = [], 0
    merged_start, merged_end = spans[0]
    for start, end in spans[1:] + [(len(text) + 1, len(text) + 1)]:
        if start <= merged_end:  # overlapping or touching: one redaction
            merged_end = max(merged_end, end)
            continue
        pieces += [text[position:merged_start], REDACTED]
        position = merged_end
        merged_start, merged_end = start, end
    pieces.append(text[position:])
    return "".join(pieces)
