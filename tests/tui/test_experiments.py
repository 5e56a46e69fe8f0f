"""The experiments view: its cells from a recorded /admin/experiments answer, and against a real daemon:
an experiment started, ramped and promoted from the console after each confirmation (the daemon's
state, shares and label follow), a refusal (409) shown on screen; the recorded answers keeping the
daemon's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import Input, Static

from llmops_tui import experiment_cells as cells
from llmops_tui.app import LlmopsApp
from llmops_tui.client import DaemonClient
from llmops_tui.routing_cells import Palette
from llmops_tui.screens.experiments import ExperimentsScreen
from llmops_tui.widgets.ask_dialog import AskDialog
from llmops_tui.widgets.confirm import ConfirmDialog
from tests.daemon_process import DaemonProcess
from tests.fixtures.fake_openai import FakeOpenAI
from tests.tui import experiment_traffic as traffic
from tests.tui.conftest import live_profile, wait_for
from tests.tui.recorded_experiments import EXPERIMENTS_ANSWERS
from tests.tui.shapes import shape

PALETTE = Palette(("blue", "green"), "green", "yellow", "red", "dim")
DETAIL = EXPERIMENTS_ANSWERS["/admin/experiments/summary-wording"]
RESULTS = DETAIL["results"]


def plain(row: list[Text]) -> list[str]:
    return [cell.plain for cell in row]


def rendered(renderable: Any, width: int = 120) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# -- cells, from the recorded answer --------------------------------------------------------------------


def test_an_experiment_reads_as_its_state_and_split() -> None:
    listed = EXPERIMENTS_ANSWERS["/admin/experiments"]["data"][0]
    row = plain(cells.experiment_cells(listed, PALETTE))
    assert row == [
        "summary-wording",
        "summarize",
        "● A/B",
        "control 50% · concise 50%",
        "rating",
        "production",
        "-",
    ]
    shadow = {**listed, "state": "shadow", "shadow_share": 0.25}
    assert cells.split_text(shadow, PALETTE).plain == "control serves · 25% copied to concise"
    assert cells.split_text({**listed, "state": "draft"}, PALETTE).plain.endswith("once started")
    promoted = {**listed, "state": "promoted", "winner": "concise"}
    assert plain(cells.experiment_cells(promoted, PALETTE))[-1] == "concise"


def test_values_effects_and_intervals_read_per_metric() -> None:
    assert cells.value("rating", 4.6667) == "4.67" and cells.value("thumbs_up", 0.556) == "56%"
    assert cells.value("cost", 0.000036) == "$0.000036" and cells.value("latency", 1234.0) == "1.2s"
    assert cells.signed("rating", 1.714) == "+1.71" and cells.signed("thumbs_up", -0.125) == "-12pp"
    assert cells.signed("cost", -0.00003) == "-$0.000030" and cells.value("rating", None) == "-"
    assert cells.interval("rating", [2.7259, 3.1789]) == "[2.73, 3.18]"
    assert (
        cells.p_text(0.00000001) == "<0.0001"
        and cells.p_text(0.0067) == "0.0067"
        and cells.p_text(0.2) == "0.200"
    )
    assert cells.percent(0.125) == "12.5%" and cells.percent(0.75) == "75%"


def test_arms_side_by_side_with_intervals_and_sample_bars() -> None:
    text = rendered(cells.arms_table(DETAIL, PALETTE, 10))
    control, concise = RESULTS["arms"]
    rating = cells.comparison(RESULTS, "concise", "rating")
    assert rating is not None
    lo, hi = rating["interval_b"]
    assert f"{concise['mean_rating']:.2f} [{lo:.2f}, {hi:.2f}] n={rating['n_b']}" in text
    assert f"n={rating['n_a']}" in text, "the control's sample, from the same comparison"
    assert f"{rating['n_a']}/20" in text and f"{rating['n_b']}/20" in text
    assert "██████████" in text, "past the minimum sample: a full bar"
    assert text.splitlines()[0].split() == ["control", "v1", "·", "50%", "concise", "v2", "·", "50%"]


def test_comparisons_name_the_arms_and_the_verdict_says_who_wins_and_why() -> None:
    order = cells.arm_order(DETAIL)
    rows = [plain(cells.comparison_cells(RESULTS, c, PALETTE, order)) for c in RESULTS["comparisons"]]
    assert [row[1] for row in rows] == ["rating ◆", "thumbs_up", "error_rate", "cost", "latency", "cache_hit"]
    assert all(row[0] == "concise" for row in rows)
    assert rows[0][8].startswith("concise wins") and "always-valid" not in rows[0][8]
    assert rows[3][8].startswith("control wins"), "a wins: the control, by name"
    verdict = cells.verdict_markup(DETAIL)
    assert verdict.startswith("[b $success]✔ concise wins[/] on mean rating (1-5 stars): higher rating")
    undecided = {**DETAIL, "results": {**RESULTS, "winner": None, "comparisons": [
        {**c, "winner": None, "note": "not yet: 9 of 20 observations in arm a"} for c in RESULTS["comparisons"]
    ]}}  # fmt: skip
    assert cells.verdict_markup(undecided).startswith("[b $warning]not yet[/] on mean rating")
    assert "concise: 9 of 20 observations" in cells.verdict_markup(undecided)


def test_the_metric_over_time_and_the_transitions() -> None:
    rows = cells.series_rows(DETAIL, 40)
    assert [name for name, _, _ in rows] == ["control", "concise"]
    assert rows[1][2] == f"{RESULTS['arms'][1]['mean_rating']:.2f}"
    assert cells.spark([1.0, 3.0, 5.0, None], 1.0, 5.0) == "▁▄█·"
    assert cells.fold([1.0, 3.0, None, None, 5.0], 3) == [2.0, None, 5.0]
    start = plain(cells.transition_cells(DETAIL["transitions"][-1], PALETTE))
    assert start[1:5] == ["start", "draft → ab", "local", "control 50% · concise 50%"]


def test_the_lifecycle_allows_what_the_daemon_allows() -> None:
    assert cells.can("start", "draft") and cells.can("ramp", "ab") and not cells.can("ramp", "draft")
    assert not cells.can("promote", "stopped") and cells.can("stop", "shadow")
    assert cells.share_problem("75") is None and cells.share_problem("12.5%") is None
    assert cells.share_problem("100") and cells.share_problem("0") and cells.share_problem("half")


# -- a real daemon ------------------------------------------------------------------------------------


def test_the_recorded_answers_have_the_shape_of_real_ones(populated_daemon: DaemonProcess) -> None:
    for path, recorded in EXPERIMENTS_ANSWERS.items():
        real = httpx.get(populated_daemon.url + path).json()
        assert shape(real) == shape(recorded), path


@pytest.fixture
def draft_daemon(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    """Two versions of summarize and two draft experiments on it (only one may run at a time)."""
    folder = tmp_path_factory.mktemp("console-experiments")
    daemon = DaemonProcess.serving(folder, live_profile(fake_upstream.base_url))
    with httpx.Client(base_url=daemon.url, timeout=10) as http:
        traffic.push_prompts(http)
        traffic.create_experiment(http)
        traffic.create_experiment(http, name="summary-rival")
    yield daemon
    daemon.stop()


def experiment(url: str, name: str = "summary-wording") -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/admin/experiments/{name}").json()
    return answer


async def test_start_ramp_refuse_and_promote_from_the_console(draft_daemon: DaemonProcess) -> None:
    url = draft_daemon.url
    app = LlmopsApp(DaemonClient(url, backoff=(600.0,)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ExperimentsScreen) and app.screen, "view"
        )
        await wait_for(
            pilot, lambda: screen.data and screen.data["name"] == "summary-wording", "the experiment"
        )
        assert screen.check_action("lifecycle", ("ramp",)) is False, "a draft cannot ramp"

        async def confirmed(key: str, consequence: str) -> None:
            await pilot.press(key)
            dialog = await wait_for(
                pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen, "confirm"
            )
            assert consequence in dialog.consequence
            await pilot.press("y")

        await confirmed("a", "split control 50% · concise 50%")
        await wait_for(pilot, lambda: experiment(url)["state"] == "ab", "the A/B test to start")
        await wait_for(pilot, lambda: screen.data and screen.data["state"] == "ab", "the view to follow")

        await pilot.press("g")
        ask = await wait_for(
            pilot, lambda: isinstance(app.screen, AskDialog) and app.screen, "the share question"
        )
        assert ask.query_one(Input).value == "75", "the next step up from 50 %"
        await pilot.press("backspace", "backspace", *"25", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: experiment(url)["shares"]["concise"] == pytest.approx(0.25), "the ramp")
        assert experiment(url)["state"] == "rollout"

        await pilot.press("down")  # the rival: it cannot start while summary-wording runs
        await wait_for(pilot, lambda: screen.data and screen.data["name"] == "summary-rival", "the rival")
        await confirmed("a", "split")
        refusal = screen.query_one("#experiment-refusal", Static)
        await wait_for(pilot, lambda: refusal.display, "the refusal")
        assert "already running on prompt 'summarize'" in str(refusal.render())
        assert experiment(url, "summary-rival")["state"] == "draft"

        await pilot.press("up")
        await wait_for(pilot, lambda: screen.data and screen.data["name"] == "summary-wording", "back")
        assert not refusal.display, "a refusal is about the experiment it was for"
        await pilot.press("o")  # no winner without calls: the console asks which arm
        ask = await wait_for(pilot, lambda: isinstance(app.screen, AskDialog) and app.screen, "which arm")
        assert ask.query_one(Input).value == "concise"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: experiment(url)["state"] == "promoted", "the promotion")
        labels = httpx.get(f"{url}/admin/prompts/summarize").json()["labels"]
        assert labels["production"] == 2, "promote moved the label to the winner's version"
        await wait_for(pilot, lambda: "✔ promoted concise" in str(screen.query_one("#experiment-verdict").render()),
                       "the verdict")  # fmt: skip


async def test_no_experiments_says_how_to_create_one(live_daemon: DaemonProcess) -> None:
    app = LlmopsApp(DaemonClient(live_daemon.url, backoff=(600.0,)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("e")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ExperimentsScreen) and app.screen, "view"
        )
        await wait_for(pilot, lambda: screen.experiments is not None, "the answer")
        shown = str(screen.query_one("#experiments-empty", Static).render())
        assert "No experiments" in shown and "llmops experiment create" in shown
        assert screen.check_action("lifecycle", ("start",)) is None
