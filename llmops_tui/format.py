"""How numbers, times and scores look in the console: pure functions, shared by every screen."""

from __future__ import annotations

import math
import shlex
import time
from collections.abc import Mapping, Sequence
from typing import Any

WINDOWS = {"today": "Today", "7d": "7 days", "30d": "30 days"}  # the daemon's spend windows, as tabs
SLOW_MS = 2_000.0  # a call this slow is shown in yellow; five times this, in red
FILTER_FIELDS = ("model", "route", "user", "team", "status")


def next_of(options: Sequence[str] | Mapping[str, Any], current: str) -> str:
    """The option after `current`, the first after the last: what a key that cycles shows next."""
    names = list(options)
    return names[(names.index(current) + 1) % len(names)]


def clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1_000:
        return f"{value:.0f}ms"
    if value < 60_000:
        return f"{value / 1000:.1f}s"
    return f"{value / 60_000:.1f}m"


def usd(value: float | None) -> str:
    if not value:
        return "$0"
    if value < 1:  # two significant digits: $0.42, $0.0042, $0.000031
        decimals = min(2 - math.floor(math.log10(value)) - 1, 8)
        return f"${value:.{decimals}f}"
    if value < 100:
        return f"${value:.2f}"
    return f"${value:,.0f}"


def count(value: int | float) -> str:
    value = int(value)
    if value < 10_000:
        return str(value)
    if value < 1_000_000:
        return f"{value / 1000:.1f}k"
    return f"{value / 1_000_000:.1f}M"


def duration(seconds: float) -> str:
    """A wait as people say it: `3 h 12 min`, `2 d 5 h`, `45 min`, `30 s`."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


Rating = float | str  # stars 1-5, or "up" / "down" for thumbs


def rating_of(entry: dict[str, Any], score_key: str = "score", kind_key: str = "kind") -> Rating | None:
    """The daemon's (score, kind) as one value: thumbs are stored as score 1 / -1 with kind 'thumbs'."""
    value = entry.get(score_key)
    if value is None:
        return None
    if entry.get(kind_key) == "thumbs":
        return "up" if value > 0 else "down"
    return float(value)


def score(value: Rating | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "▲" if value == "up" else "▼"
    return f"★{value:g}"


def rating_mood(value: Rating | None) -> str | None:
    """'good', 'bad' or None: how the rating cell is coloured."""
    if value is None:
        return None
    if isinstance(value, str):
        return "good" if value == "up" else "bad"
    return "bad" if value <= 2 else "good" if value >= 4 else None


def slowness(latency_ms: float | None) -> str | None:
    if latency_ms is None or latency_ms < SLOW_MS:
        return None
    return "very-slow" if latency_ms >= SLOW_MS * 5 else "slow"


def parse_filter(text: str) -> dict[str, str]:
    """`model:gpt-4o route:auto user:alice status:error refund policy` -> /admin/traces parameters.

    Words without a known `field:` prefix form the free-text search (`q`); quotes group words.
    """
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote: take the words as they are
        words = text.split()
    query: dict[str, str] = {}
    free: list[str] = []
    for word in words:
        field, sep, value = word.partition(":")
        if sep and field.lower() in FILTER_FIELDS and value:
            query[field.lower()] = value
        else:
            free.append(word)
    if free:
        query["q"] = " ".join(free)
    return query


def describe_filter(query: dict[str, str]) -> str:
    parts = [f"{k}:{v}" for k, v in query.items() if k != "q"]
    if query.get("q"):
        parts.append(f'"{query["q"]}"')
    return " ".join(parts)


def matches(trace: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    """Whether a live trace belongs under the filter's structured fields (the daemon's semantics)."""
    model = query.get("model")
    if model and model not in (trace.get("served_model"), trace.get("requested_model")):
        return False
    return all(trace.get(field) == query[field] for field in FILTER_FIELDS[1:] if query.get(field))
