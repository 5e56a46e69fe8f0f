"""Budget arithmetic, pure: calendar windows, the worst case of a call, whether it fits, and what a
refusal says.

Money is counted in integer nano-dollars (`NANO` per USD) wherever it is added up: a ledger of
floats would drift from its traces' sum, and a budget meant to fit exactly N calls could fit N-1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

Period = Literal["day", "week", "month", "total"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "total")
NANO = 1_000_000_000
FOREVER = float("inf")
ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly", "total": "total"}


def nanos(usd: float) -> int:
    return round(usd * NANO)


def usd(amount_nanos: int) -> float:
    return amount_nanos / NANO


@dataclass(frozen=True, slots=True)
class Limit:
    """One budget: a subject (`user:alice`, `key:<id>`, `team:ml`) may spend this much per period."""

    subject: str
    period: Period
    usd: float | None = None
    tokens: int | None = None
    warn_at: float = 0.8
    source: str = "profile"  # profile | profile default | api
    label: str = ""  # how people name the subject (a key's name); default: the subject
    usd_nanos: int | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "usd_nanos", None if self.usd is None else nanos(self.usd))

    @property
    def name(self) -> str:
        return f"{self.label or self.subject}/{self.period}"


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    end: float  # FOREVER for a total budget


def window(period: Period, now: float, tz: ZoneInfo, reset_at: float | None = None) -> Window:
    """The calendar window holding `now`, aligned to midnight in `tz` (weeks start on Monday); a
    manual reset inside it starts the window again from the reset."""
    if period == "total":
        start, end = 0.0, FOREVER
    else:
        today = datetime.fromtimestamp(now, tz).date()
        first, following = _calendar(period, today)
        start, end = _midnight(first, tz), _midnight(following, tz)
    if reset_at is not None and start <= reset_at <= now:
        start = reset_at
    return Window(start, end)


def _calendar(period: Period, today: date) -> tuple[date, date]:
    if period == "day":
        return today, today + timedelta(days=1)
    if period == "week":
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=7)
    first = today.replace(day=1)
    following = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return first, following


def _midnight(day: date, tz: ZoneInfo) -> float:
    """The first instant of `day` in `tz` (where a DST jump skips midnight, the instant after it)."""
    return datetime.combine(day, clock_time(0), tzinfo=tz).timestamp()


@dataclass(slots=True)  # made for every budgeted call: not frozen, whose __init__ costs ~4x
class Need:
    """A call's worst case, reserved before it runs."""

    usd_nanos: int
    tokens: int
    prompt_tokens: int  # the estimate (with its margin) inside `tokens`
    max_tokens: int  # the answer's cap inside `tokens`
    output_nanos_per_token: float  # at the dearest candidate's price: what a smaller cap saves
    calls: int = 1  # the paid calls it covers (a cascade's every model), each of the same tokens


def worst_case(prompt: int, max_tokens: int, prices: list[tuple[float, float]], summed: bool = False) -> Need:
    """`prompt`: its tokens at most; `prices`: (input, output) USD per 1M tokens of each candidate
    (a local model: 0, 0). One of them serves, so the dearest is the worst case; `summed`: each
    may be paid for (a cascade), so their sum is."""
    cost = output = 0.0  # USD per 1M tokens; a plain loop: this runs for every budgeted call
    for price_in, price_out in prices:
        one = prompt * price_in + max_tokens * price_out
        cost, output = (
            (cost + one, output + price_out) if summed else (max(cost, one), max(output, price_out))
        )
    calls = max(1, len(prices)) if summed else 1
    tokens = (prompt + max_tokens) * calls
    return Need(math.ceil(cost * 1000), tokens, prompt, max_tokens, output * 1000, calls)


# A daemon keeps spare room in its lease (to reserve the next calls in memory) only while the
# budget is far from spent: at least SPARE_FAR calls like this one would still fit. It keeps a
# sixteenth of what is free, at most SPARE_CALLS calls' worth; near the end every call is granted
# by the database alone, so several daemons share the last of a budget exactly.
SPARE_FAR, SPARE_SHARE, SPARE_CALLS = 32, 16, 256


