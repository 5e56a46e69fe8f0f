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
