"""GET /admin/budgets?window=today as a daemon with budgets answers it at FROZEN_NOW (Thursday 15 January
2026, 16:00 in Paris), for the budgets view's snapshots.

A real daemon computes its budgets' windows from the real clock, so no seeded daemon can give a
picture that stays the same from one day to the next; this answer is recorded instead, and
test_budgets.py checks that it still has the shape of a real daemon's answer.
"""

from __future__ import annotations

from typing import Any

from tests.tui.conftest import FROZEN_NOW

DAY_START, DAY_END = 1_768_431_600.0, 1_768_518_000.0  # Thu 15 Jan, midnight to midnight in Paris
WEEK_START, WEEK_END = 1_768_172_400.0, 1_768_777_200.0  # from Monday 12 January
MONTH_START, MONTH_END = 1_767_222_000.0, 1_769_900_400.0  # January
TODAY_UTC = 1_768_435_200.0  # the refusals' window: the viewer's day (UTC in the snapshots)


def budget(name: str, period: str, window: tuple[float, float | None], source: str, *,
           usd: float | None = None, tokens: int | None = None, spent: tuple[float, int] = (0.0, 0),
           reserved: tuple[float, int] = (0.0, 0), warning: str | None = None,
           subject: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One budget's standing, its derived fields computed as the daemon computes them."""
    shares = [0.0]
    if usd:
        shares.append((spent[0] + reserved[0]) / usd)
    if tokens:
        shares.append((spent[1] + reserved[1]) / tokens)
    start, end = window
    return {
        "subject": subject or name, "name": name, "period": period, "source": source,
        "usd": usd, "tokens": tokens, "warn_at": 0.8,
        "window_start": start, "window_end": end,
        "resets_in_s": None if end is None else round(end - FROZEN_NOW, 1),
        "spent_usd": spent[0], "spent_tokens": spent[1],
        "reserved_usd": reserved[0], "reserved_tokens": reserved[1],
        "remaining_usd": None if usd is None else round(usd - spent[0] - reserved[0], 9),
        "remaining_tokens": None if tokens is None else tokens - spent[1] - reserved[1],
        "used_share": round(max(shares), 4), "warning": warning,
    }  # fmt: skip


BUDGETS = [
    budget("user:alice", "day", (DAY_START, DAY_END), "profile", usd=5.0, spent=(4.1, 41_900),
           reserved=(0.06, 900), warning="user:alice/day at 83% of $5.00"),
    budget("user:bob", "day", (DAY_START, DAY_END), "api (over the profile's $1.00)", usd=2.0,
           spent=(0.42, 5_300)),
    budget("user:bob", "month", (MONTH_START, MONTH_END), "profile", usd=40.0, tokens=2_000_000,
           spent=(12.5, 812_400)),
    budget("user:carol", "month", (MONTH_START, MONTH_END), "profile default", tokens=200_000,
           spent=(2.9, 200_310), warning="user:carol/month at 100% of 200,000 tokens"),
    budget("user:dave", "month", (MONTH_START, MONTH_END), "profile default", tokens=200_000,
           spent=(0.31, 15_200), reserved=(0.01, 4_600)),
    budget("team:research", "week", (WEEK_START, WEEK_END), "profile", usd=100.0, spent=(61.75, 598_000),
           reserved=(0.06, 900)),
    # Reset by hand at 14:30 today: the day starts again from there.
    budget("team:support", "day", (FROZEN_NOW - 1800, DAY_END), "profile", usd=10.0, spent=(0.8, 9_100)),
    budget("key:ci-bot", "total", (0.0, None), "api", usd=50.0, spent=(31.2, 2_950_000),
           subject="key:3f9a1c2b7d4e"),
]  # fmt: skip

# Refusals per hour of the viewer's day, up to FROZEN_NOW (15:00 UTC).
REFUSED = {8: (0, 1), 9: (3, 0), 10: (7, 2), 11: (2, 4), 13: (0, 6), 14: (5, 9)}

BUDGETS_ANSWER: dict[str, Any] = {
    "object": "budgets",
    "enabled": True,
    "timezone": "Europe/Paris",
    "budgets": BUDGETS,
    "rate_limits": {
        "default": {"requests_per_minute": 60, "tokens_per_minute": None},
        "users": {"carol": {"requests_per_minute": 3, "tokens_per_minute": None}},
        "keys": {"ci-bot": {"requests_per_minute": None, "tokens_per_minute": 50_000}},
        "teams": {},
    },
    "caps": {"default_max_tokens": 1024, "models": {}, "users": {}, "keys": {}, "teams": {}},
    "window": "today",
    "since": TODAY_UTC,
    "until": TODAY_UTC + 86_400,
    "bucket_seconds": 3600,
    "rejections": [
        {
            "start": TODAY_UTC + hour * 3600,
            "rate_limited": REFUSED.get(hour, (0, 0))[0],
            "over_budget": REFUSED.get(hour, (0, 0))[1],
        }
        for hour in range(24)
    ],  # fmt: skip
    "top_spenders": [
        {"user": "alice", "cost_usd": 4.1, "tokens": 41_900, "requests": 412},
        {"user": "bob", "cost_usd": 0.42, "tokens": 5_300, "requests": 38},
        {"user": "carol", "cost_usd": 0.37, "tokens": 24_100, "requests": 96},
        {"user": "dave", "cost_usd": 0.02, "tokens": 15_200, "requests": 21},
    ],
}
