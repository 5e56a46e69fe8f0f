"""The console's commands on the `llmops` CLI: tui, up, demo. Textual is imported only when they run."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8700"


def quiet_http_logs() -> None:
    """httpx logs every request at INFO: noise for the demo, and on a console, stray text on the screen."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def run_console(url: str, key: str | None) -> int:
    from llmops_tui.app import LlmopsApp

    quiet_http_logs()
    from llmops_tui.client import DaemonClient

    LlmopsApp(DaemonClient(url, key)).run()
    return 0


def _tui(args: argparse.Namespace) -> int:
    return run_console(args.url, args.key)


def _up(args: argparse.Namespace) -> int:
    from llmops_tui.launcher import up

    quiet_http_logs()
    return up(args)


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    from llmops_tui.demo import DemoOptions, run_demo

    quiet_http_logs()
    options = DemoOptions(
        url=args.url, keys=args.key,
        rate=args.rate, duration=args.duration, model=args.model,
        max_requests=args.max_requests, concurrency=args.concurrency, seed=args.seed,
    )  # fmt: skip
    return asyncio.run(run_demo(options))


def add_commands(subparsers: Any) -> None:
    """Register `tui`, `up` and `demo` on the daemon's `llmops` parser (see daemon/cli.py)."""
    from daemon.settings import (
        DEFAULT_HOST,
        DEFAULT_PORT,
        add_key_options,
        default_db_path,
        default_profile_path,
    )

    url_default = os.environ.get("LLMOPS_URL", DEFAULT_URL)

    tui = subparsers.add_parser("tui", help="open the console on a running daemon (local or a team box)")
    tui.add_argument("--url", default=url_default, help=f"daemon URL (or LLMOPS_URL; default {DEFAULT_URL})")
    add_key_options(tui)
    tui.set_defaults(func=_tui)

    up = subparsers.add_parser(
        "up",
        help="start the daemon in the background if none answers, then open the console",
        description="Start the product: if no daemon answers on --port, start one in the background "
        "(log in the data directory), wait until it is healthy and its eager models are loaded, then "
        "open the console. On exit a daemon that `up` started is stopped, unless --keep-running; "
        "a daemon that was already running is never stopped.",
    )
    up.add_argument("--profile", default=str(default_profile_path()), help="profile YAML (hot-reloaded)")
    up.add_argument("--db", default=str(default_db_path()), help="SQLite database file")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
    up.add_argument("--host", default=DEFAULT_HOST, help=argparse.SUPPRESS)
    add_key_options(up, "admin API key, when the database has keys")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for start-up (default 180)")
    leave = up.add_mutually_exclusive_group()
    leave.add_argument("--stop-on-exit", dest="keep_running", action="store_false",
                       help="stop the daemon `up` started when the console exits (the default)")  # fmt: skip
    leave.add_argument("--keep-running", dest="keep_running", action="store_true",
                       help="leave the daemon serving after the console exits")  # fmt: skip
    up.set_defaults(func=_up, keep_running=False)

    demo = subparsers.add_parser(
        "demo",
        help="send a realistic mixed workload through the gateway",
        description="Real requests through the real daemon: varied prompts (some repeated, some "
        "paraphrased), streaming and not, several users, a few failing calls and some ratings. "
        "Bounded by --duration and --max-requests.",
    )
    demo.add_argument("--url", default=url_default)
    add_key_options(demo, "API key", repeatable=True)
    demo.add_argument("--rate", type=float, default=2.0, help="requests per second (default 2)")
    demo.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    demo.add_argument(
        "--max-requests", type=int, default=None, help="stop after this many (default rate x duration)"
    )
    demo.add_argument("--concurrency", type=int, default=8, help="requests in flight at most (default 8)")
    demo.add_argument(
        "--model", default=None, help="the chat model to call (default: the profile's default model)"
    )
    demo.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable workload")
    demo.set_defaults(func=_demo)
