"""Reading Server-Sent Events from an upstream byte stream.

Events are yielded in batches: all the events one network read completed. Under load an
upstream's events arrive together, and forwarding a batch in one write costs one send, not one
per event.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

Event = tuple[str | None, bytes]  # (event name, data); multi-line data joined with newlines


class SSEDecoder:
    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer or self._data or self._event is not None:
            return self._feed_lines(buffer)
        # The common shape, `data: {...}` events ended by a blank line: one split, no line parsing.
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self._buffer = buffer
            return []
        self._buffer = buffer[cut + 2 :]
        events: list[Event] = []
        for block in buffer[:cut].split(b"\n\n"):
            if block.startswith(b"data: ") and b"\n" not in block:
                events.append((None, block[6:]))
            else:
                for line in block.split(b"\n"):
                    self._line(line, events)
                self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[Event]) -> None:
        if not line:
            if self._data:
                events.append((self._event, b"\n".join(self._data)))
            self._event, self._data = None, []
            return
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            # Only compared with known names: undecodable bytes are no reason to fail the stream.
            self._event = value.decode("utf-8", "replace")

    def _feed_lines(self, buffer: bytes) -> list[Event]:
        *lines, self._buffer = buffer.split(b"\n")
        events: list[Event] = []
        for raw in lines:
            self._line(raw.rstrip(b"\r"), events)
        return events

    def close(self) -> list[Event]:
        """Whatever a stream that ended without a final blank line left complete."""
        events = self._feed_lines(self._buffer + b"\n") if self._buffer else []
        self._line(b"", events)
        return events


async def sse_batches(chunks: AsyncIterable[bytes]) -> AsyncIterator[list[Event]]:
    decoder = SSEDecoder()
    async for chunk in chunks:
        events = decoder.feed(chunk)
        if events:
            yield events
    rest = decoder.close()
    if rest:
        yield rest


async def sse_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[Event]:
    async for batch in sse_batches(chunks):
        for event in batch:
            yield event
