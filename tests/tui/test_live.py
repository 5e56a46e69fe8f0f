"""The console against a real daemon: live traces, filtering, rating, spend, reconnection."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import httpx
import pytest
from textual.widgets import Input, Static

from llmops_tui.app import LlmopsApp
from llmops_tui.client import DaemonClient
from llmops_tui.screens.spend import SpendScreen
from llmops_tui.screens.trace_detail import TraceDetailScreen
from llmops_tui.screens.traces import TracesScreen
from llmops_tui.widgets.rating import RatingDialog
from llmops_tui.widgets.trace_table import TraceTable, cell_text
from tests.daemon_process import DaemonProcess
from tests.tui.conftest import SEEDED_TRACES, chat, traces_api, wait_for

SIZE = (120, 40)


def make_app(daemon: DaemonProcess) -> LlmopsApp:
    return LlmopsApp(DaemonClient(daemon.url, backoff=(0.2, 0.5)))


def table(app: LlmopsApp) -> TraceTable:
    return app.screen.query_one(TraceTable)


def shown_ids(app: LlmopsApp) -> list[str]:
    return [row["id"] for row in table(app).rows]


async def feedback_of(url: str, trace_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url) as http:
        feedback: list[dict[str, Any]] = (await http.get(f"/admin/traces/{trace_id}")).json()["feedback"]
        return feedback


async def open_traces(pilot: Any, app: LlmopsApp) -> None:
    await wait_for(pilot, lambda: app.connection.state == "connected", "the console to connect")
    await wait_for(
        pilot, lambda: isinstance(app.screen, TracesScreen) and app.screen.loaded, "traces to load"
    )


async def test_traces_appear_live_as_calls_go_through_the_gateway(live_daemon: DaemonProcess) -> None:
    app = make_app(live_daemon)
    async with app.run_test(size=SIZE) as pilot:
        await open_traces(pilot, app)
        marker = uuid.uuid4().hex
        ids = [
            await chat(live_daemon.url, f"hello {marker}"),
            await chat(live_daemon.url, f"streamed {marker}", stream=True),
            await chat(live_daemon.url, f"mini {marker}", model="fake-mini"),
        ]
        await wait_for(pilot, lambda: set(ids) <= set(shown_ids(app)), "the three calls in the table")
        assert shown_ids(app)[:3] == ids[::-1], "newest first"
        streamed = next(row for row in table(app).rows if row["id"] == ids[1])
        assert streamed["stream"] and streamed["ttft_ms"] is not None
        assert cell_text("model", streamed, None) == "fake"


async def test_filters_are_applied_by_the_daemon_and_to_live_traces(live_daemon: DaemonProcess) -> None:
    marker = uuid.uuid4().hex
    mini = await chat(live_daemon.url, f"filter me {marker}", model="fake-mini")
    other = await chat(live_daemon.url, f"not me {marker}")
    app = make_app(live_daemon)
    async with app.run_test(size=SIZE) as pilot:
        await open_traces(pilot, app)
        await pilot.press("slash")
        assert app.screen.query_one("#filter", Input).has_focus
        await pilot.press(*"model:fake-mini", "enter")
        await wait_for(
            pilot, lambda: mini in shown_ids(app) and other not in shown_ids(app), "the model filter"
        )
        assert all(row["served_model"] == "fake-mini" for row in table(app).rows)

        later_other = await chat(live_daemon.url, "live and not mini")
        later_mini = await chat(live_daemon.url, "live and mini", model="fake-mini")
        # Events arrive in order: once the later call shows, the earlier one has been handled too.
        await wait_for(pilot, lambda: later_mini in shown_ids(app), "a live trace that matches")
        assert later_other not in shown_ids(app)

        await pilot.press("slash", "ctrl+u", *marker, "enter")
        await wait_for(pilot, lambda: set(shown_ids(app)) == {mini, other}, "the free-text filter")
        info = str(app.screen.query_one("#traces-info", Static).render())
        assert marker in info

        await pilot.press("escape")
        await wait_for(pilot, lambda: {later_mini, later_other} <= set(shown_ids(app)), "the cleared filter")


async def test_rating_from_the_table_is_stored_and_shown(live_daemon: DaemonProcess) -> None:
    app = make_app(live_daemon)
    async with app.run_test(size=SIZE) as pilot:
        await open_traces(pilot, app)
        older = await chat(live_daemon.url, "rate the older one")
        newer = await chat(live_daemon.url, "not this one")
        await wait_for(pilot, lambda: shown_ids(app)[:2] == [newer, older], "both calls at the top")
        await pilot.press("down", "4")
        await wait_for(pilot, lambda: app.ratings.get(older) == 4, "the rating to be saved")
        assert [f["score"] for f in await feedback_of(live_daemon.url, older)] == [4]
        assert await feedback_of(live_daemon.url, newer) == []
        assert cell_text("rating", table(app).rows[1], app.ratings.get(older)) == "★4"
        await pilot.press("minus")
        await wait_for(pilot, lambda: app.ratings.get(older) == "down", "the thumbs down")
        saved = await feedback_of(live_daemon.url, older)
        assert [(f["kind"], f["score"]) for f in saved] == [("thumbs", -1)]  # one rating a person: replaced
        assert cell_text("rating", table(app).rows[1], app.ratings.get(older)) == "▼"


async def test_rating_with_a_comment_from_the_detail(live_daemon: DaemonProcess) -> None:
    trace_id = await chat(live_daemon.url, "Explain **markdown** in the detail view")
    app = make_app(live_daemon)
    async with app.run_test(size=SIZE) as pilot:
        await open_traces(pilot, app)
        await wait_for(pilot, lambda: shown_ids(app)[:1] == [trace_id], "the call at the top")
        await pilot.press("enter")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, TraceDetailScreen) and app.screen, "detail"
        )
        await wait_for(pilot, lambda: screen.trace is not None, "the trace to load")
        assert screen.trace["request"]["messages"][0]["content"] == "Explain **markdown** in the detail view"
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, RatingDialog), "the rating dialog")
        await pilot.press("2", *"too vague", "enter")
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")
        await wait_for(pilot, lambda: app.ratings.get(trace_id) == 2, "the rating to be saved")
        stored = await feedback_of(live_daemon.url, trace_id)
        assert [(f["score"], f["comment"], f["rated_by"]) for f in stored] == [(2, "too vague", "local")]
        feedback = screen.query_one("#detail-feedback", Static)
        await wait_for(pilot, lambda: "too vague" in str(feedback.render()), "the comment in the detail")
        await pilot.press("escape")
        assert isinstance(app.screen, TracesScreen)


async def test_spend_equals_the_sums_over_the_trace_rows(live_daemon: DaemonProcess) -> None:
    for i in range(3):
        await chat(live_daemon.url, f"spend {i} " * (i + 1), model="fake-mini" if i else "fake")
    app = make_app(live_daemon)
    async with app.run_test(size=SIZE) as pilot:
        await open_traces(pilot, app)
        await pilot.press("s")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, SpendScreen) and app.screen, "spend")
        for window in ("today", "7d", "30d"):
            await wait_for(
                pilot, lambda w=window: screen.data and screen.data["window"] == w, f"window {window}"
            )
            data = screen.data
            rows = await traces_api(live_daemon.url, since=repr(data["since"]), until=repr(data["until"]))
            totals = data["totals"]
            assert totals["requests"] == len(rows) > 0
            assert totals["prompt_tokens"] == sum(r["prompt_tokens"] for r in rows)
            assert totals["completion_tokens"] == sum(r["completion_tokens"] for r in rows)
            assert math.isclose(totals["cost_usd"], sum(r["cost_usd"] for r in rows), rel_tol=1e-9)
            by_model: dict[str, float] = {}
            for r in rows:
                by_model[r["served_model"]] = by_model.get(r["served_model"], 0) + r["cost_usd"]
            shown = {g["key"]: g["cost_usd"] for g in data["groups"]}
            assert shown.keys() == by_model.keys()
            assert all(math.isclose(shown[k], by_model[k], rel_tol=1e-9) for k in by_model)
            assert sum(s["requests"] for s in data["series"]) == len(rows)
            await pilot.press("w")
        await pilot.press("g")
        await wait_for(pilot, lambda: screen.data["group_by"] == "user", "group by user")
        assert [g["key"] for g in screen.data["groups"]] == ["local"]


async def test_the_console_reconnects_after_the_daemon_restarts(restartable_daemon: DaemonProcess) -> None:
    daemon = restartable_daemon
    before = await chat(daemon.url, "before the restart")
    app = make_app(daemon)
    async with app.run_test(size=SIZE) as pilot:
        await open_traces(pilot, app)
        await wait_for(pilot, lambda: before in shown_ids(app), "the first call")
        banner = app.screen.query_one("#banner", Static)
        assert not banner.display

        # SIGKILL: the daemon vanishes mid-stream. (A SIGTERM'd daemon waits for open event streams
        # to end, up to its 30 s graceful-shutdown limit.)
        await asyncio.to_thread(daemon.kill)
        await wait_for(pilot, lambda: app.connection.state == "down", "the disconnect to show")
        await wait_for(pilot, lambda: banner.display, "the banner")
        assert "Daemon unreachable" in str(banner.render())
        await wait_for(pilot, lambda: app.connection.attempt >= 2, "a second attempt")

        await asyncio.to_thread(daemon.start)  # same port, same database
        await wait_for(pilot, lambda: app.connection.state == "connected", "the reconnection", timeout=15)
        await wait_for(pilot, lambda: not banner.display, "the banner to go")
        after = await chat(daemon.url, "after the restart")
        await wait_for(pilot, lambda: after in shown_ids(app), "a live trace after the restart")
        assert before in shown_ids(app)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_screen_opens_at_small_and_large_sizes(
    seeded_daemon: DaemonProcess, size: tuple[int, int]
) -> None:
    app = make_app(seeded_daemon)
    async with app.run_test(size=size) as pilot:
        await open_traces(pilot, app)
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: isinstance(app.screen, TraceDetailScreen) and app.screen.trace, "detail"
        )
        await pilot.press("escape", "s")
        await wait_for(pilot, lambda: isinstance(app.screen, SpendScreen) and app.screen.data, "spend")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HelpScreen", "help")
        await pilot.press("escape", "t")
        assert isinstance(app.screen, TracesScreen)


async def test_paging_back_loads_older_traces_from_the_daemon(seeded_daemon: DaemonProcess) -> None:
    app = make_app(seeded_daemon)
    async with app.run_test(size=SIZE) as pilot:
        await open_traces(pilot, app)
        assert len(shown_ids(app)) == 200
        for _ in range(3):
            await pilot.press("end")
            await pilot.pause(0.2)
        await wait_for(pilot, lambda: len(shown_ids(app)) == SEEDED_TRACES, "every page")
        assert app.screen.next_cursor is None
        seqs = [row["seq"] for row in table(app).rows]
        assert len(set(seqs)) == SEEDED_TRACES


async def test_the_mouse_selects_and_opens_traces(seeded_daemon: DaemonProcess) -> None:
    app = make_app(seeded_daemon)
    async with app.run_test(size=SIZE) as pilot:
        await open_traces(pilot, app)
        await pilot.click(TraceTable, offset=(10, 4))  # the header is line 0: the fourth trace
        assert table(app).cursor == 3
        second = table(app).rows[1]["id"]
        await pilot.click(TraceTable, offset=(10, 2), times=2)
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, TraceDetailScreen) and app.screen, "detail"
        )
        assert screen.trace_id == second
        await pilot.click("Footer", offset=(1, 0))  # the footer's first key: esc Back
        await wait_for(pilot, lambda: isinstance(app.screen, TracesScreen), "back on the traces")


async def test_the_cache_view_evicts_and_marks_bad_hits(
    new_daemon: DaemonProcess, fake_upstream: Any
) -> None:
    from llmops_tui.screens.cache import CacheScreen
    from tests.tui.conftest import live_profile

    new_daemon.profile.write_text(live_profile(fake_upstream.base_url) + "cache: {scope: user}\n")
    new_daemon.start()
    for question in ("first question", "first question", "second question", "second question"):
        await chat(new_daemon.url, question)
    app = make_app(new_daemon)
    async with app.run_test(size=SIZE) as pilot:
        await open_traces(pilot, app)
        await pilot.press("h")
        await wait_for(
            pilot, lambda: isinstance(app.screen, CacheScreen) and app.screen.data, "the cache view"
        )
        screen = app.screen
        assert isinstance(screen, CacheScreen)
        assert [hit["question"] for hit in screen.hits] == ["second question", "first question"]
        await pilot.press("b")  # the highlighted hit, the newest: "second question" was answered wrongly
        await wait_for(pilot, lambda: screen.data and screen.data["bad_hits"], "the bad hit to be recorded")
        assert screen.data["bad_hits"][0]["question"] == "second question"
        assert screen.data["entries"] == 1
        await pilot.press("down", "x")  # evict the entry of "first question"
        await wait_for(pilot, lambda: screen.data and screen.data["entries"] == 0, "the eviction")
    async with httpx.AsyncClient(base_url=new_daemon.url) as http:
        again = await http.post(
            "/v1/chat/completions",
            json={"model": "fake", "messages": [{"role": "user", "content": "first question"}]},
        )
    assert again.headers["x-llmops-cache"] == "miss"
