"""The response cache: hit rate over time, entries, savings, and the latest hits beside the
question each one was first asked as, with keys to evict an entry or mark a hit as wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.markup import escape
from textual.widgets import DataTable, Footer, Static

from llmops_tui import format as fmt
from llmops_tui.client import DaemonError
from llmops_tui.messages import TracesReceived
from llmops_tui.screens.trace_detail import TraceDetailScreen
from llmops_tui.screens.windowed import WindowedScreen
from llmops_tui.widgets.spend_chart import SpendChart
from llmops_tui.widgets.status_bar import ConnectionBanner, StatusBar

METRICS = {
    "hit_rate": "hit rate", "exact_hit_rate": "exact hit rate", "semantic_hit_rate": "semantic hit rate",
    "cache_hits": "hits", "saved_usd": "saved", "saved_tokens": "tokens saved",
}  # fmt: skip
HIT_COLUMNS = ("time", "user", "model", "kind", "saved", "asked now", "first asked as")


def with_hit_rate(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each bucket with its hit rates in percent, all hits, exact and semantic (0 where nothing was
    looked up)."""

    def percent(part: int, lookups: int) -> float:
        return 100.0 * part / lookups if lookups else 0.0

    return [
        {
            **bucket,
            "hit_rate": percent(bucket["cache_hits"], bucket["cache_lookups"]),
            "exact_hit_rate": percent(
                bucket["cache_hits"] - bucket["semantic_hits"], bucket["cache_lookups"]
            ),
            "semantic_hit_rate": percent(bucket["semantic_hits"], bucket["cache_lookups"]),
        }
        for bucket in series
    ]


def _unit(metric: str) -> Any:
    if metric.endswith("hit_rate"):
        return lambda value: f"{value:.0f}%"
    return fmt.usd if metric.endswith("_usd") else fmt.count


def totals_table(data: dict[str, Any]) -> Table:
    table = Table(box=None, padding=(0, 1), expand=False, header_style="bold dim")
    names = (
        "entries",
        "lookups",
        "hits",
        "semantic",
        "hit rate",
        "saved",
        "tokens saved",
        "bad hits",
        "fences",
    )
    for name in names:
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    rate = f"{data['hit_rate']:.0%}" if data["hit_rate"] is not None else "-"
    table.add_row(
        f"{data['entries']:,}", f"{data['lookups']:,}", f"[b]{data['hits']:,}[/]",
        f"{data['semantic_hits']:,}",
        f"[b]{rate}[/]", f"[green]{fmt.usd(data['saved_usd'])}[/]", fmt.count(data["saved_tokens"]),
        f"{len(data['bad_hits']):,}", f"{data.get('fences', 0):,}",
    )  # fmt: skip
    return table


def bad_hit_said(answer: dict[str, Any]) -> str:
    fenced = " and fenced the pair: the two questions will not match again" if answer.get("fenced") else ""
    return f"Marked the answer wrong: evicted its entry{fenced}."


class CacheScreen(WindowedScreen):
    AUTO_FOCUS = "#cache-hits"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "next_window", "Window"),
        Binding("v", "next_metric", "Chart"),
        Binding("x", "evict", "Evict entry"),
        Binding("b", "bad_hit", "Bad hit"),
        Binding("enter", "open", "Open", show=False),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="banner")
        with Horizontal(id="cache-controls"):
            yield self.window_tabs("cache-window")
        yield Static(id="cache-totals")
        yield Static(id="cache-chart-title")
        yield SpendChart(self._bucket_label, _unit, id="cache-chart")
        yield Static("[b]Latest hits[/]  [$text-muted]x evicts the entry, b marks the answer wrong[/]",
                     id="cache-hits-title")  # fmt: skip
        yield DataTable(id="cache-hits", cursor_type="row", zebra_stripes=True)
        yield StatusBar(id="status")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(SpendChart).metric = "hit_rate"
        super().on_mount()

    @work(exclusive=True, group="cache")
    async def reload(self) -> None:
        self._refresh_due = False
        try:
            data = await self.llmops.client.cache(
                self.window, now=self.llmops.frozen_now, utc_offset=self.llmops.utc_offset
            )
        except DaemonError as exc:
            if self.llmops.connection.state == "connected":
                self.notify(f"Could not load the cache: {exc.message}", severity="error")
            return
        self.data = data
        self._show(data)

    def _show(self, data: dict[str, Any]) -> None:
        totals: Any = totals_table(data)
        if not data["enabled"]:
            off = Text.from_markup("[b]The cache is off:[/] add a [b]cache:[/] section to the profile.")
            totals = Group(off, totals)
        self.query_one("#cache-totals", Static).update(totals)
        chart = self.query_one(SpendChart)
        self.query_one("#cache-chart-title", Static).update(
            f"[b]{METRICS[chart.metric]}[/] over {fmt.WINDOWS[self.window].lower()}"
            f"  [$text-muted](v switches: {', '.join(METRICS.values())})[/]"
        )
        chart.series = with_hit_rate(data["series"])
        self.hits = data["recent_hits"]
        table = self.query_one("#cache-hits", DataTable)
        table.clear(columns=True)
        for name in HIT_COLUMNS:
            table.add_column(name)
        for hit in self.hits:
            cached = hit["metadata"].get("cache") or {}
            kind = "exact" if hit["cache"] == "hit-exact" else f"{cached.get('similarity', 0):.2f}"
            table.add_row(
                fmt.clock(hit["ts"]), hit["user"] or "-", hit["served_model"] or "-", kind,
                fmt.usd(hit["saved_usd"]), Text(hit["question"] or "", overflow="ellipsis"),
                Text(cached.get("question") or "", style="dim", overflow="ellipsis"),
            )  # fmt: skip

    def _selected(self) -> dict[str, Any] | None:
        table = self.query_one("#cache-hits", DataTable)
        if not self.hits or table.cursor_row < 0 or table.cursor_row >= len(self.hits):
            return None
        return self.hits[table.cursor_row]

    # -- live ----------------------------------------------------------------------------------------

    def on_traces_received(self, message: TracesReceived) -> None:
        if any(t.get("cache") for t in message.traces):
            self.refresh_soon()

    # -- controls ------------------------------------------------------------------------------------

    def action_next_metric(self) -> None:
        chart = self.query_one(SpendChart)
        chart.metric = fmt.next_of(METRICS, chart.metric)
        if self.data is not None:
            self._show(self.data)

    def action_open(self) -> None:
        hit = self._selected()
        if hit is not None:
            self.app.push_screen(TraceDetailScreen(hit))

    def action_evict(self) -> None:
        hit = self._selected()
        entry = ((hit or {}).get("metadata") or {}).get("cache", {}).get("entry")
        if entry:
            self._change(
                self.llmops.client.evict(entry),
                lambda _: "Evicted the entry: the next such call asks the model.",
            )

    def action_bad_hit(self) -> None:
        hit = self._selected()
        if hit is not None:
            self._change(self.llmops.client.bad_hit(hit["id"]), bad_hit_said)

    @work(group="cache-change")
    async def _change(self, request: Any, said: Callable[[dict[str, Any]], str]) -> None:
        try:
            answer = await request
        except DaemonError as exc:
            self.notify(escape(exc.message), severity="error")
            return
        self.notify(escape(said(answer)), timeout=4)
        self.reload()
