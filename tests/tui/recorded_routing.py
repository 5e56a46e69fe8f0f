"""GET /admin/routing?window=today as a daemon with routes answers it at FROZEN_NOW (Thursday 15 January
2026, 15:00 UTC), for the routing view's snapshots.

The circuit breakers and their latencies are the daemon's live state (a circuit's probe countdown
follows the real clock), and shadow calls are recorded in the background, so no seeded daemon gives
a picture that stays the same; this answer is recorded instead, and test_routing.py checks that it
still has the shape of a real daemon's answer.
"""

from __future__ import annotations

from typing import Any

from tests.tui.conftest import FROZEN_NOW

TODAY_UTC = 1_768_435_200.0  # the window: the viewer's day (UTC in the snapshots)
HOUR = 3600

# Calls per route, hour of the day and served model (escalated, fell back: of those calls).
TRAFFIC: dict[str, dict[int, dict[str, int]]] = {
    "auto": {8: {"cheap": 9, "mid": 2}, 9: {"cheap": 14, "mid": 5, "strong": 1}, 10: {"cheap": 12, "mid": 6, "strong": 4},
             11: {"cheap": 8, "mid": 3}, 13: {"cheap": 16, "mid": 4, "strong": 2}, 14: {"cheap": 11, "mid": 7, "strong": 5}},
    "careful": {9: {"cheap": 6, "strong": 1}, 10: {"cheap": 5, "strong": 3}, 13: {"cheap": 2, "strong": 4}, 14: {"cheap": 4, "strong": 2}},
    "split": {10: {"cheap": 7, "strong": 3}, 11: {"cheap": 8, "strong": 2}, 14: {"cheap": 6, "strong": 4}},
    "mirrored": {13: {"cheap": 4}, 14: {"cheap": 3}},
    "resilient": {9: {"flaky": 5}, 10: {"flaky": 4, "mid": 1}, 14: {"flaky": 1, "mid": 6}},
}  # fmt: skip
TIERS = {"cheap": "cheap", "mid": "balanced", "strong": "best"}
ROUTES = [
    (
        "auto",
        "complexity",
        ["cheap", "mid", "strong"],
        "easy prompts to the cheap tier, hard ones to the best",
    ),
    ("careful", "cascade", ["cheap", "strong"], ""),
    ("split", "weighted", ["cheap", "strong"], "a 70/30 trial of strong"),
    ("mirrored", "weighted", ["cheap"], "cheap, with a shadow candidate"),
    ("resilient", "cost", ["flaky", "mid"], ""),
    ("topic", "domain", ["strong", "mid", "cheap"], "code to strong, legal to mid"),
]
FIGURES = {  # route: (errors, cost_usd, escalated, fell_back)
    "auto": (1, 0.0412, 0, 2),
    "careful": (0, 0.0187, 10, 0),
    "split": (0, 0.0093, 0, 0),
    "mirrored": (0, 0.00021, 0, 0),
    "resilient": (2, 0.0031, 0, 7),
}


def route(name: str, strategy: str, configured: list[str], description: str) -> dict[str, Any]:
    """One route's totals, its split by model and by tier, and its rates, as the daemon sums them."""
    models: dict[str, int] = {}
    for hour in TRAFFIC.get(name, {}).values():
        for model, calls in hour.items():
            models[model] = models.get(model, 0) + calls
    calls = sum(models.values())
    errors, cost, escalated, fell_back = FIGURES.get(name, (0, 0.0, 0, 0))
    tiers = {TIERS[m]: n for m, n in models.items()} if strategy == "complexity" else {}
    return {
        "name": name, "strategy": strategy, "configured": configured, "description": description,
        "calls": calls, "errors": errors, "cost_usd": cost, "escalated": escalated, "fell_back": fell_back,
        "models": dict(sorted(models.items(), key=lambda item: -item[1])), "tiers": tiers,
        "escalation_rate": escalated / calls if calls else None,
        "fallback_rate": fell_back / calls if calls else None,
    }  # fmt: skip


