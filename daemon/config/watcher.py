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
