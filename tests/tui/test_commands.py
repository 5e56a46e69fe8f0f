"""`llmops up` and `llmops demo` against real daemons; the CLI wiring of tui/up/demo."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmops.cli import build_parser
from llmops_tui import launcher
from llmops_tui.demo import DemoOptions, run_demo
from llmops_tui.launcher import healthy, up
from tests.daemon_process import UPSTREAM_KEY, DaemonProcess
from tests.fixtures.fake_openai import FakeOpenAI, free_port
from tests.tui.conftest import live_profile, traces_api


def up_args(folder: Path, port: int, **extra: Any) -> argparse.Namespace:
    values = {
        "profile": str(folder / "profile.yaml"),
        "db": str(folder / "llmops.db"),
        "port": port,
        "host": "127.0.0.1",
        "key": None,
        "timeout": 60.0,
        "keep_running": False,
        **extra,
    }
    return argparse.Namespace(**values)


def test_the_llmops_command_has_the_console_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["tui", "--url", "http://box:8700", "--key", "k"])
    assert (args.url, args.key) == ("http://box:8700", "k")
    assert parser.parse_args(["up"]).keep_running is False  # the documented default: stop on exit
    assert parser.parse_args(["up", "--keep-running"]).keep_running is True
    with pytest.raises(SystemExit):
        parser.parse_args(["up", "--keep-running", "--stop-on-exit"])
    demo = parser.parse_args(["demo", "--rate", "3", "--duration", "5", "--key", "a", "--key", "b"])
    assert (demo.rate, demo.duration, demo.key) == (3.0, 5.0, ["a", "b"])


@pytest.mark.parametrize("keep_running", [False, True])
def test_up_starts_a_daemon_opens_the_console_and_stops_it_as_chosen(
    fake_upstream: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_running: bool
) -> None:
    monkeypatch.setenv("FAKE_KEY", UPSTREAM_KEY)
    (tmp_path / "profile.yaml").write_text(live_profile(fake_upstream.base_url))
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []
    start = launcher.start_daemon
    monkeypatch.setattr(launcher, "start_daemon", lambda *a: started.append(start(*a)) or started[-1])
    seen: list[str] = []

    def console(url: str, key: str | None) -> None:
        seen.append(httpx.get(f"{url}/health").json()["profile"])

    assert up(up_args(tmp_path, port, keep_running=keep_running), console=console) == 0
    assert seen == ["console-test"]  # the console opened on a healthy daemon
    assert healthy(f"http://127.0.0.1:{port}") is keep_running
    assert (started[0].poll() is None) is keep_running
    started[0].terminate()
    started[0].wait(35)


def test_up_attaches_to_a_running_daemon_and_leaves_it_running(live_daemon: DaemonProcess) -> None:
    args = up_args(Path("unused"), live_daemon.port)
    assert up(args, console=lambda url, key: None) == 0
    assert healthy(live_daemon.url)


def test_up_reports_a_daemon_that_cannot_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "profile.yaml").write_text("name: broken\nmodels: {}\n")
    assert (
        up(
            up_args(tmp_path, free_port()),
            console=lambda url, key: pytest.fail("no console without a daemon"),
        )
        == 1
    )
    assert "the daemon exited" in capsys.readouterr().err


async def test_demo_calls_the_model_it_is_given(live_daemon: DaemonProcess) -> None:
    before = {t["id"] for t in await traces_api(live_daemon.url)}
    options = DemoOptions(
        url=live_daemon.url, rate=40, duration=10, max_requests=12, seed=3, model="fake-mini"
    )
    assert await run_demo(options) == 0
    new = [t for t in await traces_api(live_daemon.url) if t["id"] not in before]
    assert {t["served_model"] for t in new if t["status"] == "ok"} == {"fake-mini"}


async def test_demo_sends_a_mixed_workload_through_the_gateway(live_daemon: DaemonProcess) -> None:
    before = {t["id"] for t in await traces_api(live_daemon.url)}
    options = DemoOptions(url=live_daemon.url, rate=40, duration=10, max_requests=60, seed=11)
    assert await run_demo(options) == 0
    new = [t for t in await traces_api(live_daemon.url) if t["id"] not in before]
    assert len(new) == 60
    assert {t["served_model"] for t in new if t["status"] == "ok"} == {"fake"}  # the profile's default model
    assert any(t["stream"] for t in new) and any(not t["stream"] for t in new)
    assert any(t["status"] == "error" and t["http_status"] == 404 for t in new)  # a mistyped model
    prompts = []
    async with httpx.AsyncClient(base_url=live_daemon.url) as http:
        for t in new[:40]:
            detail = (await http.get(f"/admin/traces/{t['id']}")).json()
            prompts.append(detail["request"]["messages"][-1]["content"])
    assert len(set(prompts)) < len(prompts), "some prompts are sent again word for word"
