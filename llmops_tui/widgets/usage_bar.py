"""A budget's use as a bar: spent (solid), reserved by calls in flight (a lighter shade), left (a track)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text

SPENT, RESERVED, TRACK = "█", "▓", "░"
PARTIAL = " ▏▎▍▌▋▊▉"  # eighths of a cell: a sliver of spend shows as a sliver, not as nothing


@dataclass(frozen=True, slots=True)
class BarColours:
    spent: str
    reserved: str
    track: str


def usage_bar(spent: float, reserved: float, limit: float, width: int, colours: BarColours) -> Text:
    """`width` cells; what is past the limit fills the bar (the percent beside it says by how much)."""
    bar = Text(no_wrap=True, end="")
    if limit <= 0 or width <= 0:
        return bar
    eighths = width * 8
    spent_eighths = min(round(spent / limit * eighths), eighths)
    if spent > 0:
        spent_eighths = max(spent_eighths, 1)
    full, part = divmod(spent_eighths, 8)
    bar.append(SPENT * full, colours.spent)
    if part:
        bar.append(PARTIAL[part], colours.spent)
    used_cells = math.ceil(spent_eighths / 8)
    # Reserved amounts are worst cases of calls still running: whole cells, at least one when any.
    reserved_cells = math.ceil(min(spent + reserved, limit) / limit * width) - used_cells
    if reserved > 0:
        reserved_cells = max(reserved_cells, 1)
    reserved_cells = min(reserved_cells, width - used_cells)
    bar.append(RESERVED * reserved_cells, colours.reserved)
    bar.append(TRACK * (width - used_cells - reserved_cells), colours.track)
    return bar
