"""The base of the screens that show the daemon's numbers over a window (spend, cache, limits): the
window tabs and key, the chart's bucket labels, and refreshing as traces arrive (at most every
LIVE_REFRESH_SECONDS) or when the daemon comes back."""

from __future__ import annotations

import time
from typing import Any

from textual import on
from textual.reactive import reactive
from textual.widgets import Tab, Tabs

from llmops_tui import format as fmt
from llmops_tui.messages import DaemonReconnected, TracesReceived
from llmops_tui.screens.live import LiveScreen

LIVE_REFRESH_SECONDS = 2.0  # new traces refresh the numbers at most this often


class WindowedScreen(LiveScreen):
    window: reactive[str] = reactive("today", init=False)

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, Any] | None = None
        self._refresh_due = False  # a refresh is scheduled; a reload clears it

    @staticmethod
    def window_tabs(tabs_id: str) -> Tabs:
        tabs = [Tab(label, id=f"window-{name}") for name, label in fmt.WINDOWS.items()]
        return Tabs(*tabs, id=tabs_id, classes="window-tabs")

    def _bucket_label(self, start: float) -> str:
        if self.data and self.data["bucket_seconds"] >= 86_400:
            return time.strftime("%a %d %b", time.localtime(start))
        return time.strftime("%H:%M" if self.window == "today" else "%a %H:%M", time.localtime(start))

    def refresh_soon(self) -> None:
        if self.data is not None and not self._refresh_due:
            self._refresh_due = True
            self.set_timer(LIVE_REFRESH_SECONDS, self.reload)

    def on_traces_received(self, message: TracesReceived) -> None:
        self.refresh_soon()

    def on_daemon_reconnected(self, message: DaemonReconnected) -> None:
        self.reload()

    @on(Tabs.TabActivated, ".window-tabs")
    def _window_tab(self, event: Tabs.TabActivated) -> None:
        self.window = (event.tab.id or "window-today").removeprefix("window-")

    def watch_window(self) -> None:
        self.query_one(".window-tabs", Tabs).active = f"window-{self.window}"
        self.reload()

    def action_next_window(self) -> None:
        self.window = fmt.next_of(fmt.WINDOWS, self.window)

    def action_reload(self) -> None:
        self.reload()
