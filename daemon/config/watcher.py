"""Hot reload: watch the profile file and swap in a new runtime only when the edit validates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import awatch

log = logging.getLogger(__name__)


async def watch_profile(path: Path, on_change: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Call `on_change` after each change to `path`. Watches the folder: editors save by rename."""
    target = path.resolve()

    def concerns_profile(_change: object, changed: str) -> bool:
        return Path(changed).resolve() == target

    async for _changes in awatch(target.parent, watch_filter=concerns_profile, stop_event=stop, debounce=200):
        try:
            await on_change()
        except Exception:
            log.exception("profile reload failed")


async def watch_folder(folder: Path, on_change: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Call `on_change` after changes to the YAML files of `folder` (the prompt folder), which may
    not exist yet: its parent is watched until it does."""
    target = folder.resolve()

    def concerns_folder(_change: object, changed: str) -> bool:
        path = Path(changed).resolve()
        return path == target or (path.parent == target and path.suffix in (".yaml", ".yml"))

    watched = target if target.is_dir() else target.parent
    if not watched.is_dir():
        return
    async for _changes in awatch(watched, watch_filter=concerns_folder, stop_event=stop, debounce=200):
        try:
            await on_change()
        except Exception:
            log.exception("prompt folder reload failed")
