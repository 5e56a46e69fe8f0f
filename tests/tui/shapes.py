"""How a recorded API answer is checked against a real one: by its shape."""

from __future__ import annotations

from typing import Any


def shape(value: Any) -> Any:
    """Keys all the way down (the first item of a list stands for all): what the view relies on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None
