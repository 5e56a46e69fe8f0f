"""Budgets and limits: each budget's use against its limit (spent, reserved, left, its window and its
reset), the warnings, the calls refused by a rate limit or a budget over time, and the top spenders,
with a key to reset the selected budget."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.markup import escape
from textual.widgets import DataTable, Footer, Static

from llmops_tui import budget_cells as cells
from llmops_tui import format as fmt
from llmops_tui.client import DaemonError
from llmops_tui.screens.windowed import WindowedScreen
from llmops_tui.widgets.confirm import ConfirmDialog
from llmops_tui.widgets.spend_chart import SpendChart
from llmops_tui.widgets.status_bar import ConnectionBanner, StatusBar

METRICS = {"refused": "refusals", "over_budget": "over budget", "rate_limited": "rate limited"}
CLOCK_REFRESH_SECONDS = 30.0  # "resets in …" counts down, and reservations end, without any new trace
BUDGETS_OFF = (
    "[b]Budgets are off.[/] To cap what users, keys and teams spend, add a [b]budgets:[/] section to the "
    "profile, for example:\n\n"
    "  [b]budgets:[/]\n    timezone: Europe/Paris\n    users: {alice: {per: day, usd: 5}}\n"
    "    default: {per: month, tokens: 200000}\n\n"
    "[$text-muted]The daemon reloads a saved profile by itself. [b]budgets: {}[/b] turns them on with only "
    "the budgets set by [b]llmops budget set[/b].[/]"
)
NO_BUDGETS = (
    "[b]No budget applies yet.[/] The profile's [b]budgets:[/] section sets none, and none was set "
    "with [b]llmops budget set[/] (a default budget shows once its users spend)."
)


def with_refusals(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**bucket, "refused": bucket["rate_limited"] + bucket["over_budget"]} for bucket in series]


def spenders_table(spenders: list[dict[str, Any]]) -> Table:
    table = Table(box=None, padding=(0, 1), expand=False, header_style="bold dim")
    table.add_column("user", no_wrap=True, max_width=16, overflow="ellipsis")
    for name in ("spent", "tokens", "calls"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in spenders:
        table.add_row(row["user"] or "-", fmt.usd(row["cost_usd"]), fmt.count(row["tokens"]),
                      f"{row['requests']:,}")  # fmt: skip
    return table


class BudgetsScreen(WindowedScreen):
    AUTO_FOCUS = "#budgets-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "next_window", "Window"),
        Binding("v", "next_metric", "Chart"),
        Binding("x", "reset_budget", "Reset budget"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.budgets: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="banner")
        with Horizontal(id="budgets-controls"):
            yield self.window_tabs("budgets-window")
        yield Static(id="budgets-header")
        yield Static(id="budgets-warnings")
        yield Static(id="budgets-off")
        yield Static(id="budget-detail")  # above the table: below, a short table would leave a gap
        yield DataTable(id="budgets-table", cursor_type="row")
        with Horizontal(id="budgets-bottom"):
            with Vertical(id="budgets-refusals"):
                yield Static(id="budgets-chart-title")
                yield Static(id="budgets-limits")
                yield SpendChart(self._bucket_label, lambda _: fmt.count, id="budgets-chart")
            yield Static(id="budgets-spenders")
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(SpendChart).metric = "refused"
        self.set_interval(CLOCK_REFRESH_SECONDS, self._tick)
        super().on_mount()

    # -- loading -------------------------------------------------------------------------------------

    @work(exclusive=True, group="budgets")
    async def reload(self) -> None:
        self._refresh_due = False
        try:
            data = await self.llmops.client.budgets(
                self.window, now=self.llmops.frozen_now, utc_offset=self.llmops.utc_offset
            )
        except DaemonError as exc:
            if self.llmops.connection.state == "connected":
                self.notify(f"Could not load the budgets: {escape(exc.message)}", severity="error")
            return
        self.data = data
        self._show(data)

    def _show(self, data: dict[str, Any]) -> None:
        self.budgets = cells.in_order(data["budgets"]) if data["enabled"] else []
        warnings = [b["warning"] for b in self.budgets if b["warning"]]
        self.query_one("#budgets-header", Static).update(self._header(data, len(warnings)))
        shown = self.query_one("#budgets-warnings", Static)
        shown.display = bool(warnings)
        shown.update("\n".join(f"[b $warning]⚠[/] [$warning]{escape(w)}[/]" for w in warnings))
        off = self.query_one("#budgets-off", Static)
        off.display = not self.budgets
        off.update(BUDGETS_OFF if not data["enabled"] else NO_BUDGETS)
        self.query_one("#budgets-table").display = bool(self.budgets)
        self.query_one("#budget-detail").display = bool(self.budgets)
        self._fill_table()
        self.refresh_bindings()  # x is greyed out while there is no budget to reset
        self._show_refusals(data)
        spenders = data["top_spenders"]
        title = Text.from_markup(f"[b]Top spenders[/], {fmt.WINDOWS[self.window].lower()}")
        body = spenders_table(spenders) if spenders else Text("nobody has spent anything", style="dim")
        self.query_one("#budgets-spenders", Static).update(Group(title, body))

    def _header(self, data: dict[str, Any], warned: int) -> str:
        if not data["enabled"]:
            return "[b]Budgets[/]  [$text-muted]off[/]"
        count = len(self.budgets)
        parts = [f"[b]Budgets[/]  {count} budget{'s' * (count != 1)}"]
        if warned:
            parts.append(f"[b $warning]{warned} past {'their' if warned > 1 else 'its'} warning share[/]")
        if data.get("timezone"):
            parts.append(f"[$text-muted]windows start at midnight {escape(data['timezone'])}[/]")
        return "  ·  ".join(parts)

    def _fill_table(self) -> None:
        table = self.query_one("#budgets-table", DataTable)
        selected = self._selected()
        table.clear(columns=True)
        variables = self.app.get_css_variables()
        palette = cells.Palette(variables["success"], variables["warning"], variables["error"], "dim")
        tz = cells.zone(self.data.get("timezone") if self.data else None)
        # Too narrow for each budget's window and source, the detail line above shows them.
        room = self.size.width - 2  # a scrollbar, if the rows overflow
        headers, rows, widths = cells.table_layout(self.budgets, tz, palette, room)
        for n, header in enumerate(headers):
            table.add_column(header, width=widths[n] if widths else None)
        for budget, row in zip(self.budgets, rows, strict=True):
            table.add_row(*row, height=len(cells.dimensions(budget)), key=_key(budget))
        if selected is not None and _key(selected) in {_key(b) for b in self.budgets}:
            table.move_cursor(row=table.get_row_index(_key(selected)), animate=False)
        self._show_detail()

    def _show_refusals(self, data: dict[str, Any]) -> None:
        chart = self.query_one(SpendChart)
        bucket = "hour" if data["bucket_seconds"] == 3600 else f"{data['bucket_seconds'] // 3600} hours"
        if data["bucket_seconds"] >= 86_400:
            bucket = "day"
        series = with_refusals(data["rejections"])
        total = sum(b[chart.metric] for b in series)
        window = fmt.WINDOWS[self.window].lower()
        self.query_one("#budgets-chart-title", Static).update(
            f"[b]{METRICS[chart.metric]}[/] per {bucket}, {window}: {total:,}"
            f"  [$text-muted](v switches: {', '.join(METRICS.values())})[/]"
        )
        self.query_one("#budgets-limits", Static).update(
            f"[$text-muted]{escape(cells.limits_text(data['rate_limits'], data['caps']))}[/]"
        )
        chart.series = series

    def _selected(self) -> dict[str, Any] | None:
        table = self.query_one("#budgets-table", DataTable)
        if not self.budgets or not 0 <= table.cursor_row < len(self.budgets):
            return None
        return self.budgets[table.cursor_row]

    def _show_detail(self) -> None:
        budget = self._selected()
        tz = cells.zone(self.data.get("timezone") if self.data else None)
        text = "" if budget is None else f"[$text-muted]▸[/] {cells.detail_markup(budget, tz)}"
        self.query_one("#budget-detail", Static).update(text)

    @on(DataTable.RowHighlighted, "#budgets-table")
    def _highlighted(self) -> None:
        self._show_detail()

    def on_resize(self, event: Resize) -> None:
        if self.data is not None:
            self._fill_table()

    # -- live ----------------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.data is not None and self.is_current:
            self.reload()

    # -- controls ------------------------------------------------------------------------------------

    def action_next_metric(self) -> None:
        chart = self.query_one(SpendChart)
        chart.metric = fmt.next_of(METRICS, chart.metric)
        if self.data is not None:
            self._show_refusals(self.data)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reset_budget" and not self.budgets:
            return None
        return True

    def action_reset_budget(self) -> None:
        budget = self._selected()
        if budget is None:
            return
        spent = " and ".join(d.say(d.spent) for d in cells.dimensions(budget))
        limit = " and ".join(d.say(d.limit) for d in cells.dimensions(budget))
        question = (
            f"Reset the {cells.ADJECTIVE.get(budget['period'], budget['period'])} budget of {budget['name']}?"
        )
        consequence = (
            f"Its window starts again now, so what it has spent so far ({spent}) no longer counts against "
            f"its {limit}. Traces and spend figures are kept."
        )

        def reset_if_confirmed(confirmed: bool | None) -> None:
            if confirmed:
                self._reset(budget)

        self.app.push_screen(ConfirmDialog(question, consequence, "Reset"), reset_if_confirmed)

    @work(group="budgets-reset")
    async def _reset(self, budget: dict[str, Any]) -> None:
        try:
            await self.llmops.client.reset_budget(budget["subject"], budget["period"])
        except DaemonError as exc:
            self.notify(f"Budget not reset: {escape(exc.message)}", severity="error")
            return
        adjective = cells.ADJECTIVE.get(budget["period"], budget["period"])
        self.notify(
            f"Reset the {adjective} budget of {escape(budget['name'])}: it counts from now.", timeout=4
        )
        self.reload()


def _key(budget: dict[str, Any]) -> str:
    return f"{budget['subject']}/{budget['period']}"
