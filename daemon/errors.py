"""The daemon's exception tree, each mapped to OpenAI-style error JSON and an HTTP status.

Anything raised on the request path that is not a GatewayError becomes a 500 `server_error`
whose message hides internals.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status = 500
    type = "server_error"
    code: str | None = None
    # Whether the next candidate model may be tried instead (the attempt loop's fallback): only
    # for failures of the model's provider, never for a request that is wrong in itself.
    fallback = False

    @property
    def model_at_fault(self) -> bool:
        """Whether a fallback failure says the model is unwell (its circuit breaker counts it)."""
        return True

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.trace_id: str | None = None  # set once the failed call is traced; sent as a header
        self.headers: dict[str, str] = {}  # sent with the error (Retry-After, rate-limit headers)
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    """Malformed JSON or a field with a wrong type or value: 400."""

    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "insufficient_permissions"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class Conflict(GatewayError):
    """A change the resource's state does not allow now (an experiment's lifecycle): 409."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class BudgetExceeded(GatewayError):
    """The call's worst case does not fit a budget: 429, with Retry-After."""

    status = 429
    type = "budget_exceeded"
    code = "budget_exceeded"


class RateLimited(GatewayError):
    """Over a requests- or tokens-per-minute limit: 429, with OpenAI's x-ratelimit-* headers."""

    status = 429
    type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"


class ProviderError(GatewayError):
    """A model provider failed; `upstream` names it (never its key)."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"
    fallback = True
    upstream_status: int | None = None  # the upstream's own HTTP status, when it answered one

    @property
    def model_at_fault(self) -> bool:
        """Whether the failure says the model is unwell (a circuit breaker counts it), not that it
        disliked this request (an upstream 4xx other than 408 and 429)."""
        status = self.upstream_status
        return status is None or status >= 500 or status in (408, 429)


class UpstreamTimeout(ProviderError):
    status = 504
    code = "upstream_timeout"


class ModelUnavailable(GatewayError):
    """A configured model cannot serve (missing GGUF, unset API key env var): 503."""

    status = 503
    type = "server_error"
    code = "model_unavailable"
    fallback = True


class StoreUnavailable(GatewayError):
    """The trace store cannot write: a call is answered only once its trace is durable, so 503."""

    status = 503
    type = "server_error"
    code = "trace_store_unavailable"


class CircuitOpen(GatewayError):
    """Every candidate model's circuit breaker is open: 503, with Retry-After."""

    status = 503
    type = "server_error"
    code = "circuit_open"


def internal_error() -> GatewayError:
    return GatewayError("The gateway hit an internal error; see the daemon log.", code="internal_error")
