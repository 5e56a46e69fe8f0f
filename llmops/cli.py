"""`llmops`: the daemon's commands (daemon/cli.py) and the console's (llmops_tui/cli.py) on one
parser. Each side imports its heavy parts only when its command runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from daemon import cli as daemon_cli
from llmops_tui import cli as console_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmops", description="A local LLMOps gateway and its console.")
    commands = parser.add_subparsers(dest="command", required=True)
    daemon_cli.add_commands(commands)
    console_cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return daemon_cli.run(build_parser().parse_args(argv))
