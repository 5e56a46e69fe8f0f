"""The budgets view against a real daemon with budgets and a rate limit: resetting a budget from the
console, refusals showing up live, and the recorded answer of the snapshots keeping the daemon's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmops_tui.app import LlmopsApp
from llmops_tui.client import DaemonClient
from llmops_tui.screens.budgets import BudgetsScreen
from llmops_tui.widgets.confirm import ConfirmDialog
from tests.daemon_process import DaemonProcess
from tests.fixtures.fake_openai import FakeOpenAI
from tests.tui.conftest import live_profile, wait_for
from tests.tui.recorded_budgets import BUDGETS_ANSWER
from tests.tui.shapes import shape

SIZE = (120, 40)
LIMITS = """
budgets:
  timezone: Europe/Paris
  users:
    alice: {per: day, usd: 5}
    bob: [{per: day, usd: 1}, {per: month, tokens: 200000}]
  teams:
    research: {per: week, usd: 20}
  default: {per: month, tokens: 100000}
rate_limits:
  users:
    carol: {requests_per_minute: 2}
caps: {default_max_tokens: 256}
"""


@pytest.fixture(scope="module")
def budgeted_daemon(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("console-budgets")
    daemon = DaemonProcess.serving(folder, live_profile(fake_upstream.base_url) + LIMITS)
    yield daemon
    daemon.stop()


def ask(url: str, user: str) -> int:
    body = {"model": "fake", "user": user, "messages": [{"role": "user", "content": "how much is left?"}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10).status_code


def standing(url: str, subject: str, period: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/admin/budgets", params={"subject": subject}).json()
    return next(b for b in answer["budgets"] if b["period"] == period)


async def open_budgets(pilot: Any, app: LlmopsApp) -> BudgetsScreen:
    await wait_for(pilot, lambda: app.connection.state == "connected", "the console to connect")
    await pilot.press("l")
    screen: BudgetsScreen = await wait_for(
        pilot, lambda: isinstance(app.screen, BudgetsScreen) and app.screen.data and app.screen, "budgets"
    )
    return screen


def selected(screen: BudgetsScreen) -> tuple[str, str]:
    budget = screen.budgets[screen.query_one("#budgets-table").cursor_row]  # type: ignore[attr-defined]
    return budget["name"], budget["period"]


async def test_x_resets_the_selected_budget_after_a_confirmation(budgeted_daemon: DaemonProcess) -> None:
    url = budgeted_daemon.url
    assert ask(url, "bob") == 200
    before = standing(url, "user:bob", "month")
    assert before["spent_tokens"] > 0
    app = LlmopsApp(DaemonClient(url, backoff=(0.2, 0.5)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_budgets(pilot, app)
        assert [(b["name"], b["period"]) for b in screen.budgets][:3] == [
            ("user:alice", "day"), ("user:bob", "day"), ("user:bob", "month"),
        ]  # fmt: skip
        await pilot.press("down", "down")
        assert selected(screen) == ("user:bob", "month")

        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")
        assert standing(url, "user:bob", "month")["window_start"] == before["window_start"], "cancelled"

        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        after = await wait_for(
            pilot, lambda: (s := standing(url, "user:bob", "month"))["window_start"] > before["window_start"] and s,
            "the daemon to reset the budget",
        )  # fmt: skip
        assert after["spent_tokens"] == 0
        assert standing(url, "user:bob", "day")["spent_usd"] > 0, "only the selected period is reset"

        def shown() -> dict[str, Any]:
            return next(b for b in screen.budgets if (b["name"], b["period"]) == ("user:bob", "month"))

        await wait_for(pilot, lambda: shown()["spent_tokens"] == 0, "the view to refresh")
        assert selected(screen) == ("user:bob", "month"), "the cursor stays on the budget"
        assert any("Reset the monthly budget of user:bob" in n.message for n in app._notifications)


async def test_refused_calls_show_up_live(budgeted_daemon: DaemonProcess) -> None:
    url = budgeted_daemon.url
    app = LlmopsApp(DaemonClient(url, backoff=(0.2, 0.5)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_budgets(pilot, app)
        refused_before = sum(b["rate_limited"] for b in screen.data["rejections"])  # type: ignore[index]
        statuses = [ask(url, "carol") for _ in range(4)]  # her limit is 2 a minute
        assert statuses.count(429) >= 2
        await wait_for(
            pilot,
            lambda: sum(b["rate_limited"] for b in screen.data["rejections"]) >= refused_before + 2,  # type: ignore[index]
            "the refusals in the chart",
        )
        assert "user carol 2 req/min" in str(screen.query_one("#budgets-limits").render())


def test_the_recorded_answer_has_the_shape_of_a_real_one(budgeted_daemon: DaemonProcess) -> None:
    assert ask(budgeted_daemon.url, "alice") == 200
    real = httpx.get(f"{budgeted_daemon.url}/admin/budgets").json()
    recorded = shape(BUDGETS_ANSWER)
    assert shape(real["budgets"][0]) == recorded["budgets"][0]
    assert shape(real["rejections"]) == recorded["rejections"]
    assert shape(real["top_spenders"]) == recorded["top_spenders"]
    assert real.keys() == BUDGETS_ANSWER.keys()
    assert shape(real["caps"]).keys() == recorded["caps"].keys()
    assert shape(real["rate_limits"]).keys() == recorded["rate_limits"].keys()
