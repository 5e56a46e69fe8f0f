"""How budgets read in the console: each one's bars, amounts, window and reset as table cells, and the
rate limits and caps as a line. Pure functions over /admin/budgets' JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.cells import cell_len
from rich.text import Text
from textual.markup import escape

from llmops_tui import format as fmt
from llmops_tui.widgets.usage_bar import BarColours, usage_bar

BAR_WIDTH = 10
MIN_SOURCE = 12  # a source cut shorter says too little: the table leaves it out
EXTRAS = (("window", "source"), ("source",))  # the optional columns, the most that fit first
ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly", "total": "total"}
_KIND_ORDER = {"user": 0, "key": 1, "team": 2}
_PERIOD_ORDER = {"day": 0, "week": 1, "month": 2, "total": 3}


@dataclass(frozen=True, slots=True)
class Palette:
    """The theme's colours, as Rich styles: DataTable cells are Rich text, not Textual markup."""

    normal: str
    warning: str
    over: str
    muted: str

    def colour(self, share: float, warned: bool) -> str:
        return self.over if share >= 1 else self.warning if warned else self.normal


@dataclass(frozen=True, slots=True)
class Dimension:
    """One thing a budget limits: dollars or tokens."""

    unit: str  # "usd" or "tokens"
    spent: float
    reserved: float
    limit: float
    remaining: float

    @property
    def share(self) -> float:
        return (self.spent + self.reserved) / self.limit if self.limit else 0.0

    def show(self, amount: float) -> str:
        """Short, for a table cell: `$0.50`, `20.0k tok`."""
        return fmt.usd(amount) if self.unit == "usd" else f"{fmt.count(amount)} tok"

    def say(self, amount: float) -> str:
        """In a sentence: `$0.50`, `20,000 tokens`."""
        return fmt.usd(amount) if self.unit == "usd" else f"{int(amount):,} tokens"


def dimensions(budget: dict[str, Any]) -> list[Dimension]:
    found = []
    if budget["usd"] is not None:
        found.append(Dimension("usd", budget["spent_usd"], budget["reserved_usd"], budget["usd"],
                               budget["remaining_usd"]))  # fmt: skip
    if budget["tokens"] is not None:
        found.append(Dimension("tokens", budget["spent_tokens"], budget["reserved_tokens"], budget["tokens"],
                               budget["remaining_tokens"]))  # fmt: skip
    return found


