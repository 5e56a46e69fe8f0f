"""Pure rules about request bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def with_defaults(body: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with a model's default parameters where it sets none. A client that caps its answer
    with `max_completion_tokens` (the newer name) gets no default `max_tokens` beside it."""
    capped = body.get("max_completion_tokens") is not None
    added = {
        name: value
        for name, value in defaults.items()
        if body.get(name) is None and not (name == "max_tokens" and capped)
    }
    return {**body, **added} if added else body


def message_text(content: Any, separator: str = "") -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return separator.join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def user_texts(body: Mapping[str, Any], separator: str = "") -> list[str]:
    """The text of each user message, in order."""
    return [
        message_text(m.get("content"), separator)
        for m in body.get("messages") or []
        if isinstance(m, dict) and m.get("role") == "user"
    ]
