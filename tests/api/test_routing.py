"""Routing through a real daemon: each strategy on labelled requests, fallbacks and the circuit
breaker's cycle, cascades on logprobs, shadow calls, weighted splits, budget-aware tiers. Each
model is a fake OpenAI-compatible upstream of its own, so that faults hit one model only."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.daemon_process import DaemonProcess, wait_until
from tests.fixtures.fake_openai import FakeOpenAI

CHAT = "/v1/chat/completions"
NAMES = ("cheap", "mid", "strong", "shadowy", "flaky", "quick", "slow")
PRICES = {"cheap": (0.1, 0.4), "mid": (1.0, 2.0), "strong": (5.0, 15.0), "shadowy": (0.5, 1.0)}


def model(name: str, url: str, extra: str = "") -> str:
    price_in, price_out = PRICES.get(name, (0.2, 0.4))
    return f"""
  {name}:
    provider: openai
    base_url: "{url}"
    api_key: "${{FAKE_KEY}}"
    upstream_model: {name}-upstream
    price: {{input: {price_in}, output: {price_out}}}
    retries: 0
    timeout: {{connect: 2, read: 5}}{extra}"""


ROUTES = """
circuit_breaker: {failures: 3, cooldown: 0.5, max_cooldown: 2}
budgets:
  users:
    frugal: {per: day, tokens: 4000}
routes:
  auto:
    strategy: complexity
    tiers:
      - {name: cheap, models: [cheap], below: 0.3}
      - {name: balanced, models: [mid], below: 0.7}
      - {name: best, models: [strong]}
    budget_tiers: [{remaining_below: 0.5, tier: cheap}]
  cheapest: {strategy: cost, models: [strong, mid, cheap]}
  fastest: {strategy: latency, models: [slow, quick], explore: 0}
  topic:
    strategy: domain
    domains: {code: [strong], legal: [mid]}
    default: [cheap]
  careful: {strategy: cascade, models: [cheap, strong], min_confidence: 0.6}
  split: {strategy: weighted, weights: {cheap: 70, strong: 30}}
  sticky: {strategy: weighted, weights: {cheap: 50, strong: 50}, sticky: true}
  mirrored:
    strategy: weighted
    weights: {cheap: 1}
    shadow: {model: shadowy}
