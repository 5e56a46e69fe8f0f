"""Token caps, pure: the most a call may ask a model to write, and a default where it asks nothing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Cap:
    tokens: int
    source: str  # whose cap: "model gpt-4o", "user alice"


def tightest(caps: Iterable[Cap]) -> Cap | None:
    return min(caps, key=lambda cap: cap.tokens, default=None)


def asked_max_tokens(body: dict[str, Any]) -> tuple[str, int | None]:
    """The field that caps the answer and its value; `max_completion_tokens` (the newer name) wins."""
    newer = body.get("max_completion_tokens")
    if newer is not None:
        return "max_completion_tokens", newer
    return "max_tokens", body.get("max_tokens")


def apply_cap(
    body: dict[str, Any], cap: Cap | None, default: int | None
) -> tuple[dict[str, Any], str | None]:
    """The body to send and what was done to it (None: nothing)."""
    field, asked = asked_max_tokens(body)
    if asked is None:
        if default is None and cap is None:
            return body, None
        if default is not None and (cap is None or default <= cap.tokens):
            return {**body, "max_tokens": default}, f"set max_tokens {default} (the default)"
        assert cap is not None
        return {**body, "max_tokens": cap.tokens}, f"set max_tokens {cap.tokens} (cap of {cap.source})"
    if cap is None or asked <= cap.tokens:
        return body, None
    return {**body, field: cap.tokens}, f"clipped {field} {asked} -> {cap.tokens} (cap of {cap.source})"
