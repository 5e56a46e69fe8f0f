"""Spend windows and time buckets: pure arithmetic over unix seconds and a UTC offset.

"today" and the N-day windows are calendar days in the viewer's time zone (the console sends its
UTC offset), so a bar labelled Tuesday holds Tuesday's calls wherever the daemon runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DAY = 86_400
HOUR = 3_600
# window name -> (calendar days, bucket seconds)
WINDOWS: dict[str, tuple[int, int]] = {"today": (1, HOUR), "7d": (7, HOUR * 6), "30d": (30, DAY)}
GROUPS = ("model", "user", "team")
ROLLUP_SECONDS = 3600  # storage keeps hourly sums (UTC hours)
SERIES_FIELDS = (
    "requests", "prompt_tokens", "completion_tokens", "cost_usd", "shadow_cost_usd",
    "saved_usd", "saved_tokens", "cache_lookups", "cache_hits", "semantic_hits",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SpendWindow:
    name: str
    since: float  # inclusive
    until: float  # exclusive: the end of today
    bucket_seconds: int
    utc_offset: int  # seconds east of UTC; buckets start at local midnight


def start_of_day(now: float, utc_offset: int) -> float:
    return float((int(now) + utc_offset) // DAY * DAY - utc_offset)


def spend_window(name: str, now: float, utc_offset: int) -> SpendWindow:
    """The calendar days of `name` ending with the day that contains `now`. KeyError if unknown.

    Storage sums whole UTC hours, so an offset with minutes (India +5:30, Nepal +5:45) is taken
    down to the whole hour: such a viewer's day starts 30 or 45 minutes after their midnight.
    The window returned says exactly which span was summed.
    """
    utc_offset -= utc_offset % ROLLUP_SECONDS
    days, bucket = WINDOWS[name]
    today = start_of_day(now, utc_offset)
    return SpendWindow(name, today - (days - 1) * DAY, today + DAY, bucket, utc_offset)


def bucket_start(ts: float, window: SpendWindow) -> float:
    size, offset = window.bucket_seconds, window.utc_offset
    return float((int(ts) + offset) // size * size - offset)


def fill_series(
    rows: list[dict[str, Any]], window: SpendWindow, names: tuple[str, ...] = SERIES_FIELDS
) -> list[dict[str, Any]]:
    """One entry per bucket of the window, zeros where nothing was spent."""
    by_start = {float(row["start"]): row for row in rows}
    series = []
    start = window.since
    while start < window.until:
        row = by_start.get(start)
        entry: dict[str, Any] = {"start": start}
        for name in names:
            entry[name] = row[name] if row else 0
        series.append(entry)
        start += window.bucket_seconds
    return series


def savings(totals: dict[str, Any]) -> dict[str, float]:
    """What serving locally saved (the reference model's price, the shadow cost only local calls
    have, minus what those calls cost), and what the cache saved (what its hits' original calls
    cost, and their tokens)."""
    local = float(totals.get("shadow_cost_usd") or 0) - float(totals.get("local_cost_usd") or 0)
    return {
        "local_serving_usd": max(local, 0.0),
        "cache_usd": float(totals.get("saved_usd") or 0),
        "cache_tokens": float(totals.get("saved_tokens") or 0),
    }


def hit_rate(hits: int, lookups: int) -> float | None:
    """Hits per cache lookup (None before any lookup)."""
    return hits / lookups if lookups else None
