"""SVG snapshots of each screen at fixed sizes, against a daemon seeded with fixed traffic.

Times render in UTC, the spend windows end at a frozen "now", and the status bar shows a fixed
URL, so the pictures depend on nothing but the code. Update with: pytest --snapshot-update
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot

from llmops_tui.app import LlmopsApp
from llmops_tui.client import DaemonClient
from llmops_tui.screens.budgets import BudgetsScreen
from llmops_tui.screens.cache import CacheScreen
from llmops_tui.screens.experiments import ExperimentsScreen
from llmops_tui.screens.prompts import PromptsScreen
from llmops_tui.screens.routing import RoutingScreen
from llmops_tui.screens.spend import SpendScreen
from llmops_tui.screens.trace_detail import TraceDetailScreen
from llmops_tui.screens.traces import TracesScreen
from llmops_tui.widgets.rating import RatingDialog
from tests.daemon_process import DaemonProcess
from tests.fixtures.fake_openai import free_port
from tests.tui.conftest import FROZEN_NOW, SNAPSHOT_LABEL, wait_for
from tests.tui.recorded_budgets import BUDGETS_ANSWER
from tests.tui.recorded_experiments import EXPERIMENTS_ANSWERS
from tests.tui.recorded_prompts import PROMPTS_ANSWERS
from tests.tui.recorded_routing import ROUTING_ANSWER, shadow_trace

pytestmark = pytest.mark.usefixtures("utc")
Compare = Callable[..., bool]


def snapshot_app(url: str, transport: httpx.AsyncBaseTransport | None = None) -> LlmopsApp:
    client = DaemonClient(url, label=SNAPSHOT_LABEL, backoff=(600.0,), transport=transport)
    return LlmopsApp(client, now=FROZEN_NOW, utc_offset=0)


class RecordedBudgets(httpx.AsyncHTTPTransport):
    """The seeded daemon answers everything but GET /admin/budgets, which the recorded answer does (a
    real daemon's budget windows follow the real clock)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/admin/budgets":
            return httpx.Response(200, json=BUDGETS_ANSWER)
        return await super().handle_async_request(request)


class RecordedRouting(httpx.AsyncHTTPTransport):
    """The seeded daemon answers everything but GET /admin/routing and the recorded shadow calls'
    traces, which the recorded answer does (circuits and shadow calls are a real daemon's live state)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/admin/routing":
            return httpx.Response(200, json=ROUTING_ANSWER)
        trace = shadow_trace(request.url.path.rpartition("/")[2])
        if request.url.path.startswith("/admin/traces/") and trace is not None:
            return httpx.Response(200, json=trace)
        return await super().handle_async_request(request)


class RecordedPrompts(httpx.AsyncHTTPTransport):
    """The seeded daemon answers everything but the registry's and the experiments' paths, which the
    recorded answers of a real daemon do (versions are made at the real time of a push)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path + (f"?{request.url.query.decode()}" if request.url.query else "")
        if request.url.path.startswith("/admin/experiments"):
            path = request.url.path  # the whole run, whatever the window asked
        recorded = PROMPTS_ANSWERS.get(path) or EXPERIMENTS_ANSWERS.get(path)
        if recorded is not None:
            return httpx.Response(200, json=recorded)
        return await super().handle_async_request(request)


async def traces_loaded(pilot: Pilot[Any]) -> None:
    app: LlmopsApp = pilot.app  # type: ignore[assignment]
    await wait_for(pilot, lambda: app.connection.state == "connected", "the connection")
    await wait_for(pilot, lambda: isinstance(app.screen, TracesScreen) and app.screen.loaded, "the traces")
    await pilot.wait_for_scheduled_animations()


def then(*steps: Callable[[Pilot[Any]], Awaitable[None]]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        for step in steps:
            await step(pilot)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    return run


def press(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await pilot.press(*keys)

    return run


def until(condition: Callable[[LlmopsApp], Any], what: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await wait_for(pilot, lambda: condition(pilot.app), what)  # type: ignore[arg-type]

    return run


def spend_loaded(window: str, group_by: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    def ready(app: LlmopsApp) -> bool:
        screen = app.screen
        return (
            isinstance(screen, SpendScreen)
            and bool(screen.data)
            and (screen.data["window"], screen.data["group_by"]) == (window, group_by)
        )

    return until(ready, f"spend for {window} by {group_by}")


def test_traces(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(110, 32), run_before=traces_loaded)


def test_traces_filtered_at_80x24(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    steps = then(
        traces_loaded,
        press("slash", *"status:error", "enter"),
        until(lambda app: app.screen.filters == {"status": "error"} and app.screen.loaded, "the filter"),
        until(lambda app: all(r["status"] == "error" for r in app.screen.table.rows), "error rows only"),
    )
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(80, 24), run_before=steps)


def test_trace_detail(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    steps = then(
        traces_loaded,
        press("enter"),
        until(lambda app: isinstance(app.screen, TraceDetailScreen) and app.screen.trace, "the detail"),
    )
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(100, 40), run_before=steps)


def test_rating_dialog(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    steps = then(
        traces_loaded, press("down", "c"), until(lambda app: isinstance(app.screen, RatingDialog), "dialog")
    )
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(80, 24), run_before=steps)


def test_spend_today_by_model(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    steps = then(traces_loaded, press("s"), spend_loaded("today", "model"))
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(100, 36), run_before=steps)


def test_spend_30_days_by_team_at_80x24(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    steps = then(traces_loaded, press("s", "w", "w", "g", "g"), spend_loaded("30d", "team"))
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(80, 24), run_before=steps)


def test_help(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    shown = until(lambda app: type(app.screen).__name__ == "HelpScreen", "help")
    steps = then(traces_loaded, press("question_mark"), shown)
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(100, 50), run_before=steps)


def test_daemon_unreachable_banner(snap_compare: Compare) -> None:
    steps = then(until(lambda app: app.connection.state == "down", "the disconnect"))
    app = snapshot_app(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    assert snap_compare(app, terminal_size=(80, 24), run_before=steps)


def test_cache_today(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    steps = then(
        traces_loaded,
        press("h"),
        until(lambda app: isinstance(app.screen, CacheScreen) and app.screen.data is not None, "the cache"),
    )
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(110, 32), run_before=steps)


budgets_loaded = until(lambda app: isinstance(app.screen, BudgetsScreen) and app.screen.data, "the budgets")


@pytest.mark.parametrize("size", [(100, 30), (160, 45)], ids=["100x30", "160x45"])
def test_budgets_today(snap_compare: Compare, seeded_daemon: DaemonProcess, size: tuple[int, int]) -> None:
    steps = then(traces_loaded, press("l"), budgets_loaded)
    app = snapshot_app(seeded_daemon.url, RecordedBudgets())
    assert snap_compare(app, terminal_size=size, run_before=steps)


def test_budgets_off(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    """The seeded daemon's profile has no `budgets:`: the view says how to turn them on."""
    steps = then(traces_loaded, press("l"), budgets_loaded)
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(100, 30), run_before=steps)


routing_loaded = until(lambda app: isinstance(app.screen, RoutingScreen) and app.screen.data, "the routing")


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_routing_today(snap_compare: Compare, seeded_daemon: DaemonProcess, size: tuple[int, int]) -> None:
    steps = then(traces_loaded, press("u"), routing_loaded)
    app = snapshot_app(seeded_daemon.url, RecordedRouting())
    assert snap_compare(app, terminal_size=size, run_before=steps)


def test_routing_shadow_comparison(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    """c on the routing view: the served answer beside the shadow's, with the question asked."""
    steps = then(
        traces_loaded,
        press("u"),
        routing_loaded,
        press("c"),
        until(lambda app: type(app.screen).__name__ == "ShadowDialog", "the comparison"),
        until(lambda app: "asked" in str(app.screen.query_one("#shadow-question").render()), "the question"),
    )
    app = snapshot_app(seeded_daemon.url, RecordedRouting())
    assert snap_compare(app, terminal_size=(100, 30), run_before=steps)


def test_routing_without_routes(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    """The seeded daemon's profile has no `routes:` nor `circuit_breaker:`: the view says how to add them."""
    steps = then(traces_loaded, press("u"), routing_loaded)
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(100, 30), run_before=steps)


def prompts_loaded(version: int) -> Callable[[Pilot[Any]], Awaitable[None]]:
    def ready(app: LlmopsApp) -> bool:
        screen = app.screen
        return isinstance(screen, PromptsScreen) and screen.version == version and bool(screen.shown_text)

    return until(ready, f"the prompts, version {version} shown")


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_prompts_versions_and_diff(
    snap_compare: Compare, seeded_daemon: DaemonProcess, size: tuple[int, int]
) -> None:
    """summarize's versions with their use and ratings, v2's diff against v1."""
    steps = then(traces_loaded, press("p"), prompts_loaded(1), press("down", "enter", "d"), prompts_loaded(2),
                 until(lambda app: app.screen.shown_text.startswith("---"), "the diff"))  # fmt: skip
    app = snapshot_app(seeded_daemon.url, RecordedPrompts())
    assert snap_compare(app, terminal_size=size, run_before=steps)


def test_prompts_yaml_and_move_label_dialog(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    steps = then(traces_loaded, press("p"), prompts_loaded(1), press("down", "enter"), prompts_loaded(2),
                 press("m"), until(lambda app: type(app.screen).__name__ == "AskDialog", "the dialog"))  # fmt: skip
    app = snapshot_app(seeded_daemon.url, RecordedPrompts())
    assert snap_compare(app, terminal_size=(100, 30), run_before=steps)


experiment_loaded = until(
    lambda app: isinstance(app.screen, ExperimentsScreen) and app.screen.data, "the experiment"
)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_experiment(snap_compare: Compare, seeded_daemon: DaemonProcess, size: tuple[int, int]) -> None:
    steps = then(traces_loaded, press("e"), experiment_loaded)
    app = snapshot_app(seeded_daemon.url, RecordedPrompts())
    assert snap_compare(app, terminal_size=size, run_before=steps)


def test_experiment_ramp_confirmation(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    steps = then(traces_loaded, press("e"), experiment_loaded, press("g", "enter"),
                 until(lambda app: type(app.screen).__name__ == "ConfirmDialog", "the confirmation"))  # fmt: skip
    app = snapshot_app(seeded_daemon.url, RecordedPrompts())
    assert snap_compare(app, terminal_size=(100, 30), run_before=steps)


def test_prompts_and_experiments_empty(snap_compare: Compare, seeded_daemon: DaemonProcess) -> None:
    """The seeded daemon has neither: each view says how to add them (the experiments view, here)."""
    steps = then(traces_loaded, press("e"),
                 until(lambda app: isinstance(app.screen, ExperimentsScreen) and app.screen.experiments == [], "it"))  # fmt: skip
    assert snap_compare(snapshot_app(seeded_daemon.url), terminal_size=(100, 30), run_before=steps)
