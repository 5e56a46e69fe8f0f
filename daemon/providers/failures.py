"""What each way a remote call can fail means: the error the client gets, and whether the POST
may be sent again.

A chat call that reaches the model runs (and bills) it, so a POST goes again only when it
provably did not reach the model, or when the upstream said to:
- no connection could be made (refused, unreachable, DNS, the connect timeout): retried;
- a response head with 429, 500, 502, 503, 504 or 529: retried, after `retry-after` when the
  upstream gave one (asked to wait more than RETRY_AFTER_CAP_S, the call fails at once);
- anything after the request went out is final: a read timeout, a reset or close before the
  answer (the model may be running), a response that had begun, a malformed one.
(http1.py resends once, transparently, on a reused keep-alive connection that the upstream had
closed while idle: see Http1Pool.post.)

Messages name the model (the profile's name), never the key, and say what happened.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import aiohttp

from daemon.config.schema import Timeouts
from daemon.errors import ProviderError, UpstreamTimeout
from daemon.providers.http1 import (
    BadHead,
    ConnectFailed,
    DeadlineReached,
    Http1Error,
    NoResponse,
    ReadTimeout,
)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})  # 529: Anthropic "overloaded"
RETRY_AFTER_CAP_S = 10.0  # a longer wait is the upstream's "not now": fail instead of holding the call
# What sending a request or reading a response can raise: timeouts and OSErrors
# (ConnectionResetError), our client's and aiohttp's errors, and ValueErrors (a malformed body
# met by a decoder).
READ_ERRORS = (OSError, Http1Error, aiohttp.ClientError, ValueError)
# aiohttp >= 3.10 tells a connect timeout from a read timeout; before, both are ServerTimeoutError.
CONNECT_TIMEOUT: tuple[type[Exception], ...] = tuple(
    t for t in (getattr(aiohttp, "ConnectionTimeoutError", None),) if isinstance(t, type)
)
TLS_ERRORS = (aiohttp.ClientSSLError, aiohttp.ClientConnectorCertificateError)


@dataclass(slots=True)
class Deadline:
    """When a call must be over, in loop time: `total_at` for all of it, `idle_at` for a stream's
    next complete event."""

    total_at: float
    idle_at: float = math.inf

    def nearest(self) -> str:
        return "idle" if self.idle_at < self.total_at else "total"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait an upstream asked for: `retry-after-ms` (OpenAI), `retry-after` in seconds or as
    an HTTP date; None when it gave none we can read."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (ValueError, TypeError, OverflowError):
        return None


class Failures:
    """The errors of one upstream: `name` is the profile's model name, `where` its URL without
    credentials."""

    def __init__(self, name: str, where: str, timeout: Timeouts) -> None:
        self.name = name
        self.where = where
        self.timeout = timeout

    def unanswered(self, exc: Exception, deadline: Deadline) -> tuple[ProviderError, bool]:
        """A failure before any response head: the error, and whether the POST may go again (only
        when no connection was made, so the request never left)."""
        name = self.name
        if isinstance(exc, ConnectFailed) and exc.timed_out or isinstance(exc, CONNECT_TIMEOUT):
            connect = self.timeout.connect
            message = f"Upstream {name!r} could not be reached within the connect timeout ({connect:g} s)"
            return UpstreamTimeout(f"{message} at {self.where}."), True
        if isinstance(exc, TLS_ERRORS):  # reached, but its certificate is wrong: trying again won't help
            return ProviderError(f"Upstream {name!r} failed the TLS handshake ({self.where})."), False
        if isinstance(exc, ConnectFailed | aiohttp.ClientConnectorError):
            reason = str(exc) if isinstance(exc, ConnectFailed) else type(exc).__name__
            return ProviderError(f"Upstream {name!r} could not be reached ({self.where}): {reason}."), True
        if isinstance(exc, TimeoutError):
            return self._timed_out(exc, deadline, begun=False), False
        if isinstance(exc, NoResponse | aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
            closed = isinstance(exc, aiohttp.ServerDisconnectedError) or (
                isinstance(exc, NoResponse) and not exc.reset
            )
            return ProviderError(
                f"Upstream {name!r} {'closed' if closed else 'reset'} the connection before answering "
                "(not retried: the request may have reached the model)."
            ), False
        if isinstance(exc, BadHead | aiohttp.ClientResponseError):
            reason = str(exc) if isinstance(exc, BadHead) else type(exc).__name__
            message = f"Upstream {name!r} sent an invalid or incomplete response ({reason})."
            return ProviderError(message), False
        return self.broken(exc, deadline), False  # the head had come: a body read with it broke

    def refused(self, status: int, detail: str, wait: float | None) -> tuple[ProviderError, bool]:
        """An error status (`detail`: the upstream's message, already redacted): the error, and
        whether to retry."""
        message = f"Upstream {self.name!r} answered HTTP {status}: {detail}"
        retry = status in RETRY_STATUSES
        if retry and wait is not None and wait > RETRY_AFTER_CAP_S:
            message += f" (it asked to be retried after {wait:g} s: longer than the gateway waits)"
            retry = False
        error = ProviderError(message)
        error.upstream_status = status
        return error, retry

    def broken(self, exc: BaseException, deadline: Deadline) -> ProviderError:
        """A failure while reading a response that had begun (never retried)."""
        if isinstance(exc, TimeoutError):
            return self._timed_out(exc, deadline, begun=True)
        if isinstance(exc, ValueError):
            return ProviderError(f"Upstream {self.name!r} sent a malformed response body.")
        reason = str(exc) if isinstance(exc, Http1Error) and str(exc) else type(exc).__name__
        return ProviderError(f"Upstream {self.name!r} broke off its response ({reason}).")

    def _timed_out(self, exc: BaseException, deadline: Deadline, *, begun: bool) -> UpstreamTimeout:
        timeout, name = self.timeout, self.name
        read_timeout = isinstance(exc, ReadTimeout | aiohttp.ServerTimeoutError)
        if not read_timeout and not isinstance(exc, DeadlineReached):
            # a TimeoutError of ours (asyncio.timeout_at) is a deadline; any other, a read timeout
            read_timeout = asyncio.get_running_loop().time() < min(deadline.total_at, deadline.idle_at)
        if read_timeout and not begun:
            return UpstreamTimeout(
                f"Upstream {name!r} timed out waiting for a response (nothing within the read "
                f"timeout, {timeout.read:g} s)."
            )
        if read_timeout:
            return UpstreamTimeout(
                f"Upstream {name!r} timed out while responding: nothing arrived for {timeout.read:g} s "
                "(the read timeout)."
            )
        if deadline.nearest() == "idle":
            return UpstreamTimeout(
                f"Upstream {name!r} timed out while responding: no complete stream event for "
                f"{timeout.idle_seconds:g} s (the idle timeout)."
            )
        return UpstreamTimeout(
            f"Upstream {name!r} timed out: the call took longer than its total timeout ({timeout.total:g} s)."
        )
