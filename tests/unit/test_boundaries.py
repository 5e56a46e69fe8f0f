"""The import boundaries the README's architecture section states, checked in fresh interpreters."""

from __future__ import annotations

import pytest

from tests.imports import imported_after


def test_core_is_pure() -> None:
    every_core_module = (
        "import importlib, pkgutil, daemon.core; "
        "[importlib.import_module('daemon.core.' + m.name)"
        " for m in pkgutil.iter_modules(daemon.core.__path__)]"
    )
    modules = imported_after(every_core_module)
    assert not modules & {"httpx", "aiosqlite", "llama_cpp", "textual", "asyncio", "aiohttp"}


@pytest.mark.parametrize("module", ["daemon.app", "daemon.cli", "daemon.gateway"])
def test_the_daemon_never_imports_textual_or_llama_at_import(module: str) -> None:
    modules = imported_after(f"import {module}")
    assert "textual" not in modules and "llama_cpp" not in modules
