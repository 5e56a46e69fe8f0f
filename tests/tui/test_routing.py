"""The routing view: its cells and bars from recorded /admin/routing data, and against a real daemon
with routes, a model that cannot be reached (its circuit opens) and a shadow model; the recorded
answer of the snapshots keeping the daemon's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rich.text import Text
from textual.widgets import DataTable, Static

from llmops_tui import routing_cells as cells
from llmops_tui.app import LlmopsApp
from llmops_tui.client import DaemonClient
from llmops_tui.screens.routing import RoutingScreen
from llmops_tui.screens.trace_detail import path_table
from llmops_tui.widgets.shadow_dialog import ShadowDialog
from tests.daemon_process import DaemonProcess
from tests.fixtures.fake_openai import FakeOpenAI, free_port
from tests.tui.conftest import live_profile, wait_for
from tests.tui.recorded_routing import ROUTING_ANSWER
from tests.tui.shapes import shape

PALETTE = cells.Palette(("blue", "green", "yellow"), "green", "yellow", "red", "dim")
SIZE = (120, 40)


def route_named(name: str) -> dict[str, Any]:
    return next(r for r in ROUTING_ANSWER["routes"] if r["name"] == name)


def plain(row: list[Text]) -> list[str]:
    return [cell.plain for cell in row]


# -- cells, from the recorded answer --------------------------------------------------------------------


def test_a_route_reads_as_its_calls_cost_rates_and_split() -> None:
    order = cells.model_order(ROUTING_ANSWER["routes"])
    assert order[:3] == ["cheap", "mid", "strong"]
    auto = plain(cells.route_cells(route_named("auto"), PALETTE, order))
    assert auto == [
        "auto",
        "complexity",
        "109",
        "1",
        "$0.041",
        "-",
        "2% (2)",
        "cheap 64% · mid 25% · strong 11%",
    ]
    careful = plain(cells.route_cells(route_named("careful"), PALETTE, order))
    assert careful[5:7] == ["37% (10)", "0%"], "escalation is a cascade's"
    assert plain(cells.route_cells(route_named("topic"), PALETTE, order))[2:] == [
        "0",
        "0",
        "$0",
        "-",
        "-",
        "no calls",
    ]


def test_shares_and_bars_follow_the_calls() -> None:
    auto = route_named("auto")
    assert cells.shares(auto["tiers"]) == [
        ("cheap", 70, 70 / 109),
        ("balanced", 27, 27 / 109),
        ("best", 12, 12 / 109),
    ]
    lines = cells.share_lines(auto["models"], 10, PALETTE, cells.model_order(ROUTING_ANSWER["routes"]))
    assert [(name, bar.plain, figures) for name, bar, figures in lines] == [
        ("cheap", "██████▍░░░", " 64%    70"),
        ("mid", "██▌░░░░░░░", " 25%    27"),
        ("strong", "█▏░░░░░░░░", " 11%    12"),
    ]
    assert lines[0][1].spans[0].style == "blue" and lines[1][1].spans[0].style == "green"


def test_the_shares_over_time_are_per_bucket_with_gaps_where_the_route_had_no_call() -> None:
    rows = cells.timeline(ROUTING_ANSWER, "careful")
    assert list(rows) == ["cheap", "strong"]
    assert rows["cheap"][8:15] == [None, 6 / 7, 5 / 8, None, None, 2 / 6, 4 / 6]
    assert cells.spark(rows["cheap"][8:15]) == "·▇▅··▃▅"
    assert cells.spark([0.0, 0.01, 1.0, None]) == " ▁█·"
    assert cells.fold([1.0, None, 0.5, 0.0, None, None], 3) == [1.0, 0.25, None]
    assert cells.bucket_count(ROUTING_ANSWER) == 24


def test_an_open_circuit_stands_out_and_counts_down_to_its_probe() -> None:
    by_model = {b["model"]: b for b in ROUTING_ANSWER["breakers"]}
    flaky = cells.breaker_cells(by_model["flaky"], PALETTE)
    assert plain(flaky) == ["flaky", "openai", "✖ OPEN", "5", "2", "48 s", "690ms", "700ms", "3"]
    assert flaky[2].style == "bold red"
    assert cells.breaker_cells(by_model["flaky"], PALETTE, elapsed=47.5)[5].plain == "next call"
    assert plain(cells.breaker_cells(by_model["strong"], PALETTE))[2:6] == [
        "◐ HALF-OPEN",
        "3",
        "1",
        "probing",
    ]
    assert plain(cells.breaker_cells(by_model["cheap"], PALETTE))[2] == "● closed"
    notes = cells.breaker_notes(ROUTING_ANSWER["breakers"])
    assert (
        len(notes) == 2 and "ConnectionRefusedError" in notes[1] and notes[1].startswith("[b $error]✖ flaky")
    )


def test_a_shadow_call_sits_beside_the_answer_served() -> None:
    shadows = ROUTING_ANSWER["shadows"]
    first = plain(cells.shadow_cells(shadows[0], PALETTE, ["cheap", "shadowy"]))
    assert first == [
        "14:56:00", "mirrored", "cheap", "The capital of Australia is Canberra.", "482ms", "$0.0000089",
        "shadowy", "Canberra is the capital of Australia, not Sydney as many assume.", "1.2s", "$0.000031", "≠",
    ]  # fmt: skip
    assert [cells.same_answer(s) for s in shadows] == [False, True, None, False]
    failed = cells.shadow_cells(shadows[2], PALETTE, [])
    assert failed[7].plain == "Upstream 'shadowy' timed out after 5.0 s." and failed[7].style == "red"
    assert cells.shadow_totals_text(ROUTING_ANSWER["shadow_totals"]) == (
        "mirrored → shadowy 7 calls, 1 failed, $0.00019, mean 1.6s"
    )


def test_columns_fit_the_width_leaving_out_the_optional_ones_first() -> None:
    rows = [cells.shadow_cells(s, PALETTE, []) for s in ROUTING_ANSWER["shadows"]]
    kept, widths = cells.fit_columns(cells.SHADOW_COLUMNS, rows, 118, {3, 7}, (1, 0, 5, 9), 20)
    assert [cells.SHADOW_COLUMNS[i] for i in kept][:3] == ["time", "served", "answer"]  # the route went first
    assert sum(widths) + 2 * len(widths) <= 118 and widths[2] >= 20
    kept, widths = cells.fit_columns(cells.SHADOW_COLUMNS, rows, 78, {3, 7}, (1, 0, 5, 9), 20)
    assert "time" not in [cells.SHADOW_COLUMNS[i] for i in kept] and sum(widths) + 2 * len(widths) <= 78


def test_an_escalated_attempt_is_not_shown_as_a_failure() -> None:
    trace = {
        "decisions": [{"stage": "cascade", "outcome": "escalate", "reason": "cheap confidence 0.14 < 0.60"}],
        "attempts": [
            {"model": "cheap", "provider": "openai", "status": "escalated", "http_status": 200, "latency_ms": 3.0,
             "prompt_tokens": 9, "completion_tokens": 4, "cost_usd": 0.00001, "error": None},
            {"model": "strong", "provider": "openai", "status": "ok", "http_status": 200, "latency_ms": 5.0,
             "prompt_tokens": 9, "completion_tokens": 4, "cost_usd": 0.0001, "error": None},
        ],
    }  # fmt: skip
    group = path_table(trace)
    assert group is not None
    table = group.renderables[1]
    statuses = table.columns[3]._cells  # type: ignore[attr-defined]
    assert [(c.plain, c.style) for c in statuses] == [("escalated 200", "yellow"), ("ok 200", "green")]


# -- against a real daemon ------------------------------------------------------------------------------

ROUTES = """
circuit_breaker: {failures: 2, cooldown: 60}
routes:
  mirrored: {strategy: weighted, weights: {fake: 1}, shadow: {model: fake-mini}}
  resilient: {strategy: cost, models: [broken, fake], description: the cheap model first}
