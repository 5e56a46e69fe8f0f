"""Reading Server-Sent Events from an upstream byte stream."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator


async def sse_events(lines: AsyncIterable[bytes]) -> AsyncIterator[tuple[str | None, bytes]]:
    """Yield (event name, data) per event; multi-line data is joined with newlines."""
    event: str | None = None
    data: list[bytes] = []
    async for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield event, b"\n".join(data)
            event, data = None, []
            continue
        if line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode()
    if data:
        yield event, b"\n".join(data)
