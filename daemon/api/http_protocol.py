"""uvicorn's httptools protocol with deadlines for slow clients, a connection cap, a shutdown that
drops half-received requests, and OpenAI-shaped errors for what the protocol itself answers.

Why a protocol subclass: uvicorn has only a keep-alive timeout. A head trickled a byte at a time, a
connection that sends nothing and a body that stops halfway held their connection (and a worker
task) forever, and a half-received request held the graceful shutdown for its whole 30 s, ending
in a plain-text 500. Deadlines, the cap and the shutdown live where the bytes arrive, before any
ASGI app runs; uvicorn's own `limit_concurrency` and 400 answer in plain text.

A request passes through phases, each with one deadline (profile `server:`):
- idle: before a request's first byte. A new connection has `header_timeout` from its connect to
  the end of its first head; a kept-alive one `idle_timeout` (uvicorn's keep-alive timer). Expiry:
  a bare close, as no request was made.
- head: from a request's first byte to the end of its headers, `header_timeout`; then a JSON 408.
- body: from the end of its headers to the end of its body, `body_timeout`; then a JSON 408.
Answering is never timed: a stream runs as long as it runs.

Cost: a timer is armed only when a read ends in the middle of a request, so a request that arrives
in one read (nearly all) arms none; one `call_later` per connection covers its first request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from daemon.api.asgi import Receive, Scope, Send
from daemon.config.schema import ServerConfig

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

IDLE, HEAD, BODY = 0, 1, 2  # what the connection is receiving


def error_response(status: int, error: dict[str, str | None], headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 response with an OpenAI-format error body; the connection closes after it."""
    body = orjson.dumps({"error": error})
    head = [STATUS_LINE[status]]
    for name, value in headers:
        head += [name, b": ", value, b"\r\n"]
    head.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + body


def openai_error(message: str, type_: str, code: str) -> dict[str, str | None]:
    return {"message": message, "type": type_, "param": None, "code": code}


def over_capacity_app(limit: int) -> ASGIApp:
    """The app that serves a connection over the cap: a 503 through uvicorn's own response cycle."""
    message = f"The gateway has {limit} connections open, its limit; retry shortly."
    body = orjson.dumps({"error": openai_error(message, "server_error", "too_many_connections")})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
               (b"connection", b"close"), (b"retry-after", b"1")]  # fmt: skip

    async def over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return over_capacity


class GatewayHttpProtocol(HttpToolsProtocol):
    """Give it its settings with `configured(server)`: uvicorn builds a protocol per connection
    from the class alone."""

    server_config: ClassVar[ServerConfig] = ServerConfig()

    @classmethod
    def configured(cls, server: ServerConfig) -> type[GatewayHttpProtocol]:
        return cast(type[GatewayHttpProtocol], type(cls.__name__, (cls,), {"server_config": server}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's keep-alive timer is the idle deadline; uvicorn types it int, call_later takes any
        self.timeout_keep_alive = self.server_config.idle_timeout  # type: ignore[assignment]
        self.phase = IDLE
        self.deadline: asyncio.TimerHandle | None = None

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.server_config
        if len(self.connections) > limits.max_connections:  # this one included
            self.app = over_capacity_app(limits.max_connections)  # uvicorn runs self.app per request
        self.deadline = self.loop.call_later(limits.header_timeout, self._expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            self.logger.warning("Invalid HTTP request received: %s", exc)
            self.send_400_response(f"The HTTP request is malformed: {exc}.")
            return
        if self.phase and self.deadline is None:  # this read ended inside a request
            self._arm()
        elif not self.phase and self.timeout_keep_alive_task is None and self._answered():
            # bytes between requests that begin none (blank lines): still idle, so still timed
            idle = self.timeout_keep_alive
            self.timeout_keep_alive_task = self.loop.call_later(idle, self.timeout_keep_alive_handler)

    # Parser callbacks: they track the phase; the deadline for it is armed after the read

    def on_message_begin(self) -> None:
        self.phase = HEAD
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.phase = BODY
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.phase = IDLE
        self._disarm()
        super().on_message_complete()

    # Deadlines, shutdown and answers of the protocol's own

    def _timeout(self) -> float:
        limits = self.server_config
        return limits.header_timeout if self.phase == HEAD else limits.body_timeout

    def _arm(self) -> None:
        self.deadline = self.loop.call_later(self._timeout(), self._expired)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _answered(self) -> bool:
        """No response is due or being written on this connection."""
        return self.cycle is None or self.cycle.response_complete

    def _expired(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused or (self.phase == HEAD and not self._answered()):
            # We are not reading (a full buffer, a pipelined request) or still answering the
            # previous request: the wait is ours, not the client's, so its clock starts again.
            self._arm()
        elif self.phase == IDLE:
            self.transport.close()  # a new connection that never sent a request
        elif self.phase == BODY and self.cycle is not None and self.cycle.response_started:
            self._answer_and_close(b"")  # answered already (or answering): nothing more can be said
        else:
            part = "head" if self.phase == HEAD else "body"
            message = f"The request's {part} did not arrive within {self._timeout():g} s."
            self.logger.info("Closed a slow client: %s", message)
            self._answer_and_close(self._error(408, message, "invalid_request_error", "request_timeout"))

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(self._error(400, msg, "invalid_request_error", "malformed_http"))

    def shutdown(self) -> None:
        """A request still arriving is answered 503 and closed now: its handler, waiting for the
        body, sees the disconnect, so the graceful shutdown does not wait on a client that may
        never finish. Requests received in full are served to the end, as uvicorn does."""
        answering = self.cycle is not None and self.cycle.response_started
        if (self.phase == BODY and not answering and not self.pipeline) or (
            self.phase == HEAD and self._answered()
        ):
            message = "The gateway is shutting down; the request was not received in full."
            self._answer_and_close(self._error(503, message, "server_error", "shutting_down"))
        else:
            super().shutdown()

    def _error(self, status: int, message: str, type_: str, code: str) -> bytes:
        return error_response(status, openai_error(message, type_, code), self.server_state.default_headers)

    def _answer_and_close(self, response: bytes) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # Its app's receive() now returns http.disconnect and its sends are dropped, so
            # nothing it does can follow this answer, nor uvicorn's 500 when it gives up.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                response = b""  # a half-written answer: anything more would corrupt it
        self._disarm()
        self.phase = IDLE
        if response:
            self.transport.write(response)
        self.transport.close()
