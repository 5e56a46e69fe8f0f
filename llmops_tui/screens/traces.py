"""Live traces: tail new calls as they arrive, filter on the daemon, page back, rate, open one."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.reactive import reactive
from textual.widgets import Footer, Input, Static

from llmops_tui import format as fmt
from llmops_tui.client import DaemonError
from llmops_tui.messages import DaemonReconnected, FeedbackReceived, TracesReceived
from llmops_tui.screens.live import LiveScreen
from llmops_tui.widgets.rating import RATE_BINDINGS, RatingDialog
from llmops_tui.widgets.status_bar import ConnectionBanner, StatusBar
from llmops_tui.widgets.trace_table import MAX_ROWS, SORTS, TraceTable

PAGE = 200


class TracesScreen(LiveScreen):
    AUTO_FOCUS = "TraceTable"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("1", "rate(1)", "Rate", key_display="1-5"),
        *RATE_BINDINGS,
        Binding("c", "comment", "Note"),
        Binding("r", "reload", "Reload", show=False),
        Binding("escape", "escape", "Close filter / clear filter", show=False),
    ]

    following: reactive[bool] = reactive(True)
    filters: reactive[dict[str, str]] = reactive(dict, always_update=True)

    def __init__(self) -> None:
        super().__init__()
        self.next_cursor: int | None = None
        self.pending: list[dict[str, Any]] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="banner")
        yield Static(id="traces-info")
        yield Input(placeholder="model:NAME user:NAME team:NAME status:ok|error|cancelled  free text…",
                    id="filter")  # fmt: skip
        yield TraceTable(self.llmops.ratings, id="traces")
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def table(self) -> TraceTable:
        return self.query_one(TraceTable)

    # -- loading -------------------------------------------------------------------------------------

    async def _page(self, cursor: int | None) -> tuple[list[dict[str, Any]], int | None]:
        rows, next_cursor = await self.llmops.client.traces(self.filters, cursor, PAGE)
        # each row carries its latest rating, so ratings made before the console opened show too
        for row in rows:
            rating = fmt.rating_of(row, "rating", "rating_kind")
            if rating is not None:
                self.llmops.ratings[row["id"]] = rating
        return rows, next_cursor

    @work(exclusive=True, group="traces-load")
    async def reload(self) -> None:
        try:
            rows, self.next_cursor = await self._page(None)
        except DaemonError as exc:
            self._failed("Could not load traces", exc)
            return
        self.pending.clear()
        self.loaded = True
        self.table.empty_text = self._empty_text()
        self.table.replace(rows)
        self._show_info()

    @work(exclusive=True, group="traces-older")
    async def load_older(self) -> None:
        if self.next_cursor is None:
            return
        try:
            rows, self.next_cursor = await self._page(self.next_cursor)
        except DaemonError as exc:
            self._failed("Could not load older traces", exc)
            return
        self.table.add_older(rows)
        self._show_info()

    @work(exclusive=True, group="traces-newest")
    async def fetch_newest(self) -> None:
        """Catch up from the daemon: after an outage, dropped events, or for a free-text filter."""
        try:
            rows, cursor = await self._page(None)
        except DaemonError:
            return
        if not self.table.rows:
            self.next_cursor = cursor
        self._add(rows)

    def _failed(self, what: str, exc: DaemonError) -> None:
        if self.llmops.connection.state == "connected":
            self.notify(f"{what}: {exc.message}", severity="error")

    def _add(self, traces: list[dict[str, Any]]) -> None:
        if not self.following:
            known = {t["id"] for t in self.pending}
            self.pending.extend(t for t in traces if t["id"] not in known)
            del self.pending[:-MAX_ROWS]
        else:
            self.table.add_newer(traces)
            if len(self.table.rows) >= MAX_ROWS:  # the oldest were dropped: page back to them
                self.next_cursor = min(row["seq"] for row in self.table.rows)
        self._show_info()

    # -- live events ---------------------------------------------------------------------------------

    def on_traces_received(self, message: TracesReceived) -> None:
        if not self.loaded:
            return
        if message.dropped or self.filters.get("q"):
            self.fetch_newest()  # the stream cannot match free text (it carries no message text)
            return
        self._add([t for t in message.traces if fmt.matches(t, self.filters)])

    def on_feedback_received(self, message: FeedbackReceived) -> None:
        self.table.refresh()

    def on_daemon_reconnected(self, message: DaemonReconnected) -> None:
        self.fetch_newest() if self.loaded else self.reload()

    @on(TraceTable.NearEnd)
    def _near_end(self) -> None:
        if self.next_cursor is not None:
            self.load_older()

    @on(TraceTable.Selected)
    def _open(self, message: TraceTable.Selected) -> None:
        from llmops_tui.screens.trace_detail import TraceDetailScreen

        self.app.push_screen(TraceDetailScreen(message.trace))

    # -- actions -------------------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = fmt.describe_filter(self.filters)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.table.focus()
        self.filters = fmt.parse_filter(event.value)
        self.reload()

    def action_escape(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            self.table.focus()
        elif self.filters:
            self.filters = {}
            self.reload()

    def action_toggle_follow(self) -> None:
        self.following = not self.following
        if self.following and self.pending:
            pending, self.pending = self.pending, []
            self._add(pending)
        self._show_info()

    def action_cycle_sort(self) -> None:
        self.table.sort = fmt.next_of(SORTS, self.table.sort)
        self._show_info()

    def action_reload(self) -> None:
        self.reload()

    def action_rate(self, score: fmt.Rating) -> None:
        trace = self.table.current
        if trace is not None:
            self.llmops.rate(trace["id"], score, None)

    def action_comment(self) -> None:
        trace = self.table.current
        if trace is None:
            return

        def rated(rating: Any) -> None:
            if rating is not None:
                self.llmops.rate(trace["id"], rating.score, rating.comment)

        self.app.push_screen(RatingDialog(trace["id"], self.llmops.ratings.get(trace["id"])), rated)

    # -- the info line -------------------------------------------------------------------------------

    def watch_filters(self) -> None:
        self._show_info()

    def _empty_text(self) -> str:
        if self.filters:
            return f"No traces match {fmt.describe_filter(self.filters)}. Esc clears the filter."
        return "No traces yet. Send a request through the gateway, or run: llmops demo"

    def _show_info(self) -> None:
        if not self.is_mounted:
            return
        if self.following:
            mode = "[b $success]▶ following[/]"
        else:
            mode = f"[b $warning]⏸ paused[/] [$warning]{len(self.pending)} new[/] [$text-muted](f resumes)[/]"
        shown = len(self.table.rows)
        more = " · more below" if self.next_cursor is not None else ""
        parts = [mode, f"{shown:,} loaded{more}", f"sort: {self.table.sort} ↓"]
        if self.filters:
            parts.append(
                f"filter: [b]{escape(fmt.describe_filter(self.filters))}[/] [$text-muted](Esc clears)[/]"
            )
        # One line, always: no layout pass (which would repaint the whole screen on every batch).
        self.query_one("#traces-info", Static).update("  [$text-muted]│[/]  ".join(parts), layout=False)
