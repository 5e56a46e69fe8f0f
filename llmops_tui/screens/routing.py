"""Routing: each route's traffic over a window (the share per served model and per tier, calls, cost,
escalation and fallback rates), the selected route's shares over time, the models' circuit breakers
and live latencies, and the latest shadow calls beside the answers served (c or Enter compares them)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.events import Resize
from textual.markup import escape
from textual.widgets import DataTable, Footer, Static

from llmops_tui import format as fmt
from llmops_tui import routing_cells as cells
from llmops_tui.client import DaemonError
from llmops_tui.screens.tables import refill
from llmops_tui.screens.windowed import WindowedScreen
from llmops_tui.widgets.route_split import RouteSplit, ShareTimeline
from llmops_tui.widgets.shadow_dialog import ShadowDialog
from llmops_tui.widgets.status_bar import ConnectionBanner, StatusBar

SIDE_BY_SIDE = 100  # columns from which the selected route's split and its timeline sit side by side
MODEL_COLOURS = (
    "primary-lighten-2",
    "success",
    "accent-lighten-2",
    "secondary-lighten-3",
    "foreground-darken-2",
)
EXAMPLE = """  routes:
    auto:
      strategy: complexity
      tiers: [{name: cheap, models: [small], below: 0.3}, {name: best, models: [large]}]
    careful: {strategy: cascade, models: [small, large], min_confidence: 0.6}"""
NO_ROUTES = (
    "[b]No routes.[/] A route is a model name that picks a model per call. Add a [b]routes:[/] section "
    "to the profile, for example:\n",
    '\nClients then ask for the model [b]"auto"[/b]. Strategies: complexity, cost, latency, domain, '
    "cascade, weighted; a route's [b]shadow: {model: …}[/b] tries a candidate on a copy of its calls. "
    "The daemon reloads a saved profile by itself.",
)  # Rich markup: the example's brackets are YAML, not markup
NO_SHADOWS = (
    "[$text-muted]No shadow calls {window}. Give a route [b]shadow: {{model: NAME}}[/b] in the profile: "
    "NAME then answers a copy of the route's calls in the background, never seen by clients, and "
    "each pair shows here.[/]"
)
BREAKERS_OFF = (
    "[$text-muted]Circuit breakers are off: failures are counted, circuits never open. Add "
    "[b]circuit_breaker: {failures: 5, cooldown: 30}[/b] to the profile to skip a failing model for a "
    "while.[/]"
)


class RoutingScreen(WindowedScreen):
    AUTO_FOCUS = "#routing-routes"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "next_window", "Window"),
        Binding("c", "compare", "Compare shadow"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.routes: list[dict[str, Any]] = []
        self.shadows: list[dict[str, Any]] = []
        self.selected_route: str | None = None
        self._loaded_at = 0.0  # monotonic time of the daemon's answer: probe countdowns count from it

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="banner")
        with Horizontal(id="routing-controls"):
            yield self.window_tabs("routing-window")
        yield Static(id="routing-header")
        with VerticalScroll(id="routing-body"):
            yield Static(id="routing-empty")
            yield DataTable(id="routing-routes", cursor_type="row")
            with Horizontal(id="routing-selected"):
                yield Static(id="routing-split")
                yield Static(id="routing-timeline")
            yield Static("Circuit breakers and live latency", classes="section", id="routing-breakers-title")
            yield DataTable(id="routing-breakers", cursor_type="row", zebra_stripes=True)
            yield Static(id="routing-breaker-notes")
            yield Static("Shadow calls", classes="section", id="routing-shadows-title")
            yield Static(id="routing-shadows-note")
            yield DataTable(id="routing-shadows", cursor_type="row", zebra_stripes=True)
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        super().on_mount()

    # -- loading -------------------------------------------------------------------------------------

    @work(exclusive=True, group="routing")
    async def reload(self) -> None:
        self._refresh_due = False
        try:
            data = await self.llmops.client.routing(
                self.window, now=self.llmops.frozen_now, utc_offset=self.llmops.utc_offset
            )
        except DaemonError as exc:
            if self.llmops.connection.state == "connected":
                self.notify(f"Could not load routing: {escape(exc.message)}", severity="error")
            return
        self.data = data
        self._loaded_at = time.monotonic()
        self._show(data)

    def _palette(self) -> cells.Palette:
        variables = self.app.get_css_variables()
        return cells.Palette(
            tuple(variables[name] for name in MODEL_COLOURS),
            variables["success"], variables["warning"], variables["error"], "dim",
        )  # fmt: skip

    def _show(self, data: dict[str, Any]) -> None:
        self.routes = data["routes"]
        self.query_one("#routing-header", Static).update(self._header(data))
        empty = self.query_one("#routing-empty", Static)
        empty.display = not self.routes
        empty.update(Group(Text.from_markup(NO_ROUTES[0]), Text(EXAMPLE, style="bold"),
                           Text.from_markup(NO_ROUTES[1], style="dim")))  # fmt: skip
        for part in self.query("#routing-routes, #routing-selected"):
            part.display = bool(self.routes)
        self._fill_routes()
        self._fill_breakers()
        self._fill_shadows()

    def _header(self, data: dict[str, Any]) -> str:
        count = len(data["routes"])
        calls = sum(r["calls"] for r in data["routes"])
        cost = sum(r["cost_usd"] for r in data["routes"])
        window = fmt.WINDOWS[self.window].lower()
        parts = [f"[b]Routing[/]  {count} route{'s' * (count != 1)}",
                 f"{calls:,} routed call{'s' * (calls != 1)} {window}", fmt.usd(cost)]  # fmt: skip
        states = [b["state"] for b in data["breakers"]]
        if states.count("open"):
            parts.append(
                f"[b $error]{states.count('open')} circuit{'s' * (states.count('open') > 1)} OPEN[/]"
            )
        if states.count("half_open"):
            parts.append(f"[b $warning]{states.count('half_open')} half-open[/]")
        return "  ·  ".join(parts)

    def _room(self) -> int:
        return self.size.width - 2  # a scrollbar, if the body overflows

    def _fill_routes(self) -> None:
        table = self.query_one("#routing-routes", DataTable)
        palette, order = self._palette(), cells.model_order(self.routes)
        rows = [cells.route_cells(route, palette, order) for route in self.routes]
        kept, widths = cells.fit_columns(cells.ROUTE_COLUMNS, rows, self._room(), {7}, (3, 1), 24)
        refill(
            table, cells.ROUTE_COLUMNS, rows, kept, widths, {2, 3, 4, 5, 6}, [r["name"] for r in self.routes]
        )
        names = [r["name"] for r in self.routes]
        if self.selected_route in names:
            table.move_cursor(row=names.index(self.selected_route), animate=False)
        self._show_selected()

    def _show_selected(self) -> None:
        route = self._route()
        if route is None or self.data is None:
            return
        self.selected_route = route["name"]
        palette, order = self._palette(), cells.model_order(self.routes)
        self.query_one("#routing-split", Static).update(RouteSplit(route, self.window, palette, order))
        timeline = self.query_one("#routing-timeline", Static)
        timeline.display = bool(route["calls"])
        timeline.update(ShareTimeline(self.data, route["name"], self._bucket_label, palette, order))

    def _route(self) -> dict[str, Any] | None:
        table = self.query_one("#routing-routes", DataTable)
        if not self.routes or not 0 <= table.cursor_row < len(self.routes):
            return None
        return self.routes[table.cursor_row]

    def _fill_breakers(self, elapsed: float = 0.0) -> None:
        if self.data is None:
            return
        breakers = self.data["breakers"]
        table = self.query_one("#routing-breakers", DataTable)
        palette = self._palette()
        rows = [cells.breaker_cells(b, palette, elapsed) for b in breakers]
        kept, widths = cells.fit_columns(cells.BREAKER_COLUMNS, rows, self._room(), set(), (1, 4))
        refill(table, cells.BREAKER_COLUMNS, rows, kept, widths, {3, 4, 5, 6, 7, 8})
        notes = cells.breaker_notes(breakers)
        if breakers and not breakers[0]["enabled"]:
            notes.append(BREAKERS_OFF)
        shown = self.query_one("#routing-breaker-notes", Static)
        shown.display = bool(notes)
        shown.update("\n".join(notes))

    def _fill_shadows(self) -> None:
        assert self.data is not None
        self.shadows = self.data["shadows"]
        window = fmt.WINDOWS[self.window].lower()
        note = self.query_one("#routing-shadows-note", Static)
        table = self.query_one("#routing-shadows", DataTable)
        table.display = bool(self.shadows)
        if not self.shadows:
            note.update(NO_SHADOWS.format(window=window))
        else:
            totals = escape(cells.shadow_totals_text(self.data["shadow_totals"]))
            note.update(f"{totals}  [$text-muted]· c or Enter compares both answers in full[/]")
        palette, order = self._palette(), cells.model_order(self.routes)
        rows = [cells.shadow_cells(s, palette, order) for s in self.shadows]
        kept, widths = cells.fit_columns(cells.SHADOW_COLUMNS, rows, self._room(), {3, 7}, (1, 0, 5, 9), 20)
        refill(table, cells.SHADOW_COLUMNS, rows, kept, widths, {4, 5, 8, 9})
        self.refresh_bindings()

    @on(DataTable.RowHighlighted, "#routing-routes")
    def _highlighted(self) -> None:
        self._show_selected()

    def on_resize(self, event: Resize) -> None:
        # Side by side, the split's bars and the timeline need 100 columns; below, one above the other.
        self.query_one("#routing-selected").set_class(event.size.width < SIDE_BY_SIDE, "-stacked")
        if self.data is not None:
            self._show(self.data)

    # -- live ----------------------------------------------------------------------------------------

    def _tick(self) -> None:
        """Count down the open circuits' probe times; once one is due, ask the daemon again."""
        if self.data is None or self.llmops.frozen_now is not None or not self.is_current:
            return
        waits = [b["retry_in_s"] for b in self.data["breakers"] if b["state"] == "open" and b["retry_in_s"]]
        if not waits:
            return
        elapsed = time.monotonic() - self._loaded_at
        if elapsed >= min(waits):
            self.reload()
        else:
            self._fill_breakers(elapsed)

    # -- controls ------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "compare" and not self.shadows:
            return None
        return True

    @on(DataTable.RowSelected, "#routing-shadows")
    def _shadow_selected(self) -> None:
        self.action_compare()

    def action_compare(self) -> None:
        table = self.query_one("#routing-shadows", DataTable)
        if 0 <= table.cursor_row < len(self.shadows):
            self.app.push_screen(ShadowDialog(self.shadows[table.cursor_row], self.llmops.client))