"""


@pytest.fixture(scope="module")
def routed_daemon(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    """Routes over the fake upstream, one with a shadow; `broken` (cheapest) listens nowhere."""
    folder = tmp_path_factory.mktemp("console-routing")
    broken = (
        f'  broken:\n    {{provider: openai, base_url: "http://127.0.0.1:{free_port()}/v1", '
        f'api_key: "${{FAKE_KEY}}", price: {{input: .01, output: .02}}, retries: 0}}\n'
    )
    daemon = DaemonProcess.serving(folder, live_profile(fake_upstream.base_url) + broken + ROUTES)
    yield daemon
    daemon.stop()


def ask(url: str, model: str, text: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)


def cells_of(screen: RoutingScreen, table_id: str) -> list[list[str]]:
    table = screen.query_one(table_id, DataTable)
    return [[str(getattr(c, "plain", c)) for c in table.get_row_at(n)] for n in range(table.row_count)]


async def test_the_view_follows_calls_through_routes_live(routed_daemon: DaemonProcess) -> None:
    url = routed_daemon.url
    app = LlmopsApp(DaemonClient(url, backoff=(0.2, 0.5)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.connection.state == "connected", "the console to connect")
        await pilot.press("u")
        screen: RoutingScreen = await wait_for(
            pilot, lambda: isinstance(app.screen, RoutingScreen) and app.screen.data and app.screen, "routing"
        )
        assert [r["name"] for r in screen.routes] == ["mirrored", "resilient"]
        assert ask(url, "mirrored", "What is the capital of France?").headers["x-llmops-model"] == "fake"
        for n in range(3):  # broken fails twice (its circuit opens), then is skipped
            assert ask(url, "resilient", f"call {n}").headers["x-llmops-model"] == "fake"

        def resilient_row() -> list[str]:
            return next((row for row in cells_of(screen, "#routing-routes") if row[0] == "resilient"), [])

        await wait_for(pilot, lambda: resilient_row()[2:3] == ["3"], "the calls to show without a key")
        # Every call fell back: twice after an error, once past the open circuit.
        assert resilient_row()[6] == "100% (3)" and resilient_row()[7] == "fake 100%"
        broken = next(row for row in cells_of(screen, "#routing-breakers") if row[0] == "broken")
        assert broken[2] == "✖ OPEN" and broken[5].endswith(("s", "min"))
        notes = str(screen.query_one("#routing-breaker-notes", Static).render())
        assert "broken" in notes and "could not be reached" in notes
        assert "1 circuit OPEN" in str(screen.query_one("#routing-header", Static).render())

        await wait_for(pilot, lambda: screen.shadows, "the shadow call")
        await pilot.press("c")
        dialog = await wait_for(
            pilot, lambda: isinstance(app.screen, ShadowDialog) and app.screen, "comparison"
        )
        await wait_for(
            pilot, lambda: "asked" in str(dialog.query_one("#shadow-question", Static).render()), "q"
        )
        shown = [str(s.render()) for s in dialog.query(Static)]
        assert "asked What is the capital of France?" in shown
        assert shown.count("Echo: What is the capital of France?") == 2, "served and shadow answers in full"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "the dialog to close")


def test_the_recorded_answer_has_the_shape_of_a_real_one(routed_daemon: DaemonProcess) -> None:
    ask(routed_daemon.url, "mirrored", "shape")
    real = wait_for_shadow(routed_daemon.url)
    recorded = shape(ROUTING_ANSWER)
    assert real.keys() == ROUTING_ANSWER.keys()
    for key in ("routes", "series", "breakers", "shadow_totals", "shadows"):
        assert shape(real[key])[0].keys() == recorded[key][0].keys(), key


def wait_for_shadow(url: str) -> dict[str, Any]:
    from tests.daemon_process import wait_until

    answer: dict[str, Any] = wait_until(
        lambda: (a := httpx.get(f"{url}/admin/routing").json())["shadows"] and a, what="a shadow call"
    )
    return answer