def breaker(model: str, state: str = "closed", *, p50: float | None = None, p95: float | None = None,
            samples: int = 0, failures: int = 0, opened: int = 0, retry_in: float | None = None,
            error: str | None = None, changed: float | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "model": model, "provider": "openai", "enabled": True, "state": state, "failures": failures,
        "opened": opened, "retry_in_s": retry_in, "last_error": error, "changed_at": changed,
        "p50_ms": p50, "p95_ms": p95, "ttft_ms": None, "samples": samples,
    }  # fmt: skip


def shadow(n: int, ts: float, question: str, served: str, candidate: str | None, *, status: str = "ok",
           error: str | None = None, latency: float = 1180.0) -> dict[str, Any]:  # fmt: skip
    return {
        "id": n, "trace_id": f"tr_shadow{n:04d}", "ts": ts, "route": "mirrored",
        "shadow_model": "shadowy", "shadow_status": status, "shadow_error": error,
        "shadow_response": candidate, "shadow_latency_ms": latency,
        "shadow_tokens": 0 if candidate is None else 40 + n, "shadow_cost_usd": 0.0 if candidate is None else 0.000031,
        "served_model": "cheap", "served_response": served, "served_latency_ms": 412.0 + 10 * n,
        "served_tokens": 38 + n, "served_cost_usd": 0.0000089,
        "question": question,  # not in the daemon's answer: the trace's, for RecordedRouting's trace
    }  # fmt: skip


SHADOWS = [
    shadow(7, FROZEN_NOW - 240, "What is the capital of Australia?", "The capital of Australia is Canberra.",
           "Canberra is the capital of Australia, not Sydney as many assume."),
    shadow(6, FROZEN_NOW - 900, "Translate 'thank you' to German.", "Danke.", "Danke.", latency=960.0),
    shadow(5, FROZEN_NOW - 1800, "Summarise our refund policy in one line.",
           "Refunds within 30 days of purchase, with the receipt.", None, status="error",
           error="Upstream 'shadowy' timed out after 5.0 s.", latency=5003.0),
    shadow(4, FROZEN_NOW - 5400, "Is 1009 a prime number?", "Yes, 1009 is prime.",
           "Yes. 1009 has no divisor between 2 and 31, so it is prime.", latency=1420.0),
]  # fmt: skip

ROUTING_ANSWER: dict[str, Any] = {
    "object": "routing",
    "window": "today",
    "since": TODAY_UTC,
    "until": TODAY_UTC + 86_400,
    "bucket_seconds": HOUR,
    "routes": [route(*r) for r in ROUTES],
    "series": [
        {"t": TODAY_UTC + hour * HOUR, "route": name, "model": model, "calls": calls}
        for name, hours in TRAFFIC.items()
        for hour, models in sorted(hours.items())
        for model, calls in models.items()
    ],
    "breakers": [
        breaker("cheap", p50=380.0, p95=910.0, samples=50),
        breaker("mid", p50=820.0, p95=2240.0, samples=50),
        breaker(
            "strong",
            "half_open",
            p50=2310.0,
            p95=6480.0,
            samples=31,
            failures=3,
            opened=1,
            error="Upstream 'strong' answered HTTP 529: overloaded.",
            changed=FROZEN_NOW - 12,
        ),
        breaker("shadowy", p50=1180.0, p95=5003.0, samples=6),
        breaker(
            "flaky",
            "open",
            samples=3,
            p50=690.0,
            p95=700.0,
            failures=5,
            opened=2,
            retry_in=48.2,
            error="Upstream 'flaky' could not be reached (http://10.0.0.7:8000/v1): ConnectionRefusedError.",
            changed=FROZEN_NOW - 72,
        ),
    ],  # fmt: skip
    "shadow_totals": [
        {
            "route": "mirrored",
            "model": "shadowy",
            "calls": 7,
            "errors": 1,
            "cost_usd": 0.000186,
            "mean_latency_ms": 1604.0,
        }
    ],
    "shadows": [{k: v for k, v in s.items() if k != "question"} for s in SHADOWS],
}


def shadow_trace(trace_id: str) -> dict[str, Any] | None:
    """The served call of a recorded shadow, as GET /admin/traces/{id} answers (the fields the
    comparison reads)."""
    found = next((s for s in SHADOWS if s["trace_id"] == trace_id), None)
    if found is None:
        return None
    return {"id": trace_id, "request": {"messages": [{"role": "user", "content": found["question"]}]}}
