"""A bar chart of spend over time: one column per bucket (merged when the buckets outnumber the width)."""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.widget import Widget

BLOCKS = " ▁▂▃▄▅▆▇█"
AXIS = 10  # characters kept left of the bars for the value labels


def merge(values: list[float], columns: int) -> list[float]:
    """Sum adjacent buckets so that at most `columns` remain (the last may hold fewer)."""
    if columns <= 0 or not values:
        return []
    per = -(-len(values) // columns)
    return [sum(values[i : i + per]) for i in range(0, len(values), per)]


def bar_rows(values: list[float], height: int) -> list[str]:
    """Rows of block characters, top row first; each value scaled to the largest."""
    top = max(values, default=0) or 1
    eighths = [round(v / top * height * 8) if v > 0 else 0 for v in values]
    eighths = [max(e, 1) if v > 0 else 0 for e, v in zip(eighths, values, strict=True)]
    rows = []
    for level in range(height - 1, -1, -1):
        rows.append("".join(BLOCKS[min(max(e - level * 8, 0), 8)] for e in eighths))
    return rows


def metric_value(entry: dict[str, Any], metric: str) -> float:
    if metric == "tokens":
        return float(entry["prompt_tokens"] + entry["completion_tokens"])
    return float(entry[metric])


def axis_labels(labels: list[str], step: int, indent: int) -> str:
    """Labels under their bars, left to right, each kept only if it clears the one before."""
    line = " " * indent
    for index, label in enumerate(labels):
        column = indent + index * step
        if column >= len(line) + (1 if index else 0):
            line = line.ljust(column) + label
    return line


class BarChart:
    """Rich renderable: bars, a max label on the axis and the first/last bucket labels below."""

    def __init__(self, values: list[float], labels: list[str], unit: Any, style: Style, muted: Style) -> None:
        self.values, self.labels, self.unit, self.style, self.muted = values, labels, unit, style, muted

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = (options.height or 8) - 1
        room = max(width - AXIS, 1)
        per = -(-len(self.values) // room) if self.values else 1
        step = max(room // max(len(self.values), 1), 1) if per == 1 else 1
        values = merge(self.values, room)
        rows = bar_rows(values, max(height, 1))
        top = max(values, default=0)
        for index, row in enumerate(rows):
            label = self.unit(top) if index == 0 else (self.unit(0) if index == len(rows) - 1 else "")
            bars = "".join(ch * step for ch in row)
            yield Segment(label.rjust(AXIS - 1)[: AXIS - 1] + "│", self.muted)
            yield Segment(bars.ljust(room)[:room], self.style)
            yield Segment.line()
        yield Segment(axis_labels([self.labels[i * per] for i in range(len(values))], step, AXIS)[:width],
                      self.muted)  # fmt: skip


class SpendChart(Widget):
    """Spend per bucket; `metric` picks the series field (cost, shadow cost, requests, tokens)."""

    DEFAULT_CSS = "SpendChart { height: 8; }"
    series: reactive[list[dict[str, Any]]] = reactive(list, always_update=True)
    metric: reactive[str] = reactive("cost_usd")

    def __init__(self, label_for: Any, unit_for: Any, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._label_for = label_for
        self._unit_for = unit_for

    def render(self) -> BarChart:
        values = [float(metric_value(entry, self.metric)) for entry in self.series]
        labels = [self._label_for(entry["start"]) for entry in self.series]
        style = self.get_component_rich_style("spend-chart--bar", partial=True)
        muted = self.get_component_rich_style("spend-chart--axis", partial=True)
        return BarChart(values, labels, self._unit_for(self.metric), style, muted)

    COMPONENT_CLASSES = {"spend-chart--bar", "spend-chart--axis"}
