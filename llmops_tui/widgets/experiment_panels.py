"""The selected experiment's arms side by side and its primary metric over time, as Rich renderables
that size their bars and sparklines to the width they are given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from llmops_tui import experiment_cells as cells
from llmops_tui.routing_cells import Palette

MIN_BAR, MAX_BAR = 6, 12
LABEL_WIDTH = 18  # the figures' names, `sample (thumbs_up)` the longest
FIGURES_WIDTH = 27  # `4.67 [4.46, 4.87] n=24`, and a gap


class ArmsPanel:
    """Each arm a column: calls, mean rating and thumbs-up rate with their 95 % intervals, latency,
    cost, errors, tokens, and the primary metric's sample toward the minimum as a bar."""

    def __init__(self, data: dict[str, Any], palette: Palette) -> None:
        self.data, self.palette = data, palette

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        arms = max(len(self.data["arms"]), 1)
        room = (options.max_width - LABEL_WIDTH) // arms - 12  # `  21/100` beside the bar
        yield cells.arms_table(self.data, self.palette, max(MIN_BAR, min(MAX_BAR, room)))


class MetricTimeline:
    """One row per arm: its primary metric in each bucket as sparkline cells, with its overall value,
    and the first and last buckets' times below."""

    def __init__(self, data: dict[str, Any], label_for: Callable[[float], str], palette: Palette) -> None:
        self.data, self.label_for, self.palette = data, label_for, palette

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        data, muted = self.data, self.palette.muted
        results = data["results"]
        bucket = data["bucket_seconds"]
        per = "day" if bucket >= 86_400 else "hour" if bucket == 3600 else f"{bucket / 3600:g} hours"
        low, high = cells.scale(results["metric"], results["series"], cells.arm_order(data))
        span = f"{cells.value(results['metric'], low)}–{cells.value(results['metric'], high)}"
        title = Text(f"{results['metric_label']} over time", style="bold", no_wrap=True, overflow="ellipsis")
        yield title
        yield Text(f"per {per} · scale {span} · · no value", style=muted, no_wrap=True, overflow="ellipsis")
        if not results["series"]:
            yield Text("no calls in this window", style=muted)
            return
        order = cells.arm_order(data)
        name_width = min(max(map(len, order)), 16)
        room = max(options.max_width - name_width - 2 - 8, MIN_BAR)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=name_width, no_wrap=True, overflow="ellipsis")
        grid.add_column(no_wrap=True)
        grid.add_column(justify="right", no_wrap=True)
        width = 0
        for name, sparks, overall in cells.series_rows(data, room):
            width = max(width, len(sparks))
            style = self.palette.of(name, order)
            grid.add_row(Text(name, style=style), Text(sparks, style=style), overall)
        yield grid
        first = self.label_for(results["series"][0]["start"])
        last = self.label_for(results["series"][-1]["start"])
        if len(results["series"]) > 1 and len(first) + len(last) + 1 <= width:
            yield Text(" " * (name_width + 1) + first + last.rjust(width - len(first)), style=muted)
