"""The prompts view: its cells from recorded /admin/prompts answers, and against a real daemon with two
versions of a prompt: a label moved to the selected version after the dialogs (the daemon's label
moves); the recorded answers keeping the daemon's shape."""

from __future__ import annotations

import httpx
from rich.text import Text
from textual.widgets import DataTable, Input, Static

from llmops_tui import prompt_cells as cells
from llmops_tui.app import LlmopsApp
from llmops_tui.client import DaemonClient
from llmops_tui.routing_cells import Palette
from llmops_tui.screens.prompts import PromptsScreen, label_problem
from llmops_tui.widgets.ask_dialog import AskDialog
from llmops_tui.widgets.confirm import ConfirmDialog
from tests.daemon_process import DaemonProcess
from tests.tui.conftest import wait_for
from tests.tui.recorded_prompts import PROMPTS_ANSWERS
from tests.tui.shapes import shape

PALETTE = Palette(("blue",), "green", "yellow", "red", "dim")
SUMMARIZE = PROMPTS_ANSWERS["/admin/prompts/summarize"]


def plain(row: list[Text]) -> list[str]:
    return [cell.plain for cell in row]


# -- cells, from the recorded answers ---------------------------------------------------------------


def test_a_prompt_reads_as_its_latest_version_and_where_its_labels_point() -> None:
    listed = {p["name"]: p for p in PROMPTS_ANSWERS["/admin/prompts"]["data"]}
    assert plain(cells.prompt_cells(listed["summarize"], PALETTE)) == [
        "summarize", "v2", "2", "production→v1 staging→v2", "A short summary of a support ticket",
    ]  # fmt: skip
    assert plain(cells.prompt_cells(listed["classify"], PALETTE))[3] == "no labels", "latest is implicit"


def test_a_version_reads_as_its_labels_use_and_ratings() -> None:
    v2, v1 = (plain(cells.version_cells(v, SUMMARIZE["labels"], PALETTE)) for v in SUMMARIZE["versions"])
    assert v2[0] == "v2" and v2[3] == "staging" and v1[3] == "production"
    usage = SUMMARIZE["versions"][0]["usage"]
    assert v2[4] == str(usage["calls"]) and v2[5] == "0"
    assert v2[6] == f"★{usage['mean_stars']:.2f} ({usage['stars']})"
    assert v2[7] == f"{usage['thumbs_up_share']:.0%} ({usage['thumbs']})"
    assert cells.stars(None) == cells.thumbs(None) == "-", "a version never called"
    unused = {**SUMMARIZE["versions"][1], "usage": None}
    assert plain(cells.version_cells(unused, SUMMARIZE["labels"], PALETTE))[4:9] == ["0", "0", "-", "-", "$0"]


def test_labels_on_a_version_and_what_moving_one_does() -> None:
    labels = {"latest": 3, "production": 2, "staging": 3}
    assert cells.labels_on(labels, 3) == ["staging", "latest"]
    assert cells.labels_on(labels, 1) == []
    back = cells.label_move_consequence("summarize", "production", 1, labels)
    assert "version 1 instead of 2" in back and "a rollback" in back and "naming summarize alone" in back
    assert "a release" in cells.label_move_consequence("summarize", "production", 3, labels)
    assert "nothing changes" in cells.label_move_consequence("summarize", "staging", 3, labels)
    assert "new label" in cells.label_move_consequence("summarize", "canary", 3, labels)


def test_label_names_are_checked_before_the_daemon_is_asked() -> None:
    assert label_problem("production") is None and label_problem("canary-2.1") is None
    assert (
        label_problem("") and label_problem("latest") and label_problem("no spaces") and label_problem("-x")
    )


def test_a_diff_colours_what_changed() -> None:
    diff = PROMPTS_ANSWERS["/admin/prompts/summarize/diff?from=1&to=2"]["diff"]
    text = cells.diff_text(diff, PALETTE)
    styles = {str(span.style) for span in text.spans}
    assert {"green", "red", "bold"} <= styles
    assert text.plain.startswith("--- summarize@1\n+++ summarize@2")
    assert cells.previous_version(SUMMARIZE["versions"], 2) == 1
    assert cells.previous_version(SUMMARIZE["versions"], 1) is None


# -- a real daemon ------------------------------------------------------------------------------------


def test_the_recorded_answers_have_the_shape_of_real_ones(populated_daemon: DaemonProcess) -> None:
    for path, recorded in PROMPTS_ANSWERS.items():
        real = httpx.get(populated_daemon.url + path).json()
        assert shape(real) == shape(recorded), path


def labels_of(url: str, name: str) -> dict[str, int]:
    labels: dict[str, int] = httpx.get(f"{url}/admin/prompts/{name}").json()["labels"]
    return labels


async def test_moving_a_label_asks_which_then_confirms_then_moves_it(populated_daemon: DaemonProcess) -> None:
    url = populated_daemon.url
    assert labels_of(url, "summarize")["production"] == 1
    app = LlmopsApp(DaemonClient(url, backoff=(600.0,)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, PromptsScreen) and app.screen, "prompts"
        )
        await wait_for(pilot, lambda: screen.prompts, "the prompts")
        await pilot.press("down", "enter")  # summarize, then its versions
        await wait_for(pilot, lambda: screen.detail and screen.detail["name"] == "summarize", "its versions")
        versions = screen.query_one("#prompts-versions", DataTable)
        assert versions.has_focus and screen.version == 2, "the newest version first"
        await wait_for(pilot, lambda: "name: summarize" in screen.shown_text,
                       "v2's YAML")  # fmt: skip
        await pilot.press("d")
        await wait_for(pilot, lambda: "+++ summarize@2" in screen.shown_text,
                       "the diff against v1")  # fmt: skip

        await pilot.press("m")
        ask = await wait_for(
            pilot, lambda: isinstance(app.screen, AskDialog) and app.screen, "the label question"
        )
        assert ask.query_one(Input).value == "production"
        await pilot.press("enter")
        confirm = await wait_for(
            pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen, "confirm"
        )
        assert "version 2 instead of 1" in confirm.consequence and "a release" in confirm.consequence
        await pilot.press("y")
        await wait_for(pilot, lambda: labels_of(url, "summarize")["production"] == 2, "the label to move")
        await wait_for(
            pilot, lambda: screen.detail and screen.detail["labels"]["production"] == 2, "the view"
        )

        await pilot.press("down", "m")  # and back: a rollback, cancelled this time
        await wait_for(pilot, lambda: isinstance(app.screen, AskDialog), "the label question")
        await pilot.press("enter")
        confirm = await wait_for(
            pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen, "confirm"
        )
        assert "a rollback" in confirm.consequence
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")
        assert labels_of(url, "summarize")["production"] == 2, "cancelled: nothing moved"


async def test_no_prompts_says_how_to_add_one(live_daemon: DaemonProcess) -> None:
    app = LlmopsApp(DaemonClient(live_daemon.url, backoff=(600.0,)))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, PromptsScreen) and app.screen, "prompts"
        )
        await wait_for(pilot, lambda: screen.prompts is not None, "the answer")
        shown = str(screen.query_one("#prompts-empty", Static).render())
        assert "No prompts yet" in shown and "llmops prompt push FILE" in shown
        assert not screen.query_one("#prompts-list").display
        assert screen.check_action("move_label", ()) is None
