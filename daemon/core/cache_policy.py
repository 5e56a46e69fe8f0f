"""Whether a request may use the cache at all: the client's say (headers) and the profile's skip
rules. Pure: plain data in, a reason out."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from daemon.core.request import user_texts

SKIP_RULES = ("temperature", "tools", "code", "current")

# Asking for code: an answer that looks right and is subtly wrong is worse than a call.
_CODE = re.compile(
    r"```|\b(write|implement|generate|create|fix|refactor|debug)\b[^.?!\n]{0,40}"
    r"\b(code|function|script|program|class|method|query|regex|snippet|test|module)s?\b",
    re.IGNORECASE,
)
_CODE_HINTS = ("```", "write", "implement", "generate", "create", "fix", "refactor", "debug")
# Asking about now: yesterday's answer to "what is the price today" is wrong today.
_CURRENT = re.compile(
    r"\b(today|tonight|right now|currently|current(ly)?|latest|this (week|month|year)|yesterday|"
    r"tomorrow|weather|stock price|exchange rate|news|what time|what day|what date)\b",
    re.IGNORECASE,
)
_CURRENT_HINTS = ("today", "tonight", "now", "current", "latest", "this ", "yesterday", "tomorrow",
                  "weather", "stock", "exchange", "news", "what time", "what day", "what date")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Control:
    """What the client asked of the cache for this request."""

    read: bool = True  # False: Cache-Control: no-cache (answer fresh, then store: a refresh)
    store: bool = True  # False: Cache-Control: no-store
    bypass: bool = False  # x-llmops-cache: bypass (neither)


DEFAULT = Control()


def control_of(headers: Mapping[bytes, bytes]) -> Control:
    bypass, cache_control = headers.get(b"x-llmops-cache"), headers.get(b"cache-control")
    if bypass is not None and bypass.strip().lower() == b"bypass":
        return Control(read=False, store=False, bypass=True)
    if cache_control is None:
        return DEFAULT
    directives = {d.strip() for d in cache_control.lower().split(b",")}
    return Control(read=b"no-cache" not in directives, store=b"no-store" not in directives)


def skip_reason(body: Mapping[str, Any], rules: Collection[str], max_temperature: float) -> str | None:
    """Why this request should not be cached, or None."""
    temperature = body.get("temperature")
    if "temperature" in rules and isinstance(temperature, int | float) and temperature > max_temperature:
        return f"temperature {temperature:g} > {max_temperature:g}"
    if "tools" in rules and (body.get("tools") or body.get("functions")):
        return "the request offers tools"
    if "code" not in rules and "current" not in rules:
        return None
    text = "\n".join(user_texts(body)).lower()
    if "code" in rules and _maybe(text, _CODE_HINTS) and _CODE.search(text):
        return "it asks for code"
    if "current" in rules and _maybe(text, _CURRENT_HINTS) and _CURRENT.search(text):
        return "it asks about the present"
    return None


def _maybe(text: str, hints: tuple[str, ...]) -> bool:
    """A cheap substring test before the regex: most requests contain none of the hints."""
    return any(hint in text for hint in hints)
