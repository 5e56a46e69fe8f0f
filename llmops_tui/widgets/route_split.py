"""The selected route's split, as Rich renderables that size their bars to the width they are given:
the share of its calls per served model and per tier, and each model's share over the window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from llmops_tui import format as fmt
from llmops_tui import routing_cells as cells

FIGURES = 11  # `100% 1,234`
MIN_BAR = 6
MAX_BAR = 32  # wider bars say no more, and push the figures away from their names


class RouteSplit:
    """`served by` and `tier` blocks: a bar per model (in its colour) and per tier, with percent and calls."""

    def __init__(self, route: dict[str, Any], window: str, palette: cells.Palette, order: list[str]) -> None:
        self.route, self.window, self.palette, self.order = route, window, palette, order

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        route, muted = self.route, self.palette.muted
        title = Text.assemble(
            (route["name"], "bold"), (f"  {route['strategy'] or 'no longer configured'}", muted)
        )
        if route["description"] and route["strategy"]:
            title.append(f" · {route['description']}", muted)
        title.no_wrap, title.overflow = True, "ellipsis"
        yield title
        if not route["calls"]:
            yield Text(
                f"No call to {route['name']} {fmt.WINDOWS[self.window].lower()}: clients reach it by asking "
                f'for the model "{route["name"]}". It can serve: {", ".join(route["configured"]) or "-"}.',
                style=muted,
            )
            return
        blocks = [("served by", route["models"], True)]
        if route["tiers"]:
            blocks.append(("tier", route["tiers"], False))
        names = [name for _, counts, _ in blocks for name in counts]
        name_width = min(max(map(len, names)), 16)
        bar = min(max(options.max_width - 10 - name_width - FIGURES - 3, MIN_BAR), MAX_BAR)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style=muted, width=9, no_wrap=True)
        grid.add_column(width=name_width, no_wrap=True, overflow="ellipsis")
        grid.add_column(width=bar, no_wrap=True)
        grid.add_column(justify="right", no_wrap=True)
        for label, counts, coloured in blocks:
            for n, (name, share_bar, figures) in enumerate(
                cells.share_lines(counts, bar, self.palette, self.order, coloured)
            ):
                style = self.palette.of(name, self.order) if coloured else ""
                grid.add_row(label if n == 0 else "", Text(name, style=style), share_bar, figures)
        yield grid


class ShareTimeline:
    """One row per served model: its share of the route's calls in each bucket, as sparkline cells,
    with the first and last buckets' times below."""

    def __init__(
        self,
        data: dict[str, Any],
        route: str,
        label_for: Callable[[float], str],
        palette: cells.Palette,
        order: list[str],
    ) -> None:
        self.data, self.route, self.label_for, self.palette, self.order = (
            data,
            route,
            label_for,
            palette,
            order,
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        data, muted = self.data, self.palette.muted
        bucket = data["bucket_seconds"]
        per = "day" if bucket >= 86_400 else "hour" if bucket == 3600 else f"{bucket // 3600} hours"
        title = Text.assemble(("share per model over time", "bold"), (f"  per {per}; · no call", muted))
        title.no_wrap, title.overflow = True, "ellipsis"
        yield title
        rows = cells.timeline(data, self.route)
        if not rows:
            yield Text("no calls in this window", style=muted)
            return
        name_width = min(max(map(len, rows)), 16)
        room = max(options.max_width - name_width - 1 - 6, MIN_BAR)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=name_width, no_wrap=True, overflow="ellipsis")
        grid.add_column(no_wrap=True)
        grid.add_column(justify="right", no_wrap=True)
        calls = {name: calls for name, calls, _ in cells.shares(_route(data, self.route)["models"])}
        total = sum(calls.values()) or 1
        width = 0
        for name, values in rows.items():
            sparks = cells.spark(cells.fold(values, room))
            width = len(sparks)
            style = self.palette.of(name, self.order)
            grid.add_row(
                Text(name, style=style), Text(sparks, style=style), f"{calls.get(name, 0) / total:.0%}"
            )
        yield grid
        first, last = self.label_for(data["since"]), self.label_for(data["until"] - bucket)
        if len(first) + len(last) + 1 <= width:
            yield Text(" " * (name_width + 1) + first + last.rjust(width - len(first)), style=muted)


def _route(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next((r for r in data["routes"] if r["name"] == name), {"models": {}})
