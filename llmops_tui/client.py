"""The daemon's HTTP client: JSON requests, and the /admin/events stream with reconnection.

`listen()` runs for the app's lifetime (as a Textual worker). It posts past-tense messages to its
target: DaemonConnected / DaemonReconnected / DaemonDisconnected, and TracesReceived in batches
(at most one message per BATCH_SECONDS, however fast traces arrive).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson
from textual.message import Message

from llmops_tui.messages import (
    DaemonConnected,
    DaemonDisconnected,
    DaemonReconnected,
    FeedbackReceived,
    ModelChanged,
    ProfileReloaded,
    TracesReceived,
)

BATCH_SECONDS = 0.1
BACKOFF = (0.5, 1.0, 2.0, 3.0, 5.0)
# The daemon sends a keep-alive every 15 s; a silent stream for longer than this is dead.
STREAM_READ_TIMEOUT = 40.0


class Target(Protocol):
    def post_message(self, message: Message) -> bool: ...


class DaemonError(Exception):
    """The daemon answered with an error (its OpenAI-style message), or did not answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except Exception:
        return response.text[:200] or response.reason_phrase


def describe(exc: BaseException) -> str:
    if isinstance(exc, DaemonError):
        return exc.message
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs from Server-Sent Events lines; comments (keep-alives) as ("comment", text)."""
    event, data = "message", list[str]()
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", list[str]()
        elif line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


class DaemonClient:
    def __init__(self, url: str, key: str | None = None, *, label: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 backoff: tuple[float, ...] = BACKOFF) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.backoff = backoff
        self.label = label or self.url
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(10.0), transport=transport
        )
        self.connected = False
        self._wake = asyncio.Event()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- requests ------------------------------------------------------------------------------------

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise DaemonError(describe(exc)) from exc
        if response.status_code >= 400:
            raise DaemonError(_error_message(response), response.status_code)
        return orjson.loads(response.content)

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("GET", "/health")
        return result

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("GET", "/admin/status")
        return result

    async def traces(
        self, filters: dict[str, str], cursor: int | None = None, limit: int = 200
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first, filtered by the daemon; returns (rows, cursor of the next older page)."""
        params = {k: v for k, v in filters.items() if v}
        params["limit"] = str(limit)
        if cursor is not None:
            params["cursor"] = str(cursor)
        page = await self._json("GET", "/admin/traces", params=params)
        return page["data"], page["next_cursor"]

    async def trace(self, trace_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("GET", f"/admin/traces/{trace_id}")
        return result

    async def rate(self, trace_id: str, score: float | str, comment: str | None = None) -> dict[str, Any]:
        """`score`: 1-5 stars, or "up" / "down" for thumbs."""
        body: dict[str, Any] = {"trace_id": trace_id}
        body["thumbs" if isinstance(score, str) else "score"] = score
        if comment:
            body["comment"] = comment
        result: dict[str, Any] = await self._json("POST", "/v1/feedback", json=body)
        return result

    async def spend(
        self, window: str, group_by: str, *, now: float | None = None, utc_offset: int | None = None
    ) -> dict[str, Any]:
        params = {**_window_params(window, now, utc_offset), "group_by": group_by}
        result: dict[str, Any] = await self._json("GET", "/admin/spend", params=params)
        return result

    async def cache(
        self, window: str, *, now: float | None = None, utc_offset: int | None = None
    ) -> dict[str, Any]:
        params = _window_params(window, now, utc_offset)
        result: dict[str, Any] = await self._json("GET", "/admin/cache", params=params)
        return result

    async def evict(self, entry_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("DELETE", f"/admin/cache/entries/{entry_id}")
        return result

    async def bad_hit(self, trace_id: str) -> dict[str, Any]:
        """The cache answered this call wrongly: its entry is evicted, the mark recorded, and a match
        by meaning fenced."""
        result: dict[str, Any] = await self._json(
            "POST", "/admin/cache/bad-hits", json={"trace_id": trace_id}
        )
        return result

    async def budgets(
        self, window: str, *, now: float | None = None, utc_offset: int | None = None
    ) -> dict[str, Any]:
        """Every budget's standing now; the refusals and top spenders over `window`."""
        params = _window_params(window, now, utc_offset)
        result: dict[str, Any] = await self._json("GET", "/admin/budgets", params=params)
        return result

    async def reset_budget(self, subject: str, period: str) -> dict[str, Any]:
        """Start the budget's current window again now: what it spent so far stops counting."""
        path = f"/admin/budgets/{quote(subject, safe=':')}/reset"
        result: dict[str, Any] = await self._json("POST", path, json={"per": period})
        return result

    async def routing(
        self, window: str, *, now: float | None = None, utc_offset: int | None = None
    ) -> dict[str, Any]:
        """Each route's traffic per model and tier over `window`, the shares over time, the circuit
        breakers now, and the latest shadow calls."""
        params = _window_params(window, now, utc_offset)
        result: dict[str, Any] = await self._json("GET", "/admin/routing", params=params)
        return result

    async def prompts(self) -> list[dict[str, Any]]:
        """Every prompt: its latest version, how many versions, its labels."""
        page = await self._json("GET", "/admin/prompts")
        rows: list[dict[str, Any]] = page["data"]
        return rows

    async def prompt(self, name: str) -> dict[str, Any]:
        """A prompt's labels, its latest version in full, every version (newest first) with its usage."""
        result: dict[str, Any] = await self._json("GET", f"/admin/prompts/{quote(name, safe='')}")
        return result

    async def prompt_version(self, name: str, version: int) -> dict[str, Any]:
        path = f"/admin/prompts/{quote(name, safe='')}/versions/{version}"
        result: dict[str, Any] = await self._json("GET", path)
        return result

    async def prompt_diff(self, name: str, old: int, new: int) -> str:
        path = f"/admin/prompts/{quote(name, safe='')}/diff"
        result = await self._json("GET", path, params={"from": str(old), "to": str(new)})
        return str(result["diff"])

    async def move_label(self, name: str, label: str, version: int) -> dict[str, Any]:
        """Point `label` at `version` (a release, or a rollback); the answer says where it pointed."""
        path = f"/admin/prompts/{quote(name, safe='')}/labels/{quote(label, safe='')}"
        result: dict[str, Any] = await self._json("PUT", path, json={"version": version})
        return result

    async def experiments(self) -> list[dict[str, Any]]:
        page = await self._json("GET", "/admin/experiments")
        rows: list[dict[str, Any]] = page["data"]
        return rows

    async def experiment(
        self, name: str, window: str | None = None, *, now: float | None = None, utc_offset: int | None = None
    ) -> dict[str, Any]:
        """The experiment with its results over `window` (None: since its first call), transitions
        and shadow calls."""
        params = _window_params(window, now, utc_offset) if window else {}
        path = f"/admin/experiments/{quote(name, safe='')}"
        result: dict[str, Any] = await self._json("GET", path, params=params)
        return result

    async def experiment_action(self, name: str, action: str, **body: Any) -> dict[str, Any]:
        """shadow, start, ramp, promote or stop, with an optional share, arm, note; a 409 says why not."""
        path = f"/admin/experiments/{quote(name, safe='')}/{action}"
        sent = {key: value for key, value in body.items() if value is not None}
        result: dict[str, Any] = await self._json("POST", path, json=sent)
        return result

    # -- the live stream -------------------------------------------------------------------------------

    def retry_now(self) -> None:
        """Skip the rest of the current backoff wait."""
        self._wake.set()

    async def listen(self, target: Target) -> None:
        """Forever: connect, relay events, and after a failure wait (backoff) and connect again."""
        attempt, down_since = 0, None
        while True:
            try:
                status = await self.status()
                async for connected in self._stream(target):
                    if connected:
                        self.connected = True
                        if down_since is None:
                            target.post_message(DaemonConnected(status))
                        else:
                            target.post_message(DaemonReconnected(status, time.monotonic() - down_since))
                        attempt, down_since = 0, None
                reason = "the event stream ended"
            except (httpx.HTTPError, DaemonError, ValueError) as exc:
                reason = describe(exc)
            self.connected = False
            down_since = down_since if down_since is not None else time.monotonic()
            delay = self.backoff[min(attempt, len(self.backoff) - 1)]
            attempt += 1
            target.post_message(DaemonDisconnected(reason, delay, attempt))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _stream(self, target: Target) -> AsyncIterator[bool]:
        """Relays one connection's events; yields True once the subscription is live."""
        timeout = httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT)
        batch: list[dict[str, Any]] = []
        dropped = 0

        def flush() -> None:
            nonlocal batch, dropped
            if batch or dropped:
                target.post_message(TracesReceived(batch, dropped))
                batch, dropped = [], 0

        async def flusher() -> None:
            while True:
                await asyncio.sleep(BATCH_SECONDS)
                flush()

        async with self._http.stream("GET", "/admin/events", timeout=timeout) as response:
            if response.status_code >= 400:
                await response.aread()
                raise DaemonError(_error_message(response), response.status_code)
            ticker = asyncio.create_task(flusher())
            try:
                async for kind, data in sse_events(response.aiter_lines()):
                    if kind == "comment":
                        if data == "connected":
                            yield True
                    elif kind == "trace":
                        batch.append(orjson.loads(data))
                    elif kind == "feedback":
                        flush()  # a rating may be for a trace still in the batch
                        target.post_message(FeedbackReceived(orjson.loads(data)))
                    elif kind == "profile":
                        info = orjson.loads(data)
                        target.post_message(ProfileReloaded(info["ok"], info.get("name"), info.get("error")))
                    elif kind == "model":
                        target.post_message(ModelChanged(orjson.loads(data)))
                    elif kind == "lagged":
                        dropped += int(orjson.loads(data).get("dropped", 1))
                    elif kind == "error":  # e.g. the key was revoked while the stream was open
                        error = orjson.loads(data).get("error") or {}
                        raise DaemonError(error.get("message") or "The daemon ended the event stream.", 401)
            finally:
                ticker.cancel()
                flush()


def _window_params(window: str, now: float | None, utc_offset: int | None) -> dict[str, str]:
    """A spend window's query: its name, and the clock and offset a test may pin."""
    params = {"window": window}
    if now is not None:
        params["now"] = repr(now)
    if utc_offset is not None:
        params["utc_offset"] = str(utc_offset)
    return params
