"""In-process event bus: recorded traces fan out to /admin/events subscribers (the console)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

QUEUE_SIZE = 4096
CLOSING = "closing"  # the last event of every subscription when the daemon shuts down
Event = tuple[str, Any]


class Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1  # a slow consumer misses events rather than slowing the gateway

    def end(self) -> None:
        if self.queue.full():  # the end must get through: drop the oldest event instead
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait((CLOSING, {}))

    async def next_batch(self, timeout: float) -> list[Event]:
        """Everything queued, waiting up to `timeout` for the first; [] on timeout.

        Batches keep a busy stream cheap: one write per batch, not per trace."""
        try:
            first = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return []
        batch = [first]
        while not self.queue.empty():
            batch.append(self.queue.get_nowait())
        if self.dropped:
            batch.insert(0, ("lagged", {"dropped": self.dropped}))
            self.dropped = 0
        return batch


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def publish(self, kind: str, data: Any) -> None:
        for subscription in self._subscriptions:
            subscription.offer((kind, data))

    def close(self) -> None:
        """End every subscription (and any made later): open streams must not hold up shutdown."""
        self.closed = True
        for subscription in self._subscriptions:
            subscription.end()

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        subscription = Subscription()
        if self.closed:
            subscription.end()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
