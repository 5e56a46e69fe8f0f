"""In-process event bus: recorded traces fan out to /admin/events subscribers (the console)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

QUEUE_SIZE = 2048


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[tuple[str, Any]]] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, data: Any) -> None:
        for queue in self._subscribers:
            try:
                queue.put_nowait((kind, data))
            except asyncio.QueueFull:
                # A slow consumer misses events rather than slowing the gateway; it is told so.
                queue.get_nowait()
                queue.put_nowait(("lagged", {"dropped": 1}))

    async def subscribe(self) -> AsyncIterator[tuple[str, Any]]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)
