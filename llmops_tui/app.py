"""The console app: seven modes (live traces, spend, cache, budgets, routing, prompts, experiments), the
daemon connection, ratings, help, the palette."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from llmops_tui import format as fmt
from llmops_tui.client import DaemonClient, DaemonError
from llmops_tui.messages import (
    DaemonConnected,
    DaemonDisconnected,
    DaemonReconnected,
    FeedbackReceived,
    ModelChanged,
    ProfileReloaded,
    TracesReceived,
)
from llmops_tui.screens.budgets import BudgetsScreen
from llmops_tui.screens.cache import CacheScreen
from llmops_tui.screens.experiments import ACTION_KEYS, ExperimentsScreen
from llmops_tui.screens.help import HelpScreen
from llmops_tui.screens.prompts import PromptsScreen
from llmops_tui.screens.routing import RoutingScreen
from llmops_tui.screens.spend import SpendScreen
from llmops_tui.screens.trace_detail import TraceDetailScreen
from llmops_tui.screens.traces import TracesScreen
from llmops_tui.state import Connection
from llmops_tui.widgets.ask_dialog import AskDialog
from llmops_tui.widgets.confirm import ConfirmDialog
from llmops_tui.widgets.rating import RatingDialog
from llmops_tui.widgets.shadow_dialog import ShadowDialog
from llmops_tui.widgets.trace_table import TraceTable

RATE_WINDOW_SECONDS = 5.0


class LlmopsApp(App[None]):
    TITLE = "llmops"
    CSS_PATH = ["app.tcss", "traces.tcss", "detail.tcss", "spend.tcss", "cache.tcss", "budgets.tcss",
                "routing.tcss", "prompts.tcss", "experiments.tcss", "dialogs.tcss"]  # fmt: skip
    MODES: ClassVar[dict[str, Any]] = {
        "traces": TracesScreen, "spend": SpendScreen, "cache": CacheScreen, "budgets": BudgetsScreen,
        "routing": RoutingScreen, "prompts": PromptsScreen, "experiments": ExperimentsScreen,
    }  # fmt: skip
    DEFAULT_MODE = "traces"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "show('traces')", "Traces"),
        Binding("s", "show('spend')", "Spend"),
        Binding("h", "show('cache')", "Cache"),
        # Budgets, rate limits and caps: not b, which is "bad hit" on the cache view and would shadow it.
        Binding("l", "show('budgets')", "Limits"),
        # Routing: not r, which refreshes every view, nor o, which sorts the traces.
        Binding("u", "show('routing')", "Routing"),
        Binding("p", "show('prompts')", "Prompts"),
        Binding("e", "show('experiments')", "Experiments"),
        Binding("question_mark", "help", "Help"),
        Binding("R", "retry", "Reconnect now", show=False),
        Binding("q", "quit", "Quit"),
    ]

    connection: reactive[Connection] = reactive(Connection(url=""), always_update=True)
    traces_per_second: reactive[float] = reactive(0.0)

    def __init__(
        self, client: DaemonClient, *, now: float | None = None, utc_offset: int | None = None
    ) -> None:
        """`now` freezes the spend windows' clock (snapshot tests); `utc_offset` sets whose "today" it is."""
        super().__init__()
        self.client = client
        self.frozen_now = now
        self.utc_offset = utc_offset if utc_offset is not None else time.localtime().tm_gmtoff
        self.ratings: dict[str, fmt.Rating] = {}
        self.live_screens: set[Screen[Any]] = set()
        self._arrivals: deque[tuple[float, int]] = deque()
        self.set_reactive(LlmopsApp.connection, Connection(url=client.label))

    def on_mount(self) -> None:
        self.listen()
        self.set_interval(1.0, self._update_rate)

    @work(group="daemon-events")
    async def listen(self) -> None:
        await self.client.listen(self)

    async def on_unmount(self) -> None:
        await self.client.aclose()

    # -- the daemon's messages -----------------------------------------------------------------------

    def _forward(self, make: Any) -> None:
        for screen in list(self.live_screens):
            screen.post_message(make())

    def on_daemon_connected(self, message: DaemonConnected) -> None:
        self.connection = self.connection.up(message.status)

    def on_daemon_reconnected(self, message: DaemonReconnected) -> None:
        self.connection = self.connection.up(message.status)
        self.notify(f"Reconnected to the daemon after {message.down_seconds:.0f} s.", timeout=4)
        self._forward(lambda: DaemonReconnected(message.status, message.down_seconds))

    def on_model_changed(self, message: ModelChanged) -> None:
        self.connection = self.connection.model(message.state)
        if message.state.get("load_error"):
            self.notify(message.state["load_error"], severity="error", timeout=8)

    def on_daemon_disconnected(self, message: DaemonDisconnected) -> None:
        self.connection = self.connection.down(message.reason, message.retry_in, message.attempt)

    def on_profile_reloaded(self, message: ProfileReloaded) -> None:
        self.connection = self.connection.reloaded(message.ok, message.name, message.error)
        if message.ok:
            self.notify(f"Profile {message.name} reloaded.", timeout=3)
        else:
            self.notify(f"Profile reload rejected: {message.error}", severity="error", timeout=8)

    def on_traces_received(self, message: TracesReceived) -> None:
        self._arrivals.append((time.monotonic(), len(message.traces)))
        self._forward(lambda: TracesReceived(message.traces, message.dropped))

    def on_feedback_received(self, message: FeedbackReceived) -> None:
        self.ratings[message.feedback["trace_id"]] = fmt.rating_of(message.feedback) or 0.0
        self._forward(lambda: FeedbackReceived(message.feedback))

    def _update_rate(self) -> None:
        cutoff = time.monotonic() - RATE_WINDOW_SECONDS
        while self._arrivals and self._arrivals[0][0] < cutoff:
            self._arrivals.popleft()
        self.traces_per_second = sum(n for _, n in self._arrivals) / RATE_WINDOW_SECONDS

    # -- rating (from the table, the detail and the palette) ------------------------------------------

    @work(group="rate")
    async def rate(self, trace_id: str, score: fmt.Rating, comment: str | None) -> None:
        try:
            entry = await self.client.rate(trace_id, score, comment)
        except DaemonError as exc:
            self.notify(f"Rating not saved: {exc.message}", severity="error")
            return
        self.ratings[trace_id] = score
        self._forward(lambda: FeedbackReceived(entry))
        self.notify(f"Rated {fmt.score(score)}" + (" with a comment" if comment else ""), timeout=2)

    # -- actions -------------------------------------------------------------------------------------

    def action_show(self, mode: str) -> None:
        if self.current_mode == mode:
            while len(self.screen_stack) > 1:  # back to the mode's main screen
                self.pop_screen()
        else:
            self.switch_mode(mode)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen([
            ("Anywhere", LlmopsApp), ("Traces", TracesScreen), ("Table", TraceTable),
            ("Trace detail", TraceDetailScreen), ("Spend", SpendScreen), ("Cache", CacheScreen),
            ("Budgets and limits", BudgetsScreen), ("Routing", RoutingScreen), ("Shadow call", ShadowDialog),
            ("Prompts", PromptsScreen), ("Experiments", ExperimentsScreen), ("Rating", RatingDialog),
            ("Confirm", ConfirmDialog), ("Ask", AskDialog),
        ]))  # fmt: skip

    def action_retry(self) -> None:
        self.client.retry_now()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield SystemCommand("Traces", "Live traces (t)", lambda: self.action_show("traces"))
        yield SystemCommand(
            "Spend", "Token spend by model, user, team (s)", lambda: self.action_show("spend")
        )
        yield SystemCommand(
            "Cache", "Hit rate, savings, the latest hits (h)", lambda: self.action_show("cache")
        )
        yield SystemCommand(
            "Budgets and limits",
            "Budgets' use, refusals, top spenders (l)",
            lambda: self.action_show("budgets"),
        )
        yield SystemCommand(
            "Routing",
            "Routes' traffic per model, circuit breakers, shadow calls (u)",
            lambda: self.action_show("routing"),
        )
        yield SystemCommand(
            "Prompts", "Versions, labels, diffs, each version's use and ratings (p)",
            lambda: self.action_show("prompts"),
        )  # fmt: skip
        yield SystemCommand(
            "Experiments", "Prompt A/B tests: arms, intervals, verdict, lifecycle (e)",
            lambda: self.action_show("experiments"),
        )  # fmt: skip
        yield SystemCommand("Help", "Every key (?)", self.action_help)
        yield SystemCommand(
            "Reconnect now", "Retry the daemon connection without waiting (R)", self.action_retry
        )
        if isinstance(screen, TracesScreen):
            yield SystemCommand(
                "Filter traces", "By model, user, team, status, text (/)", screen.action_filter
            )
            yield SystemCommand(
                "Follow / pause", "Tail new traces or hold the view (f)", screen.action_toggle_follow
            )
            yield SystemCommand(
                "Sort traces", "Cycle time, latency, cost, tokens, TTFT (o)", screen.action_cycle_sort
            )
            yield SystemCommand("Reload traces", "Query the daemon again (r)", screen.action_reload)
        if isinstance(screen, SpendScreen):
            yield SystemCommand("Spend window", "Today, 7 days, 30 days (w)", screen.action_next_window)
            yield SystemCommand("Spend grouping", "By model, user, team (g)", screen.action_next_group)
            yield SystemCommand(
                "Spend chart", "Cost, shadow cost, requests, tokens (v)", screen.action_next_metric
            )
        if isinstance(screen, CacheScreen):
            yield SystemCommand("Cache window", "Today, 7 days, 30 days (w)", screen.action_next_window)
            yield SystemCommand("Evict the entry", "Of the selected hit (x)", screen.action_evict)
            yield SystemCommand(
                "Mark a bad hit", "The selected hit answered wrongly (b)", screen.action_bad_hit
            )
        if isinstance(screen, BudgetsScreen):
            yield SystemCommand("Budgets window", "Today, 7 days, 30 days (w)", screen.action_next_window)
            yield SystemCommand(
                "Refusals chart", "All, over budget, rate limited (v)", screen.action_next_metric
            )
            yield SystemCommand(
                "Reset the budget",
                "Start the selected budget's window again now (x)",
                screen.action_reset_budget,
            )
        if isinstance(screen, RoutingScreen):
            yield SystemCommand("Routing window", "Today, 7 days, 30 days (w)", screen.action_next_window)
            yield SystemCommand(
                "Compare a shadow call", "The selected shadow answer beside the served one (c)",
                screen.action_compare,
            )  # fmt: skip
        if isinstance(screen, PromptsScreen):
            yield SystemCommand("YAML or diff", "Of the selected version (d)", screen.action_toggle_panel)
            yield SystemCommand(
                "Move a label", "Point a label at the selected version: release, rollback (m)",
                screen.action_move_label,
            )  # fmt: skip
        if isinstance(screen, ExperimentsScreen):
            yield SystemCommand("Experiment window", "Whole run, today, 7 days, 30 days (w)",
                                screen.action_next_window)  # fmt: skip
            for action, (key, what) in ACTION_KEYS.items():
                yield SystemCommand(
                    f"{action.capitalize()} the experiment", f"{what} ({key})",
                    lambda action=action: screen.action_lifecycle(action),
                )  # fmt: skip
        if isinstance(screen, TracesScreen | TraceDetailScreen):
            yield SystemCommand("Comment on trace", "Rate with a comment (c)", screen.action_comment)
        yield from super().get_system_commands(screen)
