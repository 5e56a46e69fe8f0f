"""Pieces of the OpenAI wire format that several providers build or read: usage bodies, the
envelope of a stream's chunks, and an upstream's JSON object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from daemon.core.cost import Usage
from daemon.errors import ProviderError


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
