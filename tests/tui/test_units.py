"""The console's pure parts and its client, without a daemon."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from textual.app import App, ComposeResult
from textual.message import Message

from daemon.core.spend import DAY, fill_series, savings, spend_window, start_of_day
from llmops_tui import format as fmt
from llmops_tui.client import DaemonClient, sse_events
from llmops_tui.messages import DaemonConnected, FeedbackReceived, TracesReceived
from llmops_tui.widgets.spend_chart import axis_labels, bar_rows, merge
from llmops_tui.widgets.trace_table import MAX_ROWS, TraceTable


def trace(seq: int, **extra: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "id": f"tr_{seq}",
        "ts": 1_768_489_200.0 + seq,
        "status": "ok",
        "http_status": 200,
        "served_model": "m",
        "latency_ms": 100.0 + seq,
        **extra,
    }


# -- formatting and filters ----------------------------------------------------------------------------


def test_filter_text_becomes_query_parameters() -> None:
    assert fmt.parse_filter('model:gpt-4o user:alice status:error "refund policy" late') == {
        "model": "gpt-4o",
        "user": "alice",
        "status": "error",
        "q": "refund policy late",
    }
    assert fmt.parse_filter("url:http://x") == {"q": "url:http://x"}  # unknown fields are text
    assert fmt.parse_filter('unbalanced "quote') == {"q": 'unbalanced "quote'}
    assert fmt.describe_filter({"model": "a", "q": "b c"}) == 'model:a "b c"'


def test_live_traces_match_the_daemon_filter_semantics() -> None:
    t = {"served_model": "local", "requested_model": "alias", "user": "bob", "status": "ok"}
    assert fmt.matches(t, {"model": "alias"}) and fmt.matches(t, {"model": "local", "user": "bob"})
    assert not fmt.matches(t, {"status": "error"}) and not fmt.matches(t, {"model": "other"})


def test_numbers_read_well() -> None:
    usd = [fmt.usd(v) for v in (0, 0.000031, 0.0042, 0.0179, 0.5, 3.14159, 1234.5)]
    assert usd == ["$0", "$0.000031", "$0.0042", "$0.018", "$0.50", "$3.14", "$1,234"]
    assert [fmt.ms(v) for v in (None, 12.4, 2600, 125_000)] == ["-", "12ms", "2.6s", "2.1m"]
    assert [fmt.score(v) for v in (None, "down", "up", 4)] == ["", "▼", "▲", "★4"]
    assert fmt.rating_of({"score": 1, "kind": "thumbs"}) == "up"
    assert fmt.rating_of({"score": 1, "kind": "stars"}) == 1.0
    assert fmt.rating_of({"rating": None}, "rating", "rating_kind") is None
    assert [fmt.slowness(v) for v in (100, 2500, 11_000)] == [None, "slow", "very-slow"]


# -- spend windows (daemon.core.spend: pure) -----------------------------------------------------------


def test_spend_windows_are_calendar_days_in_the_viewers_zone() -> None:
    now = 1_768_489_200.0  # 2026-01-15 15:00 UTC
    assert start_of_day(now, 0) == 1_768_435_200.0
    assert start_of_day(now, 10 * 3600) == 1_768_435_200.0 + 14 * 3600  # 16 Jan 00:00 in UTC+10
    india = spend_window("today", now, 5 * 3600 + 1800)  # summed by whole hours: from 00:30 local
    assert (india.since, india.utc_offset) == (1_768_435_200.0 - 5 * 3600, 5 * 3600)
    week = spend_window("7d", now, 0)
    assert (week.since, week.until, week.bucket_seconds) == (
        1_768_435_200.0 - 6 * DAY,
        1_768_435_200.0 + DAY,
        21600,
    )
    with pytest.raises(KeyError):
        spend_window("1y", now, 0)


def test_spend_series_has_every_bucket() -> None:
    today = spend_window("today", 1_768_489_200.0, 0)
    row = {
        "start": today.since + 3600,
        "requests": 2,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "cost_usd": 0.5,
        "shadow_cost_usd": 0,
        **dict.fromkeys(("saved_usd", "saved_tokens", "cache_lookups", "cache_hits", "semantic_hits"), 0),
    }
    series = fill_series([row], today)
    assert len(series) == 24 and series[1]["requests"] == 2 and series[0]["requests"] == 0
    assert savings(
        {"shadow_cost_usd": 0.3, "local_cost_usd": 0.1, "saved_usd": 0.05, "saved_tokens": 40}
    ) == {
        "local_serving_usd": pytest.approx(0.2),
        "cache_usd": 0.05,
        "cache_tokens": 40,
    }


def test_the_cache_series_splits_its_hit_rate_into_exact_and_semantic() -> None:
    from llmops_tui.screens.cache import with_hit_rate

    busy = {"start": 0, "cache_lookups": 8, "cache_hits": 6, "semantic_hits": 2}
    idle = {"start": 3600, "cache_lookups": 0, "cache_hits": 0, "semantic_hits": 0}
    rates = [
        (row["hit_rate"], row["exact_hit_rate"], row["semantic_hit_rate"])
        for row in with_hit_rate([busy, idle])
    ]
    assert rates == [(75.0, 50.0, 25.0), (0.0, 0.0, 0.0)]


# -- the chart ------------------------------------------------------------------------------------------


def test_bars_scale_to_the_largest_and_merge_to_fit() -> None:
    assert bar_rows([0, 1, 2], 2) == ["  █", " ██"]
    assert merge([1, 2, 3, 4, 5], 2) == [6, 9]
    assert axis_labels(["00:00", "06:00", "12:00"], 3, 2) == "  00:00 12:00"


# -- the table -------------------------------------------------------------------------------------------


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TraceTable({}, id="t")


async def test_live_rows_insert_on_top_and_the_highlighted_trace_stays_put() -> None:
    app = TableApp()
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(TraceTable)
        table.replace([trace(i) for i in range(30, 0, -1)])
        await pilot.press("down", "down")
        assert table.current and table.current["id"] == "tr_28"
        table.add_newer([trace(31), trace(32), trace(31)])
        assert [r["id"] for r in table.rows[:3]] == ["tr_32", "tr_31", "tr_30"]
        assert table.current["id"] == "tr_28"  # the cursor followed its trace
        await pilot.press("home")
        table.add_newer([trace(33)])
        assert table.cursor == 0  # at the top, new traces take the cursor's place
        table.sort = "latency"
        assert table.rows[0]["id"] == "tr_33" and table.rows[-1]["id"] == "tr_1"


async def test_the_table_keeps_at_most_max_rows_dropping_the_oldest() -> None:
    app = TableApp()
    async with app.run_test(size=(100, 20)):
        table = app.query_one(TraceTable)
        for start in range(0, MAX_ROWS + 500, 250):
            table.add_newer([trace(s) for s in range(start + 1, start + 251)])
        assert len(table.rows) == MAX_ROWS
        assert table.rows[0]["seq"] == MAX_ROWS + 500 and table.rows[-1]["seq"] == 501


# -- the client --------------------------------------------------------------------------------------------


async def test_sse_lines_become_events() -> None:
    async def lines() -> Any:
        for line in [": connected", "", "event: trace", 'data: {"a": 1}', "", ": keep-alive", "data: x", ""]:
            yield line

    events = [e async for e in sse_events(lines())]
    assert events == [
        ("comment", "connected"),
        ("trace", '{"a": 1}'),
        ("comment", "keep-alive"),
        ("message", "x"),
    ]


class Collector:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    def post_message(self, message: Message) -> bool:
        self.messages.append(message)
        return True


async def test_the_client_batches_a_fast_stream_into_few_messages() -> None:
    """1,000 traces arriving over ~0.3 s reach the app as a handful of TracesReceived, in order."""

    async def stream() -> Any:
        yield b": connected\n\n"
        for i in range(1000):
            yield b'event: trace\ndata: {"seq": %d, "id": "tr_%d"}\n\n' % (i, i)
            if i % 100 == 99:
                await asyncio.sleep(0.03)
        yield b'event: feedback\ndata: {"trace_id": "tr_3", "score": 5}\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/admin/status":
            return httpx.Response(200, json={"profile": {"name": "p"}, "models": []})
        return httpx.Response(200, content=stream(), headers={"content-type": "text/event-stream"})

    client = DaemonClient("http://daemon", transport=httpx.MockTransport(handler))
    target = Collector()
    listening = asyncio.create_task(client.listen(target))
    deadline = asyncio.get_running_loop().time() + 10
    while not any(isinstance(m, FeedbackReceived) for m in target.messages):
        assert asyncio.get_running_loop().time() < deadline, "the feedback event never arrived"
        await asyncio.sleep(0.01)
    listening.cancel()
    await client.aclose()
    batches = [m for m in target.messages if isinstance(m, TracesReceived)]
    assert isinstance(target.messages[0], DaemonConnected)
    assert [t["seq"] for b in batches for t in b.traces] == list(range(1000))
    assert len(batches) <= 8


def test_the_status_line_shows_a_model_converting_then_forgets_it() -> None:
    from llmops_tui.state import Connection
    from llmops_tui.widgets.status_bar import status_text

    status = {"profile": {"name": "default"}, "auth": "local",
              "models": [{"name": "local-smol", "activity": None}, {"name": "minilm", "activity": "converting"}]}  # fmt: skip
    conn = Connection("http://daemon").up(status)
    assert "converting minilm" in status_text(conn, 0.0)
    loading = conn.model({"name": "minilm", "activity": "loading"})
    assert "loading minilm" in status_text(loading, 0.0) and "converting" not in status_text(loading, 0.0)
    done = loading.model({"name": "minilm", "activity": None, "loaded": True})
    assert "minilm" not in status_text(done, 0.0) and "2 models" in status_text(done, 0.0)


# -- budgets --------------------------------------------------------------------------------------------


def test_a_usage_bar_shows_spent_then_reserved_then_what_is_left() -> None:
    from llmops_tui.widgets.usage_bar import BarColours, usage_bar

    colours = BarColours("green", "green", "dim")
    assert usage_bar(4.1, 0.06, 5.0, 10, colours).plain == "████████▎▓"
    assert usage_bar(0.0001, 0, 5.0, 10, colours).plain == "▏░░░░░░░░░"  # a sliver is not nothing
    assert usage_bar(0, 2.5, 5.0, 10, colours).plain == "▓▓▓▓▓░░░░░"
    assert usage_bar(7.0, 1.0, 5.0, 10, colours).plain == "██████████"  # past the limit: full
    assert usage_bar(0, 0, 5.0, 10, colours).plain == "░" * 10


def test_a_budgets_window_and_reset_read_as_people_say_them() -> None:
    from llmops_tui.budget_cells import limits_text, resets_text, window_text, zone
    from tests.tui.recorded_budgets import BUDGETS

    paris = zone("Europe/Paris")
    by_name = {(b["name"], b["period"]): b for b in BUDGETS}
    assert window_text(by_name["user:alice", "day"], paris) == "Thu 15 Jan"
    assert window_text(by_name["team:research", "week"], paris) == "week of Mon 12 Jan"
    assert window_text(by_name["user:bob", "month"], paris) == "January 2026"
    assert window_text(by_name["key:ci-bot", "total"], paris) == "all time"
    assert window_text(by_name["team:support", "day"], paris) == "since Thu 15:30"  # reset by hand
    assert resets_text(by_name["user:alice", "day"]) == "in 8 h 0 min"
    assert resets_text(by_name["key:ci-bot", "total"]) == "never"
    assert [fmt.duration(s) for s in (42, 600, 11_520, 1_411_200)] == [
        "42 s",
        "10 min",
        "3 h 12 min",
        "16 d 8 h",
    ]
    assert zone("Mars/Olympus") is None  # an unknown zone: this machine's
    rates = {"default": None, "users": {"carol": {"requests_per_minute": 3, "tokens_per_minute": None}},
             "keys": {"ci": {"requests_per_minute": None, "tokens_per_minute": 50_000}}, "teams": {}}  # fmt: skip
    assert limits_text(rates, None) == "rate limits: user carol 3 req/min · key ci 50.0k tok/min"
    assert limits_text(None, {"default_max_tokens": 1024, "models": {"big": 4096}}) == (
        "rate limits: none   max_tokens caps: default 1024 tok · model big 4096 tok"
    )


def test_the_budget_table_adds_window_and_source_only_where_they_fit() -> None:
    from llmops_tui.budget_cells import Palette, table_layout, zone
    from tests.tui.recorded_budgets import BUDGETS

    palette = Palette("green", "yellow", "red", "dim")

    def layout(room: int) -> tuple[list[str], list[int] | None]:
        headers, _, widths = table_layout(BUDGETS, zone("Europe/Paris"), palette, room)
        return [h.plain for h in headers], widths

    wide, widths = layout(158)
    assert (
        wide[-3:] == ["window", "resets", "source"]
        and widths
        and widths[-1] == len("api (over the profile's $1.00)")
    )
    medium, widths = layout(118)
    assert medium[-2:] == ["resets", "source"] and widths and 12 <= widths[-1] < 30  # the source cut to fit
    assert layout(98) == (["budget", "per", "used", "spent", "limit", "left", "resets"], None)
