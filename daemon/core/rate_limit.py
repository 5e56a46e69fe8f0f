"""Rate limits by GCRA (the generic cell rate algorithm), pure: one timestamp per limit.

A limit of N per minute lets a full minute's worth through at once, then refills one unit every
60/N seconds: a token bucket of capacity N, kept as its "theoretical arrival time" (`tat`), the
moment the bucket would be full again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW = 60.0  # seconds: limits are per minute


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int  # units left after this request (when allowed)
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until this request would fit (0 when allowed; inf: never)


class Gcra:
    """One bucket: `limit` units per minute."""

    __slots__ = ("limit", "tat")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tat = 0.0

    @property
    def interval(self) -> float:
        return WINDOW / self.limit

    def check(self, now: float, amount: int = 1) -> Verdict:
        """Whether `amount` units fit now, without taking them."""
        tat = max(self.tat, now)
        new_tat = tat + amount * self.interval
        over = new_tat - now - WINDOW
        if amount > self.limit:
            return Verdict(False, self.limit, self._remaining(tat, now), tat - now, math.inf)
        if over > 1e-9:
            return Verdict(False, self.limit, self._remaining(tat, now), tat - now, over)
        return Verdict(True, self.limit, self._remaining(new_tat, now), new_tat - now, 0.0)

    def take(self, now: float, amount: int = 1) -> None:
        self.tat = max(self.tat, now) + amount * self.interval

    def give_back(self, now: float, amount: int) -> None:
        """Units taken and not used (a call's tokens estimated above what it used)."""
        if amount > 0:
            self.tat = max(self.tat - amount * self.interval, min(self.tat, now))

    def _remaining(self, tat: float, now: float) -> int:
        return max(0, math.floor((WINDOW - (tat - now)) / self.interval + 1e-9))


def openai_duration(seconds: float) -> str:
    """OpenAI's `x-ratelimit-reset-*` format: `1s`, `6m0s`, `20ms`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds * 10) / 10
    minutes, rest = divmod(whole, 60)
    text = f"{rest:.1f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text