def spare(free: int, need: int) -> int:
    """Room to keep beyond a call's need, out of `free` (what no one holds) after it."""
    if need <= 0 or free < SPARE_FAR * need:
        return 0
    return min(free // SPARE_SHARE, SPARE_CALLS * need)


@dataclass(slots=True)
class Standing:
    """A budget in its window, as the ledger holds it when a call asks to reserve."""

    limit: Limit
    window: Window
    spent_nanos: int = 0
    spent_tokens: int = 0
    reserved_nanos: int = 0
    reserved_tokens: int = 0

    def remaining_nanos(self) -> int | None:
        cap = self.limit.usd_nanos
        return None if cap is None else cap - self.spent_nanos - self.reserved_nanos

    def remaining_tokens(self) -> int | None:
        cap = self.limit.tokens
        return None if cap is None else cap - self.spent_tokens - self.reserved_tokens

    def fits(self, need: Need) -> bool:
        money, tokens = self.remaining_nanos(), self.remaining_tokens()
        return (money is None or need.usd_nanos <= money) and (tokens is None or need.tokens <= tokens)

    def used_share(self) -> float:
        """The larger of the money and token shares spent or reserved."""
        shares = [0.0]
        if self.limit.usd_nanos:
            shares.append((self.spent_nanos + self.reserved_nanos) / self.limit.usd_nanos)
        if self.limit.tokens:
            shares.append((self.spent_tokens + self.reserved_tokens) / self.limit.tokens)
        return max(shares)


class Held(Protocol):
    """A budget with its spent and reserved amounts: a Standing, or a daemon's lease on it."""

    limit: Limit
    spent_nanos: int
    spent_tokens: int

    @property
    def reserved_nanos(self) -> int: ...

    @property
    def reserved_tokens(self) -> int: ...


@dataclass(slots=True)
class Summary:
    """What a call's answer says of its budgets."""

    remaining_nanos: int | None  # the least left of any dollar budget
    remaining_tokens: int | None
    binding: Limit  # the budget with the fewest calls like this one left
    warning: str | None  # the first past its warning share


def summary(budgets: Sequence[Held], need: Need) -> Summary:
    """One pass over a call's budgets (it runs for every budgeted call)."""
    money = tokens = None
    bound, fewest = budgets[0].limit, FOREVER
    warned = None
    for b in budgets:
        limit, left, share = b.limit, FOREVER, 0.0
        if limit.usd_nanos is not None:
            used = b.spent_nanos + b.reserved_nanos
            rest = limit.usd_nanos - used
            money = rest if money is None or rest < money else money
            left = rest / need.usd_nanos if need.usd_nanos else FOREVER
            share = used / limit.usd_nanos
        if limit.tokens is not None:
            used = b.spent_tokens + b.reserved_tokens
            rest = limit.tokens - used
            tokens = rest if tokens is None or rest < tokens else tokens
            if need.tokens and rest / need.tokens < left:
                left = rest / need.tokens
            share = max(share, used / limit.tokens)
        if left < fewest:
            bound, fewest = limit, left
        if warned is None and share >= limit.warn_at:
            warned = _warning(limit, share)
    return Summary(money, tokens, bound, warned)


def affordable_max_tokens(standings: list[Standing], need: Need) -> int:
    """The largest `max_tokens` that every budget would still fit (0: none would)."""
    best = need.max_tokens
    for s in standings:
        money, tokens = s.remaining_nanos(), s.remaining_tokens()
        if tokens is not None:
            best = min(best, tokens // need.calls - need.prompt_tokens)
        if money is not None and need.output_nanos_per_token > 0:
            prompt_nanos = need.usd_nanos - need.max_tokens * need.output_nanos_per_token
            best = min(best, math.floor((money - prompt_nanos) / need.output_nanos_per_token))
        elif money is not None and need.usd_nanos > money:
            return 0  # the prompt alone does not fit
    return max(best, 0)


def warning(standing: Standing) -> str | None:
    """`user:alice/day at 83% of $5.00`, once a budget's use reaches its warning share."""
    share = standing.used_share()
    return _warning(standing.limit, share) if share >= standing.limit.warn_at else None


def _warning(limit: Limit, share: float) -> str:
    return f"{limit.name} at {share:.0%} of {describe_limit(limit)}"


def describe_limit(limit: Limit) -> str:
    parts = []
    if limit.usd is not None:
        parts.append(money(limit.usd))
    if limit.tokens is not None:
        parts.append(f"{limit.tokens:,} tokens")
    return " and ".join(parts)


def money(amount: float) -> str:
    """Dollars to the cent, or as many decimals (up to six) as a small amount needs: $0.50, $0.0004."""
    whole, _, cents = f"{amount:,.6f}".rstrip("0").partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def refusal(standing: Standing, need: Need, tz: ZoneInfo, now: float, smaller: int) -> str:
    """The 429's message: the budget, its limit, what is spent and reserved, when it resets, and
    the smaller `max_tokens` that would fit."""
    limit = standing.limit
    spent, held = [], []
    if limit.usd is not None:
        spent.append(money(usd(standing.spent_nanos)))
        held.append(money(usd(standing.reserved_nanos)))
    if limit.tokens is not None:
        spent.append(f"{standing.spent_tokens:,} tokens")
        held.append(f"{standing.reserved_tokens:,} tokens")
    cost = []
    if limit.usd is not None:
        cost.append(money(usd(need.usd_nanos)))
    if limit.tokens is not None:
        cost.append(f"{need.tokens:,} tokens")
    who = limit.label or limit.subject
    text = (
        f"Budget exceeded: the {ADJECTIVE[limit.period]} budget of {who} ({limit.source}) is "
        f"{describe_limit(limit)}; {' and '.join(spent)} spent and {' and '.join(held)} reserved by "
        f"calls in flight, and this call may cost up to {' and '.join(cost)} "
        f"({need.prompt_tokens:,} prompt tokens with their margin, max_tokens {need.max_tokens:,}). "
    )
    if standing.window.end == FOREVER:
        text += "It is a total budget and never resets."
    else:
        reset = datetime.fromtimestamp(standing.window.end, tz)
        wait = duration(standing.window.end - now)
        text += f"It resets at {reset:%Y-%m-%d %H:%M} {reset.tzname()} (in {wait})."
    if 0 < smaller < need.max_tokens:
        text += f" A max_tokens of {smaller:,} or less would fit now."
    return text


def retry_after(standing: Standing, need: Need, now: float) -> int | None:
    """Seconds until waiting can help: if the call fits once the calls in flight settle, soon; else
    at the window's reset (None: a total budget spent for good)."""
    settled = Standing(standing.limit, standing.window, standing.spent_nanos, standing.spent_tokens)
    if (standing.reserved_nanos or standing.reserved_tokens) and settled.fits(need):
        return 1
    if standing.window.end == FOREVER:
        return None
    return max(1, math.ceil(standing.window.end - now))


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"
