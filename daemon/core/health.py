"""Each model's health as the gateway sees it: a circuit breaker over its failures, and a window of
its recent latencies. Pure: the caller passes the time. One `Health` lives for the daemon's life
(a reload keeps what it learnt), shared by every runtime."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class Breaker:
    """Closed: calls flow, consecutive failures are counted. Open: calls skip the model until
    `retry_at`. Half-open: one call at a time probes it; a success closes the circuit, a failure
    opens it again for twice as long (up to `max_cooldown`)."""

    failures_to_open: int = 5
    base_cooldown: float = 30.0
    max_cooldown: float = 300.0
    state: State = "closed"
    failures: int = 0  # in a row
    cooldown: float = 0.0  # of the current or last opening
    retry_at: float = 0.0
    probing: bool = False
    opened: int = 0  # times it opened
    last_error: str | None = None
    changed_at: float = 0.0

    def skips(self, now: float) -> bool:
        """Whether a call now would skip the model (open, cooling down); changes nothing."""
        return self.state == "open" and now < self.retry_at

    def allow(self, now: float) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open":
            if now < self.retry_at:
                return False
            self.state, self.changed_at = "half_open", now
        if self.probing:
            return False
        self.probing = True
        return True

    def succeeded(self, now: float) -> None:
        if self.state != "closed":
            self.state, self.changed_at = "closed", now
        self.failures, self.probing, self.cooldown = 0, False, 0.0

    def failed(self, now: float, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self.state == "half_open" or (self.state == "closed" and self.failures >= self.failures_to_open):
            doubled = self.cooldown * 2 if self.state == "half_open" else self.base_cooldown
            self.cooldown = min(max(doubled, self.base_cooldown), self.max_cooldown)
            self.state, self.retry_at, self.changed_at = "open", now + self.cooldown, now
            self.probing = False
            self.opened += 1

    def abandoned(self) -> None:
        """A probe whose caller left before it answered: let the next call probe."""
        self.probing = False

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "state": self.state,
            "failures": self.failures,
            "opened": self.opened,
            "retry_in_s": round(max(0.0, self.retry_at - now), 3) if self.state == "open" else None,
            "last_error": self.last_error,
            "changed_at": self.changed_at or None,
        }


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(share * len(ordered) + 0.999999) - 1))]


@dataclass(slots=True)
class Latencies:
    """The last `size` successful calls' latency and time to first token, in ms: recent enough that
    a model turning slow shows within a few calls at p95."""

    size: int = 50
    total: deque[float] = field(default_factory=deque)
    ttft: deque[float] = field(default_factory=deque)
    _figures: dict[str, float | None] | None = None  # computed when read, dropped on a new sample

    def add(self, latency_ms: float | None, ttft_ms: float | None = None) -> None:
        if latency_ms is not None:
            _push(self.total, latency_ms, self.size)
        if ttft_ms is not None:
            _push(self.ttft, ttft_ms, self.size)
        self._figures = None

    def figures(self) -> dict[str, float | None]:
        if self._figures is None:
            total, ttft = list(self.total), list(self.ttft)
            self._figures = {
                "p50": percentile(total, 0.5) if total else None,
                "p95": percentile(total, 0.95) if total else None,
                "ttft": percentile(ttft, 0.5) if ttft else None,
                "samples": float(len(total)),
            }
        return self._figures


def _push(window: deque[float], value: float, size: int) -> None:
    window.append(value)
    if len(window) > size:
        window.popleft()


@dataclass(slots=True)
class ModelHealth:
    breaker: Breaker
    latencies: Latencies = field(default_factory=Latencies)


class Health:
    """Every model's health, by name. Without a `circuit_breaker:` in the profile the breakers
    never open (their failures are still counted); latencies are kept either way."""

    def __init__(self) -> None:
        self.models: dict[str, ModelHealth] = {}
        self.breaking = False
        self._settings = (5, 30.0, 300.0)

    def configure(
        self, enabled: bool, failures: int = 5, cooldown: float = 30.0, maximum: float = 300.0
    ) -> None:
        self.breaking = enabled
        self._settings = (failures, cooldown, maximum)
        for health in self.models.values():
            b = health.breaker
            b.failures_to_open, b.base_cooldown, b.max_cooldown = self._settings
            if not enabled and b.state != "closed":
                b.succeeded(b.changed_at)

    def of(self, model: str) -> ModelHealth:
        health = self.models.get(model)
        if health is None:
            health = self.models[model] = ModelHealth(Breaker(*self._settings))
        return health

    def allow(self, model: str, now: float) -> bool:
        return not self.breaking or self.of(model).breaker.allow(now)

    def skips(self, model: str, now: float) -> bool:
        """Whether `allow` would turn the model down now, without taking a probe's turn."""
        return self.breaking and self.of(model).breaker.skips(now)

    def succeeded(
        self, model: str, now: float, latency_ms: float | None, ttft_ms: float | None = None
    ) -> None:
        health = self.of(model)
        health.breaker.succeeded(now)
        health.latencies.add(latency_ms, ttft_ms)

    def failed(self, model: str, now: float, error: str) -> None:
        breaker = self.of(model).breaker
        if self.breaking:
            breaker.failed(now, error)
        else:
            breaker.failures += 1
            breaker.last_error = error

    def abandoned(self, model: str) -> None:
        self.of(model).breaker.abandoned()

    def retry_in(self, models: list[str], now: float) -> float:
        """Seconds until the first of `models` may be probed."""
        waits = [self.of(m).breaker.retry_at - now for m in models if self.of(m).breaker.state == "open"]
        return max(0.0, min(waits)) if waits else 0.0
