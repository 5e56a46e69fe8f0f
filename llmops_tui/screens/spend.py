"""Token spend: totals for today / 7 / 30 days, grouped by model, user or team, over time, and savings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, Static, Tab, Tabs

from llmops_tui import format as fmt
from llmops_tui.client import DaemonError
from llmops_tui.screens.windowed import WindowedScreen
from llmops_tui.widgets.spend_chart import SpendChart
from llmops_tui.widgets.status_bar import ConnectionBanner, StatusBar

if TYPE_CHECKING:
    pass

GROUPS = ("model", "user", "team")
METRICS = {"cost_usd": "cost", "shadow_cost_usd": "shadow cost", "requests": "requests", "tokens": "tokens"}
GROUP_COLUMNS = ("requests", "errors", "tokens in", "tokens out", "cost", "shadow", "share")


def _unit(metric: str) -> Any:
    return fmt.usd if metric.endswith("_usd") else fmt.count


def totals_table(data: dict[str, Any]) -> Table:
    totals, saved = data["totals"], data["savings"]
    table = Table(box=None, padding=(0, 1), expand=False, header_style="bold dim")
    for name in ("requests", "errors", "tokens in", "tokens out", "cost", "shadow cost", "saved (local)",
                 "saved (cache)"):  # fmt: skip
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    table.add_row(
        f"{totals['requests']:,}",
        f"[red]{totals['errors']:,}[/]" if totals["errors"] else "0",
        f"{totals['prompt_tokens']:,}",
        f"{totals['completion_tokens']:,}",
        f"[b]{fmt.usd(totals['cost_usd'])}[/]",
        fmt.usd(totals["shadow_cost_usd"]),
        f"[green]{fmt.usd(saved['local_serving_usd'])}[/]",
        f"[green]{fmt.usd(saved['cache_usd'])}[/]",
    )
    return table


class SpendScreen(WindowedScreen):
    AUTO_FOCUS = "#spend-groups"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "next_window", "Window"),
        Binding("g", "next_group", "Group by"),
        Binding("v", "next_metric", "Chart"),
        Binding("r", "reload", "Refresh"),
    ]

    group_by: reactive[str] = reactive("model", init=False)

    def __init__(self) -> None:
        super().__init__()
        self.metric_chosen = False  # until `v` is pressed, the chart picks what has values

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="banner")
        with Horizontal(id="spend-controls"):
            yield self.window_tabs("spend-window")
            yield Tabs(*[Tab(f"by {name}", id=f"group-{name}") for name in GROUPS], id="spend-group")
        yield Static(id="spend-totals")
        yield Static(id="spend-chart-title")
        yield SpendChart(self._bucket_label, _unit, id="spend-chart")
        yield DataTable(id="spend-groups", cursor_type="row", zebra_stripes=True)
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    # -- loading -------------------------------------------------------------------------------------

    @work(exclusive=True, group="spend")
    async def reload(self) -> None:
        self._refresh_due = False
        try:
            data = await self.llmops.client.spend(
                self.window, self.group_by, now=self.llmops.frozen_now, utc_offset=self.llmops.utc_offset
            )
        except DaemonError as exc:
            if self.llmops.connection.state == "connected":
                self.notify(f"Could not load spend: {exc.message}", severity="error")
            return
        self.data = data
        self._show(data)

    def _show(self, data: dict[str, Any]) -> None:
        self.query_one("#spend-totals", Static).update(totals_table(data))
        chart = self.query_one(SpendChart)
        if not self.metric_chosen:  # a local-only setup spends nothing: chart what it would have cost
            totals = data["totals"]
            chart.metric = next((m for m in ("cost_usd", "shadow_cost_usd") if totals[m] > 0), "requests")
        bucket = "hour" if data["bucket_seconds"] == 3600 else f"{data['bucket_seconds'] // 3600} hours"
        if data["bucket_seconds"] >= 86_400:
            bucket = "day"
        self.query_one("#spend-chart-title", Static).update(
            f"[b]{METRICS[chart.metric]}[/] per {bucket}, {fmt.WINDOWS[self.window].lower()}"
            f"  [$text-muted](v switches: cost, shadow cost, requests, tokens)[/]"
        )
        chart.series = data["series"]
        table = self.query_one("#spend-groups", DataTable)
        table.clear(columns=True)
        table.add_column(self.group_by)
        for name in GROUP_COLUMNS:
            table.add_column(Text(name, justify="right"))
        total = data["totals"]["cost_usd"] or 0
        requests = data["totals"]["requests"] or 0
        for group in data["groups"]:
            share = group["cost_usd"] / total if total else (group["requests"] / requests if requests else 0)
            counts = [f"{group[k]:,}" for k in ("requests", "errors", "prompt_tokens", "completion_tokens")]
            cells = (*counts, fmt.usd(group["cost_usd"]), fmt.usd(group["shadow_cost_usd"]), f"{share:.0%}")
            table.add_row(group["key"], *[Text(cell, justify="right") for cell in cells])

    # -- live ----------------------------------------------------------------------------------------

    # -- controls ------------------------------------------------------------------------------------

    @on(Tabs.TabActivated, "#spend-group")
    def _group_tab(self, event: Tabs.TabActivated) -> None:
        self.group_by = (event.tab.id or "group-model").removeprefix("group-")

    def watch_group_by(self) -> None:
        self.query_one("#spend-group", Tabs).active = f"group-{self.group_by}"
        self.reload()

    def action_next_group(self) -> None:
        self.group_by = fmt.next_of(GROUPS, self.group_by)

    def action_next_metric(self) -> None:
        chart = self.query_one(SpendChart)
        self.metric_chosen = True
        chart.metric = fmt.next_of(METRICS, chart.metric)
        if self.data is not None:
            self._show(self.data)
