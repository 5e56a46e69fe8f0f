"""The console reaches the daemon over HTTP only: importing it loads none of the daemon's insides."""

from __future__ import annotations

from tests.imports import imported_after

FORBIDDEN = ("daemon.storage", "daemon.providers", "daemon.core")


def test_the_console_imports_no_daemon_internals() -> None:
    every_module = (
        "import importlib, pkgutil, llmops_tui; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(llmops_tui.__path__, 'llmops_tui.')]"
    )
    modules = imported_after(every_module)
    assert "llmops_tui.app" in modules and "textual" in modules  # the walk really imported the console
    leaked = sorted(m for m in modules if m.startswith(FORBIDDEN))
    assert leaked == []


def test_the_llmops_command_does_not_import_textual_until_the_console_runs() -> None:
    modules = imported_after("from llmops.cli import build_parser; build_parser()")
    assert "llmops_tui.cli" in modules
    assert "textual" not in modules and "llmops_tui.app" not in modules
