"""The live traces table: a Line API widget that renders only the visible rows.

Textual's DataTable re-indexes every row on removal and measures every new cell; tailing 200
traces a second into a bounded window needs neither. Rows are plain dicts (the daemon's trace
summaries) in display order; inserting a batch, trimming the oldest and drawing a screen are
each proportional to the batch or the screen, not to the rows held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from llmops_tui import format as fmt

Trace = dict[str, Any]
MAX_ROWS = 5_000
LAYOUT_SECONDS = 0.25
MIN_FLEXIBLE = 24  # below this, user + model lose their meaning: drop optional columns first


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int  # 0: shares the space left over
    right: bool = False
    drop: int = 0  # optional columns are left out, lowest first, when the terminal is narrow


COLUMNS = (
    Column("time", "TIME", 8), Column("user", "USER", 0), Column("team", "TEAM", 10, drop=1),
    Column("model", "MODEL", 0),
    Column("status", "ST", 3), Column("tokens", "TOK IN/OUT", 10, right=True),
    Column("cost", "COST", 9, right=True), Column("latency", "LATENCY", 7, right=True),
    Column("ttft", "TTFT", 6, right=True, drop=3), Column("cache", "CACHE", 5, drop=2),
    Column("rating", "RATE", 4),
)  # fmt: skip
SORTS: dict[str, Callable[[Trace], Any]] = {
    "time": lambda t: t["seq"],
    "latency": lambda t: t.get("latency_ms") or 0,
    "cost": lambda t: (t.get("cost_usd") or 0, t.get("shadow_cost_usd") or 0),
    "tokens": lambda t: (t.get("prompt_tokens") or 0) + (t.get("completion_tokens") or 0),
    "ttft": lambda t: t.get("ttft_ms") or 0,
}


def cell_text(column: str, trace: Trace, rating: fmt.Rating | None) -> str:
    if column == "time":
        return fmt.clock(trace["ts"])
    if column in ("user", "team"):
        return trace.get(column) or "-"
    if column == "model":
        model = trace.get("served_model") or trace.get("requested_model") or "-"
        route = trace.get("route")
        return f"{route} → {model}" if route else model
    if column == "status":
        return "ok" if trace["status"] == "ok" else str(trace.get("http_status") or "err")
    if column == "tokens":
        return f"{trace.get('prompt_tokens') or 0}/{trace.get('completion_tokens') or 0}"
    if column == "cost":
        return fmt.usd(trace.get("cost_usd"))
    if column == "latency":
        return fmt.ms(trace.get("latency_ms"))
    if column == "ttft":
        return fmt.ms(trace.get("ttft_ms"))
    if column == "cache":
        return trace.get("cache") or "-"
    return fmt.score(rating)


class TraceTable(ScrollView, can_focus=True):
    """Newest first under the default sort. Enter (or a double click) selects the highlighted trace."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Open"),
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "move_to(0)", "Newest", show=False),
        Binding("end,G", "move_to(-1)", "Oldest loaded", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "trace-table--header", "trace-table--cursor", "trace-table--error", "trace-table--cancelled",
        "trace-table--slow", "trace-table--very-slow", "trace-table--ok", "trace-table--dim",
        "trace-table--good", "trace-table--bad", "trace-table--empty",
    }  # fmt: skip

    cursor: reactive[int] = reactive(0, always_update=True)
    sort: reactive[str] = reactive("time")

    class Highlighted(Message):
        def __init__(self, trace: Trace | None) -> None:
            super().__init__()
            self.trace = trace

    class Selected(Message):
        def __init__(self, trace: Trace) -> None:
            super().__init__()
            self.trace = trace

    class NearEnd(Message):
        """The cursor is close to the oldest loaded row: time to fetch an older page."""

    def __init__(self, ratings: dict[str, fmt.Rating], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[Trace] = []
        self.ratings = ratings
        self.empty_text = "No traces yet."
        self._ids: set[str] = set()
        self._styles: dict[str, Style] = {}
        # Rendered rows by (trace id, is cursor, rating): rows move down as traces arrive, but
        # their pictures do not change. Cleared when the layout or styles change.
        self._row_cache: LRUCache[tuple[str, bool, fmt.Rating | None], Strip] = LRUCache(1024)
        self._layout_due = False
        self._frame: tuple[Style, list[tuple[Column, int]]] | None = None

    # -- data ---------------------------------------------------------------------------------------

    @property
    def current(self) -> Trace | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def replace(self, rows: list[Trace]) -> None:
        """Show exactly these rows (a fresh query); the cursor goes back to the top."""
        self.rows = list(rows)
        self._ids = {row["id"] for row in self.rows}
        self._resort()
        self._changed()
        self.cursor = 0
        self.scroll_to(y=0, animate=False)

    def add_newer(self, traces: list[Trace]) -> int:
        """Insert live traces (oldest first), keeping the highlighted trace where it is on screen."""
        fresh = list({t["id"]: t for t in traces if t["id"] not in self._ids}.values())
        if not fresh:
            return 0
        anchor = self.current if self.cursor > 0 else None
        self._ids.update(t["id"] for t in fresh)
        if self.sort == "time":
            fresh.sort(key=SORTS["time"], reverse=True)
            self.rows[0:0] = fresh
        else:
            self.rows.extend(fresh)
            self._resort()
        self._trim()
        if anchor is not None:
            self._follow(anchor, len(fresh))
        self._changed()
        return len(fresh)

    def add_older(self, traces: list[Trace]) -> None:
        """Append a page of older traces (newest first), as pagination returns them."""
        fresh = list({t["id"]: t for t in traces if t["id"] not in self._ids}.values())
        self._ids.update(t["id"] for t in fresh)
        self.rows.extend(fresh)
        if self.sort != "time":
            self._resort()
        self._changed()

    def refresh_trace(self, trace_id: str) -> None:
        self.refresh()

    def _trim(self) -> None:
        if len(self.rows) <= MAX_ROWS:
            return
        if self.sort == "time":
            dropped = self.rows[MAX_ROWS:]
            del self.rows[MAX_ROWS:]
        else:
            keep = sorted(self.rows, key=SORTS["time"], reverse=True)[:MAX_ROWS]
            kept = {t["id"] for t in keep}
            dropped = [t for t in self.rows if t["id"] not in kept]
            self.rows = [t for t in self.rows if t["id"] in kept]
        self._ids.difference_update(t["id"] for t in dropped)

    def _follow(self, anchor: Trace, inserted: int) -> None:
        try:
            index = next(i for i, row in enumerate(self.rows) if row["id"] == anchor["id"])
        except StopIteration:
            index = 0
        shift = index - self.cursor
        self.set_reactive(TraceTable.cursor, index)
        if shift:
            self.scroll_to(y=self.scroll_y + shift, animate=False, immediate=True)

    def _resort(self) -> None:
        self.rows.sort(key=SORTS[self.sort], reverse=True)

    def watch_sort(self) -> None:
        self._resort()
        self._row_cache.clear()
        self.cursor = 0  # a new order is read from its top
        self.scroll_to(y=0, animate=False)
        self.refresh()

    def _changed(self) -> None:
        # The scroll range follows at once; the layout pass that redraws the scrollbar (and the whole
        # screen with it) runs at most a few times a second, not on every batch of live traces.
        self.set_reactive(TraceTable.virtual_size, Size(self.size.width, len(self.rows) + 1))
        if not self._layout_due:
            self._layout_due = True
            self.set_timer(LAYOUT_SECONDS, self._relayout)
        if self.cursor >= len(self.rows):
            self.set_reactive(TraceTable.cursor, max(len(self.rows) - 1, 0))
        self.refresh()

    # -- cursor -------------------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1))

    def watch_cursor(self, value: int) -> None:
        visible = max(self.scrollable_content_region.height - 1, 1)
        if value < self.scroll_y:
            self.scroll_to(y=value, animate=False)
        elif value >= self.scroll_y + visible:
            self.scroll_to(y=value - visible + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self.current))
        if self.rows and value >= len(self.rows) - 20:
            self.post_message(self.NearEnd())

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(self.scrollable_content_region.height - 2, 1)

    def action_move_to(self, index: int) -> None:
        self.cursor = index if index >= 0 else len(self.rows) - 1

    def action_select(self) -> None:
        if self.current is not None:
            self.post_message(self.Selected(self.current))

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y - 1
        if event.y >= 1 and 0 <= index < len(self.rows):
            self.cursor = index
            if event.chain >= 2:
                self.action_select()

    # -- drawing -------------------------------------------------------------------------------------

    def _relayout(self) -> None:
        self._layout_due = False
        self.refresh(layout=True)

    def _layout(self, width: int) -> list[tuple[Column, int]]:
        """The columns that fit and their widths: user and model share what the others leave."""
        columns = list(COLUMNS)
        for optional in sorted((c for c in COLUMNS if c.drop), key=lambda c: c.drop):
            if width - sum(c.width + 1 for c in columns) >= MIN_FLEXIBLE:
                break
            columns.remove(optional)
        spare = max(width - sum(c.width + 1 for c in columns) + 1, 12)
        user = min(spare // 2, 16)  # the model name gets the rest: it says more
        return [(c, c.width or (user if c.key == "user" else spare - user)) for c in columns]

    def _style(self, name: str) -> Style:
        """Component styles, resolved once per theme/CSS change: a frame asks for hundreds."""
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"trace-table--{name}", partial=True)
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._frame = None
        self._row_cache.clear()

    def render_lines(self, crop: Region) -> list[Strip]:
        # Computed once per frame rather than once per line.
        frame = (self.rich_style, self._layout(self.scrollable_content_region.width))
        if frame != self._frame:
            self._row_cache.clear()
        self._frame = frame
        return super().render_lines(crop)

    def _cell_style(self, column: str, trace: Trace, rating: fmt.Rating | None) -> str | None:
        if column == "status":
            return {"ok": "ok", "cancelled": "cancelled"}.get(trace["status"], "error")
        if column in ("latency", "ttft"):
            return fmt.slowness(trace.get(f"{column}_ms"))
        if column == "rating":
            return fmt.rating_mood(rating)
        if column == "time" or (
            column in ("cost", "cache") and cell_text(column, trace, None) in ("$0", "-")
        ):
            return "dim"
        return None

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if self._frame is None:
            self._frame = (self.rich_style, self._layout(width))
        base, layout = self._frame
        if y == 0:
            labels = [set_cell_size(c.label.rjust(w) if c.right else c.label, w) for c, w in layout]
            return Strip([Segment(" ".join(labels), base + self._style("header"))]).adjust_cell_length(
                width, base + self._style("header")
            )
        index = int(self.scroll_y) + y - 1
        if not self.rows:
            text = self.empty_text if y == 2 else ""
            return Strip([Segment(set_cell_size(text.center(width), width), base + self._style("empty"))])
        if index >= len(self.rows):
            return Strip.blank(width, base)
        trace = self.rows[index]
        rating = self.ratings.get(trace["id"])
        key = (trace["id"], index == self.cursor, rating)
        strip = self._row_cache.get(key)
        if strip is None:
            strip = self._row_cache[key] = self._render_row(trace, rating, key[1], base, layout, width)
        return strip

    def _render_row(
        self, trace: Trace, rating: fmt.Rating | None, cursor: bool, base: Style,
        layout: list[tuple[Column, int]], width: int,
    ) -> Strip:  # fmt: skip
        row_style = base
        if trace["status"] != "ok":
            row_style += self._style("error" if trace["status"] == "error" else "cancelled")
        segments = []
        for i, (column, cell_width) in enumerate(layout):
            text = cell_text(column.key, trace, rating)
            text = text.rjust(cell_width) if column.right else text
            extra = self._cell_style(column.key, trace, rating)
            style = row_style + self._style(extra) if extra else row_style
            if cursor:
                style += self._style("cursor")
            segments.append(Segment(set_cell_size(text, cell_width), style))
            if i < len(layout) - 1:
                segments.append(Segment(" ", row_style + self._style("cursor") if cursor else row_style))
        end_style = row_style + self._style("cursor") if cursor else row_style
        return Strip(segments).adjust_cell_length(width, end_style)