def in_order(budgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Users, then keys, then teams; by name; each one's periods shortest first."""

    def key(budget: dict[str, Any]) -> tuple[int, str, int]:
        kind, _, name = budget["name"].partition(":")
        return _KIND_ORDER.get(kind, 3), name, _PERIOD_ORDER.get(budget["period"], 4)

    return sorted(budgets, key=key)


def zone(name: str | None) -> tzinfo | None:
    """The budgets' time zone (their windows start at its midnights); None: this machine's."""
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def window_text(budget: dict[str, Any], tz: tzinfo | None) -> str:
    """`Tue 01 Dec`, `week of Mon 30 Nov`, `December 2026`, `all time`; `since …` after a reset."""
    started = datetime.fromtimestamp(budget["window_start"], tz)
    if budget["window_end"] is None:
        return "all time" if budget["window_start"] <= 0 else f"since {started:%d %b %H:%M}"
    if started.time() != datetime.min.time():  # a calendar window starts at midnight: this was reset
        return f"since {started:%a %H:%M}"
    return {"day": f"{started:%a %d %b}", "week": f"week of {started:%a %d %b}"}.get(
        budget["period"], f"{started:%B %Y}"
    )


def resets_text(budget: dict[str, Any]) -> str:
    seconds = budget["resets_in_s"]
    return "never" if seconds is None else f"in {fmt.duration(seconds)}"


def _lines(values: list[str], style: str = "", justify: Any = "left") -> Text:
    return Text("\n".join(values), style=style, justify=justify, no_wrap=True, end="")


def budget_cells(
    budget: dict[str, Any], tz: tzinfo | None, palette: Palette, extras: tuple[str, ...] = ()
) -> list[Text]:
    """budget, per, used, spent, limit, left, resets, and the `extras` that fit (window, source); a
    budget of both dollars and tokens takes two lines, one per limit."""
    warned = budget["warning"] is not None
    dims = dimensions(budget)
    name = Text(("⚠ " if warned else "") + budget["name"], no_wrap=True, end="")
    if warned:
        name.stylize(f"bold {palette.colour(budget['used_share'], True)}")
    used = Text("\n", end="").join(
        usage_bar(d.spent, d.reserved, d.limit, BAR_WIDTH,
                  BarColours(palette.colour(d.share, warned), palette.colour(d.share, warned), palette.muted))
        + Text(f" {d.share:>4.0%}", style=palette.colour(d.share, warned) if warned else "")
        for d in dims
    )  # fmt: skip
    left = Text("\n", end="").join(
        Text(d.show(max(d.remaining, 0)), style=palette.over if d.remaining <= 0 else "") for d in dims
    )
    left.justify = "right"
    cells = [
        name, Text(budget["period"]), used,
        _lines([d.show(d.spent) for d in dims], justify="right"),
        _lines([d.show(d.limit) for d in dims], style=palette.muted, justify="right"),
        left, Text(resets_text(budget)),
    ]  # fmt: skip
    if "window" in extras:
        cells.insert(6, Text(window_text(budget, tz)))
    if "source" in extras:
        cells.append(Text(budget["source"], style=palette.muted, overflow="ellipsis", no_wrap=True))
    return cells


def columns(extras: tuple[str, ...] = ()) -> list[Text]:
    names = ["budget", "per", "used", "spent", "limit", "left", "resets"]
    if "window" in extras:
        names[6:6] = ["window"]
    if "source" in extras:
        names.append("source")
    right = {"spent", "limit", "left"}
    return [Text(n, justify="right" if n in right else "left") for n in names]


def fitted_widths(rows: list[list[Text]], headers: list[Text], room: int) -> list[int] | None:
    """Column widths with the last (the source) cut to fit `room` cells; None if even a cut source
    would not fit. DataTable pads each column with a cell on either side."""

    def width(cell: Text) -> int:
        return max(cell_len(line) for line in cell.plain.split("\n"))

    widths = [max([width(header), *(width(row[n]) for row in rows)]) for n, header in enumerate(headers)]
    source = room - sum(widths[:-1]) - 2 * len(widths)
    if source < MIN_SOURCE:
        return None
    widths[-1] = min(widths[-1], source)
    return widths


def table_layout(
    budgets: list[dict[str, Any]], tz: tzinfo | None, palette: Palette, room: int
) -> tuple[list[Text], list[list[Text]], list[int] | None]:
    """Headers, rows and column widths of the widest table that fits `room` cells: with each window
    and source, with the source, or with neither (widths None: as the content needs)."""
    for extras in EXTRAS:
        rows = [budget_cells(budget, tz, palette, extras) for budget in budgets]
        widths = fitted_widths(rows, columns(extras), room)
        if widths is not None:
            return columns(extras), rows, widths
    return columns(), [budget_cells(budget, tz, palette) for budget in budgets], None


def detail_markup(budget: dict[str, Any], tz: tzinfo | None) -> str:
    """The selected budget in full: where it comes from, what calls in flight reserve, when it warns,
    and its window's ends (in the budgets' zone, which the header names)."""
    start = datetime.fromtimestamp(budget["window_start"], tz)
    if budget["window_end"] is None:
        window = "all time" if budget["window_start"] <= 0 else f"since {start:%d %b %H:%M}, never ends"
    else:
        window = f"{start:%d %b %H:%M} → {datetime.fromtimestamp(budget['window_end'], tz):%d %b %H:%M}"
    reserved = " and ".join(d.show(d.reserved) for d in dimensions(budget))
    return (
        f"[b]{escape(budget['name'])}[/] {ADJECTIVE.get(budget['period'], budget['period'])} · "
        f"{escape(budget['source'])} · reserved {reserved} · warns at {budget['warn_at']:.0%} · {window}"
    )


def _rate(limit: dict[str, Any]) -> str:
    parts = []
    if limit.get("requests_per_minute"):
        parts.append(f"{limit['requests_per_minute']:,} req/min")
    if limit.get("tokens_per_minute"):
        parts.append(f"{fmt.count(limit['tokens_per_minute'])} tok/min")
    return " + ".join(parts)


def limits_text(rate_limits: dict[str, Any] | None, caps: dict[str, Any] | None) -> str:
    """`rate limits: user carol 3 req/min · default 60 req/min   caps: default 1024 tok …`."""
    rates = []
    if rate_limits:
        if rate_limits.get("default"):
            rates.append(f"default {_rate(rate_limits['default'])}")
        for kind in ("users", "keys", "teams"):
            rates += [f"{kind[:-1]} {name} {_rate(x)}" for name, x in (rate_limits.get(kind) or {}).items()]
    capped = []
    if caps:
        if caps.get("default_max_tokens"):
            capped.append(f"default {fmt.count(caps['default_max_tokens'])} tok")
        for kind in ("models", "users", "keys", "teams"):
            capped += [
                f"{kind[:-1]} {name} {fmt.count(cap)} tok" for name, cap in (caps.get(kind) or {}).items()
            ]
    text = "rate limits: " + (" · ".join(rates) if rates else "none")
    return text + ("   max_tokens caps: " + " · ".join(capped) if capped else "")
