"""The call context every stage sees, and the outcome the ending records.

A Context is created when a call arrives and ended exactly once (`pipeline/ending.py`), however the
call ends: answered, failed, or abandoned by its client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from daemon.core.principal import Principal
from daemon.core.trace import Attempt, Trace

if TYPE_CHECKING:
    from daemon.runtime import ModelEntry, Runtime

Endpoint = Literal["chat", "embeddings"]


def _nothing() -> None:
    return None


Job = Callable[[Any], Any]  # a write, run by the writer in the ending's transaction


@dataclass(frozen=True, slots=True)
class Decision:
    """What a stage decided and why, shown with the trace: `cache: miss (best 0.91 < 0.95)`."""

    stage: str
    outcome: str
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"stage": self.stage, "outcome": self.outcome, "reason": self.reason}


@dataclass(slots=True)
class Outcome:
    """How a call ended, as the ending records it and the stages' `after` see it."""

    status: str = "ok"  # ok | error | cancelled
    http_status: int = 200
    error: str | None = None
    error_code: str | None = None
    text: str = ""  # the response text (chat)
    finish_reason: str | None = None
    body: dict[str, Any] | None = None  # the JSON answer, when there was one (not for streams)
    answered_by: str | None = None  # the stage that answered early, if one did


@dataclass(slots=True)
class Context:
    endpoint: Endpoint
    principal: Principal
    body: dict[str, Any]  # the validated request; input stages may rewrite it
    request_headers: Mapping[bytes, bytes]  # lower-cased names, as the client sent them
    runtime: Runtime  # pinned: a reload never changes a call in flight
    trace: Trace
    started: float  # perf_counter() when the request arrived
    stream: bool
    candidates: list[ModelEntry] = field(default_factory=list)  # tried in order by the attempt loop
    # Every candidate may be paid for, not just one (a cascade's cheap answer, then the escalation):
    # a budget reserves their sum.
    cumulative: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    reply_headers: dict[str, str] = field(default_factory=dict)  # stages' own response headers
    jobs: list[Job] = field(default_factory=list)  # stages' writes, committed with the trace
    state: dict[str, Any] = field(default_factory=dict)  # stages' scratch space, keyed by stage name
    provider_ms: float = 0.0  # time spent waiting on providers before the answer began
    # Called before anything that waits long (a model): the HTTP layer starts watching for the
    # client leaving, which cancels the call. A stage that waits long calls it too.
    waiting: Callable[[], None] = _nothing
    ended: bool = False

    def decide(self, stage: str, outcome: str, reason: str = "") -> None:
        self.decisions.append(Decision(stage, outcome, reason))