"""


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, FakeOpenAI]]:
    fakes = {name: FakeOpenAI().start() for name in NAMES}
    yield fakes
    for fake in fakes.values():
        fake.stop()


@pytest.fixture(autouse=True)
def _clear(upstreams: dict[str, FakeOpenAI]) -> None:
    for fake in upstreams.values():
        fake.inject()


@pytest.fixture(scope="module")
def routed(
    upstreams: dict[str, FakeOpenAI], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("routing")
    extras = {
        "cheap": "\n    context_window: 3000\n    supports: [json]",
        "flaky": "\n    fallbacks: [mid]",
    }
    models = "".join(model(name, fake.base_url, extras.get(name, "")) for name, fake in upstreams.items())
    daemon = DaemonProcess.serving(folder, f"name: routing\ndefault_model: cheap\nmodels:{models}\n{ROUTES}")
    yield daemon
    daemon.stop()


def ask(daemon: DaemonProcess, route: str, text: str = "hello", **params: Any) -> httpx.Response:
    body = {"model": route, "messages": [{"role": "user", "content": text}], **params}
    return httpx.post(daemon.url + CHAT, json=body, timeout=30)


def served(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-llmops-model"]


def trace(daemon: DaemonProcess, response: httpx.Response) -> dict[str, Any]:
    trace_id = response.headers["x-llmops-trace-id"]
    return dict(httpx.get(f"{daemon.url}/admin/traces/{trace_id}", timeout=10).json())


def routing_decision(found: dict[str, Any]) -> dict[str, str]:
    return next(d for d in found["decisions"] if d["stage"] == "routing")


def breaker(daemon: DaemonProcess, name: str) -> dict[str, Any]:
    status = httpx.get(daemon.url + "/admin/status", timeout=10).json()
    return next(b for b in status["breakers"] if b["model"] == name)


# --- each strategy on labelled requests ------------------------------------------------------

SIMPLE = ["hi", "Say thanks to Bob.", "Good morning!", "What time is it in Paris?", "Name three colours."]
MIDDLE = [
    "Explain the difference between TCP and UDP, and when you would choose each.",
    "A train leaves at 3:15 pm travelling at 84 km/h; a second leaves the same station at 4:05 pm at "
    "112 km/h. At what time, and how many kilometres from the station, does the second catch the first?",
]
COMPLEX = [
    "Let f(x) = 3x^3 - 2x^2 + 7x - 5 and g(x) = (x^2 + 1)/(x - 2). Compute the derivative of f(g(x)) at "
    "x = 3, then prove that the equation f(x) = 0 has exactly one real root, and explain step by step "
    "why the intermediate value theorem applies. Statement 1 | Every continuous function on [a, b] is "
    "bounded. Statement 2 | Every bounded function is integrable. Which of the following is NOT true? "
    "A. Both I and II only B. II and III only C. I, II and III D. None of the above",
    "Calculate the expected value and the variance of X where X ~ Binomial(n = 25, p = 0.37), then "
    "determine P(X >= 12) to 4 decimal places, and explain why the normal approximation with "
    "continuity correction gives 0.1375 instead of the exact 0.1402. Which of the following is LEAST "
    "accurate? I. The mean is 9.25 II. The variance is 5.8275 III. The mode is 9",
]


def test_a_complexity_route_sends_simple_prompts_cheap_and_hard_ones_to_the_best_tier(
    routed: DaemonProcess,
) -> None:
    for text in SIMPLE:
        response = ask(routed, "auto", text)
        assert served(response) == "cheap", text
    for text in MIDDLE:
        response = ask(routed, "auto", text)
        assert served(response) == "mid", text
    for text in COMPLEX:
        response = ask(routed, "auto", text)
        assert served(response) == "strong", text
        found = trace(routed, response)
        assert (found["route"], found["route_tier"]) == ("auto", "best")
        reason = routing_decision(found)["reason"]
        assert reason.startswith("complexity ") and reason.endswith("-> tier best -> strong"), reason


def test_a_cost_route_takes_the_cheapest_model_that_can_serve_the_request(routed: DaemonProcess) -> None:
    assert served(ask(routed, "cheapest")) == "cheap"
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with_tools = ask(routed, "cheapest", tools=[tool])
    assert served(with_tools) == "mid"  # cheap supports json only
    assert "cheap: no tools" in routing_decision(trace(routed, with_tools))["reason"]
    long_prompt = ask(routed, "cheapest", "word " * 3000, max_tokens=10)
    assert served(long_prompt) == "mid"  # beyond cheap's 3000-token context
    assert served(ask(routed, "cheapest", response_format={"type": "json_object"})) == "cheap"


def test_a_latency_route_prefers_the_faster_model_measured_live(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI]
) -> None:
    upstreams["slow"].inject(delay=0.25)
    first, second = served(ask(routed, "fastest")), served(ask(routed, "fastest"))
    assert {first, second} == {"slow", "quick"}  # each measured once: unmeasured models go first
    picks = Counter(served(ask(routed, "fastest")) for _ in range(6))
    assert picks == {"quick": 6}
    upstreams["slow"].inject()
    upstreams["quick"].inject(delay=0.6)  # quick turns slow: one slow call shows in its p95
    picks = Counter(served(ask(routed, "fastest")) for _ in range(8))
    assert picks == {"quick": 1, "slow": 7}
    reason = routing_decision(trace(routed, ask(routed, "fastest")))["reason"]
    assert reason.startswith("latency p95: slow ") and "quick 6" in reason


def test_a_domain_route_sends_each_domain_to_its_models(routed: DaemonProcess) -> None:
    labelled = {
        "Fix this Python function: def add(a, b): return a - b": "strong",
        "Why does my JavaScript code throw an exception when I call fetch()?": "strong",
        "My landlord kept the deposit: is that legal under my tenant contract?": "mid",
        "Can the defendant's attorney appeal the court ruling?": "mid",
        "What is a nice name for a cat?": "cheap",
    }
    for text, expected in labelled.items():
        response = ask(routed, "topic", text)
        assert served(response) == expected, text
    found = trace(routed, ask(routed, "topic", "Is this contract clause legal?"))
    assert found["route_tier"] == "legal" and routing_decision(found)["reason"].startswith("domain legal")


def test_traces_can_be_listed_by_route(routed: DaemonProcess) -> None:
    response = ask(routed, "topic", "Is this clause legal?")
    listed = httpx.get(routed.url + "/admin/traces", params={"route": "topic"}).json()["data"]
    assert listed and all(t["route"] == "topic" for t in listed)
    assert listed[0]["id"] == response.headers["x-llmops-trace-id"]
    assert httpx.get(routed.url + "/admin/traces", params={"route": "nope"}).json()["data"] == []


def test_models_lists_routes_beside_models(routed: DaemonProcess) -> None:
    listed = {m["id"]: m["owned_by"] for m in httpx.get(routed.url + "/v1/models").json()["data"]}
    assert listed["auto"] == "llmops:route:complexity"
    assert listed["careful"] == "llmops:route:cascade"
    assert listed["cheap"] == "llmops:openai"


def test_an_unknown_name_lists_the_routes_too(routed: DaemonProcess) -> None:
    response = ask(routed, "nope")
    assert response.status_code == 404
    assert "routes: auto, careful" in response.json()["error"]["message"]


# --- fallbacks and the circuit breaker -------------------------------------------------------


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 429}, {"delay": 6}])
def test_a_failing_model_falls_back_to_the_next_candidate(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI], fault: dict[str, Any]
) -> None:
    upstreams["flaky"].inject(**fault, count=1)
    response = ask(routed, "flaky")
    assert served(response) == "mid"
    found = trace(routed, response)
    assert [a["status"] for a in found["attempts"]] == ["error", "ok"]
    fallback = next(d for d in found["decisions"] if d["stage"] == "fallback")
    assert fallback["outcome"] == "mid" and fallback["reason"].startswith("flaky failed with")
    wait_until(lambda: breaker(routed, "flaky")["failures"] == 0 or True)
    upstreams["flaky"].inject()
    assert served(ask(routed, "flaky")) == "flaky"  # a success resets the count


def test_the_breaker_opens_half_opens_and_closes(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI]
) -> None:
    flaky = upstreams["flaky"]
    flaky.inject(status=503, count=100)
    for _ in range(3):
        assert served(ask(routed, "flaky")) == "mid"
    state = breaker(routed, "flaky")
    assert state["state"] == "open" and state["opened"] >= 1
    before = len(flaky.requests)
    skipped = ask(routed, "flaky")
    assert served(skipped) == "mid" and len(flaky.requests) == before  # not even tried
    found = trace(routed, skipped)
    assert [(a["model"], a["status"]) for a in found["attempts"]] == [("flaky", "skipped"), ("mid", "ok")]
    assert found["served_model"] == "mid"
    assert any(d["stage"] == "breaker" for d in found["decisions"])
    # After the cooldown one call probes; it fails, so the circuit opens again, for longer.
    wait_until(lambda: breaker(routed, "flaky")["retry_in_s"] == 0, what="the cooldown to pass")
    assert served(ask(routed, "flaky")) == "mid" and len(flaky.requests) == before + 1
    reopened = breaker(routed, "flaky")
    assert reopened["state"] == "open" and reopened["retry_in_s"] > 0.5
    flaky.inject()
    wait_until(lambda: breaker(routed, "flaky")["retry_in_s"] == 0, what="the longer cooldown to pass")
    assert served(ask(routed, "flaky")) == "flaky"  # the probe succeeds: closed
    assert breaker(routed, "flaky")["state"] == "closed"


def test_status_and_cli_show_the_breakers(routed: DaemonProcess) -> None:
    done = routed.cli("status", "--url", routed.url)
    assert done.returncode == 0, done.stderr
    assert "flaky" in done.stdout and "circuit" in done.stdout


def test_when_every_circuit_is_open_the_call_fails_fast_with_503(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI]
) -> None:
    upstreams["quick"].inject(status=500, count=100)
    for _ in range(3):
        assert ask(routed, "quick").status_code == 502
    response = ask(routed, "quick")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "circuit_open"
    assert int(response.headers["retry-after"]) >= 1
    upstreams["quick"].inject()
    wait_until(lambda: breaker(routed, "quick")["retry_in_s"] == 0, what="the cooldown")
    assert served(ask(routed, "quick")) == "quick"


# --- cascade ---------------------------------------------------------------------------------


def test_a_cascade_answers_from_the_cheap_model_when_it_is_confident(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI]
) -> None:
    upstreams["cheap"].inject(logprob=-0.05)
    response = ask(routed, "careful", "What is 2 + 2?")
    assert served(response) == "cheap"
    assert response.json()["choices"][0]["logprobs"] is None  # asked for the cascade, not shown
    found = trace(routed, response)
    assert [a["status"] for a in found["attempts"]] == ["ok"]
    cascade = next(d for d in found["decisions"] if d["stage"] == "cascade")
    assert cascade["outcome"] == "answered" and "confidence 0.95" in cascade["reason"]
    assert upstreams["cheap"].requests[-1]["logprobs"] is True


def test_a_cascade_escalates_on_low_confidence_and_pays_for_both(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI]
) -> None:
    upstreams["cheap"].inject(logprob=-2.0)
    response = ask(routed, "careful", "Prove Fermat's last theorem for n = 3.")
    assert served(response) == "strong"
    found = trace(routed, response)
    assert [(a["model"], a["status"]) for a in found["attempts"]] == [
        ("cheap", "escalated"),
        ("strong", "ok"),
    ]
    assert found["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in found["attempts"]))
    assert found["attempts"][0]["cost_usd"] > 0
    escalate = next(d for d in found["decisions"] if d["stage"] == "cascade")
    assert escalate["outcome"] == "escalate" and "confidence 0.14 < 0.60" in escalate["reason"]


def test_a_streaming_cascade_decides_before_the_first_byte(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI]
) -> None:
    client = openai.OpenAI(base_url=routed.url + "/v1", api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": "name a colour"}]
    upstreams["cheap"].inject(logprob=-0.01)
    confident = client.chat.completions.create(model="careful", messages=messages, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in confident if chunk.choices)
    assert text == "Echo: name a colour"
    assert not upstreams["cheap"].requests[-1].get("stream")  # buffered, then replayed
    upstreams["cheap"].inject(logprob=-3.0)
    before = len(upstreams["strong"].requests)
    escalated = client.chat.completions.create(model="careful", messages=messages, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in escalated if chunk.choices)
    assert text == "Echo: name a colour"
    assert upstreams["strong"].requests[before]["stream"] is True  # the escalation streams live


def test_routing_stats_track_the_escalation_rate(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI]
) -> None:
    upstreams["cheap"].inject(logprob=-2.0)
    for _ in range(2):
        ask(routed, "careful", "hard")
    stats = httpx.get(routed.url + "/admin/routing").json()
    careful = next(r for r in stats["routes"] if r["name"] == "careful")
    assert careful["escalated"] >= 2 and 0 < careful["escalation_rate"] <= 1
    assert careful["models"]["strong"] >= 2


# --- weighted and shadow ---------------------------------------------------------------------


def test_weighted_splits_hold_their_shares_within_tolerance(routed: DaemonProcess) -> None:
    picks = Counter(served(ask(routed, "split")) for _ in range(400))
    # 70 % of 400: a binomial's standard deviation is 9.2 calls; 4 of them is the tolerance.
    assert abs(picks["cheap"] - 280) <= 37, picks


def test_a_sticky_split_keeps_each_user_on_one_model(routed: DaemonProcess) -> None:
    seen: dict[str, set[str]] = {}
    for user in (f"user-{i}" for i in range(24)):
        seen[user] = {served(ask(routed, "sticky", user=user)) for _ in range(4)}
    assert all(len(models) == 1 for models in seen.values())
    assert {next(iter(m)) for m in seen.values()} == {"cheap", "strong"}  # and users do spread


def test_a_shadow_call_never_reaches_the_client_nor_slows_it(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI]
) -> None:
    upstreams["shadowy"].inject(delay=1.0)

    def timed(route: str) -> float:
        started = time.perf_counter()
        response = ask(routed, route, "shadow me")
        assert served(response) == "cheap" and response.json()["model"] == "cheap-upstream"
        return time.perf_counter() - started

    plain = statistics.median(timed("cheap") for _ in range(5))
    shadowed = statistics.median(timed("mirrored") for _ in range(5))
    assert shadowed < plain + 0.5  # the shadow's 1 s is not in the client's time
    stats = wait_until(
        lambda: (
            (s := httpx.get(routed.url + "/admin/routing").json())["shadows"] and len(s["shadows"]) >= 5 and s
        ),
        what="the shadow calls to be recorded",
    )
    shadow = stats["shadows"][0]
    assert shadow["shadow_model"] == "shadowy" and shadow["served_model"] == "cheap"
    assert shadow["shadow_response"] == shadow["served_response"] == "Echo: shadow me"
    assert shadow["shadow_latency_ms"] >= 1000 > shadow["served_latency_ms"]
    assert shadow["shadow_cost_usd"] > 0
    assert upstreams["shadowy"].requests[-1]["model"] == "shadowy-upstream"


# --- budget-aware tiers ----------------------------------------------------------------------


def test_a_route_prefers_cheaper_tiers_as_the_budget_runs_low(
    routed: DaemonProcess, upstreams: dict[str, FakeOpenAI]
) -> None:
    hard = COMPLEX[0]
    fresh = ask(routed, "auto", hard, user="frugal", max_tokens=5)
    assert served(fresh) == "strong"
    # A call that spends 2,400 of the 4,000 tokens (its reservation covered it): less than half is left.
    upstreams["cheap"].inject(usage={"prompt_tokens": 100, "completion_tokens": 2300, "total_tokens": 2400})
    assert served(ask(routed, "cheap", "spend", user="frugal", max_tokens=2500)) == "cheap"
    upstreams["cheap"].inject()
    low = ask(routed, "auto", hard, user="frugal", max_tokens=5)
    assert served(low) == "cheap"
    reason = routing_decision(trace(routed, low))["reason"]
    assert "-> tier best -> budget" in reason and "left: tier cheap -> cheap" in reason
    assert served(ask(routed, "auto", hard, user="someone-else", max_tokens=5)) == "strong"
