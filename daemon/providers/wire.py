"""Pieces of the OpenAI wire format that several providers build or read: usage bodies, the
envelope of a stream's chunks, an upstream's JSON object, and a whole completion replayed as a
stream."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from daemon.core.cost import Usage
from daemon.errors import ProviderError
from daemon.providers.base import Chunk, Completion


def usage_body(usage: Usage, cache_reported: bool = False) -> dict[str, Any]:
    """OpenAI's `usage`; `prompt_tokens_details` only from providers that report cache reads."""
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if cache_reported:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return body


@dataclass(frozen=True, slots=True)
class StreamFrame:
    """What every chunk of one stream repeats."""

    id: str
    created: int
    model: str
    cache_reported: bool = False

    def payload(self, choices: list[dict[str, Any]], usage: Usage | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            body["usage"] = usage_body(usage, self.cache_reported)
        return orjson.dumps(body)

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return self.payload([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])


def json_object(data: bytes, upstream: str, what: str) -> dict[str, Any]:
    """`data` (`what` the upstream sent: "a response", "a stream event") as a JSON object."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProviderError(f"Upstream {upstream!r} sent {what} that is not JSON.") from None
    if type(parsed) is not dict:
        raise ProviderError(f"Upstream {upstream!r} sent {what} that is not an object.")
    return parsed


def replay(completion: Completion, model: str, created: int) -> list[Chunk]:
    """A whole completion as the chunks of a stream (a stage's answer to a streaming call): the
    role, the message's content and tool calls in one delta, the finish reason, then usage."""
    choices = completion.body.get("choices") or [{}]
    message = (choices[0].get("message") if isinstance(choices[0], dict) else None) or {}
    delta: dict[str, Any] = {"role": "assistant", "content": completion.text}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
    frame = StreamFrame(str(completion.body.get("id") or "chatcmpl-llmops"), created, model)
    return [
        Chunk(payload=frame.delta(delta), text=completion.text),
        Chunk(payload=frame.delta({}, completion.finish_reason), finish_reason=completion.finish_reason),
        Chunk(payload=frame.payload([], completion.usage), usage=completion.usage, usage_only=True),
    ]


def token_count(value: Any, upstream: str, field: str) -> int:
    """A token count from an upstream's usage: absent or null is 0. Anything else that is not a
    whole number >= 0 makes the answer malformed (a 502), where int() would have crashed (a 500)
    or believed a string. The value is not quoted: it came from the upstream."""
    if value is None:
        return 0
    if type(value) is int and value >= 0:
        return value
    if type(value) is float and value.is_integer() and value >= 0:
        return int(value)
    raise ProviderError(
        f"Upstream {upstream!r} sent malformed usage: {field} is a {type(value).__name__}, not a count."
    )


def malformed(upstream: str, what: str) -> ProviderError:
    """The error for an upstream answer of the wrong shape (`what`: "a completion whose message is
    not an object")."""
    return ProviderError(f"Upstream {upstream!r} sent {what}.")


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
ERROR_SCAN_BYTES = 4000  # more of an error body than anyone reads; the key scrub reads it all


def error_message(raw: bytes, content_type: str) -> str:
    """What an error body says, in one line, NOT yet redacted (RemoteClient.quote does that):
    the message of OpenAI's and Anthropic's error JSON (and the `error`, `message` or `detail`
    string other servers send), the title of an HTML page (a proxy's 502 page), or the text."""
    head = raw[:ERROR_SCAN_BYTES]
    try:
        parsed = orjson.loads(raw) if len(raw) <= 1 << 20 else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        for candidate in (
            error.get("message") if isinstance(error, dict) else error,
            parsed.get("message"),
            parsed.get("detail"),
        ):
            if isinstance(candidate, str) and candidate.strip():
                return _one_line(candidate[:ERROR_SCAN_BYTES])
    if "html" in content_type.lower() or head.lstrip()[:1] == b"<":
        title = _TITLE.search(head)
        text = _one_line(title.group(1).decode(errors="replace")) if title else ""
        return f"an HTML page ({text})" if text else "an HTML page"
    return _one_line(head.decode(errors="replace")) or "(no body)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def completion_body(completion_id: str, created: int, model: str, text: str, finish_reason: str | None,
                    usage: Usage) -> dict[str, Any]:  # fmt: skip
    """An OpenAI chat.completion holding one assistant message."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],  # fmt: skip
        "usage": usage_body(usage),
    }
