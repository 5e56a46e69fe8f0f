"""Filling a DataTable with rows of Rich text, fitted to the room there is (see routing_cells.fit_columns)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable


def refill(
    table: DataTable[Any], columns: Sequence[str], rows: Sequence[Sequence[Any]], kept: Sequence[int],
    widths: Sequence[int], right: set[int], keys: Sequence[str] | None = None, max_rows: int | None = None,
) -> None:  # fmt: skip
    """The table anew with the `kept` columns of `rows` (numbers right-aligned), the cursor on the same
    row as before, and as tall as its rows (up to `max_rows`, then it scrolls)."""
    cursor = table.cursor_row
    table.clear(columns=True)
    for n, index in enumerate(kept):
        header = Text(columns[index], justify="right" if index in right else "left")
        table.add_column(header, width=widths[n])
    for n, row in enumerate(rows):
        table.add_row(*[row[i] for i in kept], key=keys[n] if keys is not None else None)
    if 0 <= cursor < len(rows):
        table.move_cursor(row=cursor, animate=False)
    shown = len(rows) if max_rows is None else min(len(rows), max_rows)
    table.styles.height = shown + 1  # a DataTable of height auto filled after layout keeps 0 rows
