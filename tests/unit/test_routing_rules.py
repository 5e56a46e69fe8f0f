"""Routing's pure rules: tiers, budget caps, weighted picks, domains, needs, the circuit breaker's
cycle on a clock the test controls, latency windows, confidence, and the profile's route checks."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from daemon.config.loader import ProfileError, parse_profile
from daemon.core import confidence, routing
from daemon.core.budget import worst_case
from daemon.core.health import Breaker, Health, Latencies, percentile

# --- tiers and budgets -----------------------------------------------------------------------


def test_a_score_falls_in_the_first_tier_whose_bound_it_is_under() -> None:
    bounds = [0.3, 0.7, None]
    assert [routing.tier_index(s, bounds) for s in (0.0, 0.29, 0.3, 0.69, 0.7, 1.0)] == [0, 0, 1, 1, 2, 2]


def test_a_low_budget_caps_the_tier_and_the_tightest_rule_wins() -> None:
    rules = [(0.5, 1), (0.2, 0)]  # below half: at most tier 1; below a fifth: tier 0
    assert routing.budget_cap(None, rules) is None
    assert routing.budget_cap(0.8, rules) is None
    assert routing.budget_cap(0.4, rules) == 1
    assert routing.budget_cap(0.1, rules) == 0


# --- weighted --------------------------------------------------------------------------------


def test_weighted_picks_follow_the_weights() -> None:
    draws = [i / 1000 for i in range(1000)]
    picks = Counter(routing.weighted_pick([70, 20, 10], d) for d in draws)
    assert picks == {0: 700, 1: 200, 2: 100}
    assert routing.weighted_pick([1, 0, 1], 0.99999999) == 2  # a zero weight is never picked


def test_the_sticky_hash_is_stable_and_spreads_users() -> None:
    assert routing.unit_hash("route", "alice") == routing.unit_hash("route", "alice")
    assert routing.unit_hash("route", "alice") != routing.unit_hash("other", "alice")
    values = [routing.unit_hash("r", f"user-{i}") for i in range(2000)]
    assert all(0 <= v < 1 for v in values)
    assert abs(sum(v < 0.3 for v in values) / 2000 - 0.3) < 0.04


# --- domains and needs -----------------------------------------------------------------------


def test_the_domain_is_the_one_with_most_cues() -> None:
    patterns = {d: routing.cue_pattern(routing.DOMAIN_CUES[d]) for d in ("code", "legal", "medical")}
    assert routing.domain_of("Why does my python function raise an exception?", patterns)[0] == "code"
    assert routing.domain_of("```\nx = f()\n```", patterns)[0] == "code"
    assert routing.domain_of("Can my landlord break the lease contract?", patterns)[0] == "legal"
    assert routing.domain_of("What dosage of ibuprofen is safe for back pain?", patterns)[0] == "medical"
    assert routing.domain_of("Tell me about the weather in spring.", patterns) == (None, 0)
    assert routing.domain_of("lawful", patterns)[0] is None  # whole words only


def test_a_request_names_what_it_needs_of_a_model() -> None:
    tool = {"type": "function", "function": {"name": "f"}}
    image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
    needs = routing.needs_of({"tools": [tool], "messages": [image]}, 100, 50)
    assert (needs.tokens, needs.tools, needs.vision, needs.json) == (150, True, True, False)
    assert needs.missing(frozenset({"tools", "json", "vision"}), 1000) is None
    assert needs.missing(frozenset({"tools", "json", "vision"}), 120) == "needs 150 tokens of context > 120"
    assert needs.missing(frozenset({"json"}), None) == "no tools"
    json_mode = routing.needs_of({"response_format": {"type": "json_schema"}, "messages": []}, 1, 1)
    assert json_mode.json and not json_mode.tools


def test_the_scored_text_is_the_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url"}]},
    ]
    assert routing.prompt_text(messages) == "second"
    assert routing.prompt_text([]) == ""


def test_unmeasured_models_come_first_then_the_fastest() -> None:
    assert routing.latency_order([120.0, None, 40.0, math.inf]) == [1, 2, 0, 3]


# --- the circuit breaker ---------------------------------------------------------------------


def test_the_breaker_opens_half_opens_and_closes_on_a_controlled_clock() -> None:
    b = Breaker(failures_to_open=3, base_cooldown=10, max_cooldown=25)
    for t in range(3):
        assert b.allow(t)
        b.failed(t, "503")
    assert b.state == "open" and b.retry_at == 12 and b.opened == 1
    assert not b.allow(11.9)
    assert b.allow(12) and b.state == "half_open"
    assert not b.allow(12.1)  # one probe at a time
    b.failed(13, "503 again")  # the probe fails: open again, for twice as long
    assert b.state == "open" and b.retry_at == 33
    assert b.allow(33)
    b.failed(34, "503")
    assert b.retry_at == 34 + 25  # capped by max_cooldown
    assert b.allow(59)
    b.succeeded(60)
    assert (b.state, b.failures, b.cooldown) == ("closed", 0, 0.0)
    b.failed(61, "x")
    assert b.state == "closed"  # counting starts over


def test_an_abandoned_probe_lets_the_next_call_probe() -> None:
    b = Breaker(failures_to_open=1, base_cooldown=1)
    b.failed(0, "x")
    assert b.allow(1) and not b.allow(1)
    b.abandoned()
    assert b.allow(1)


def test_without_a_profile_breaker_circuits_never_open_but_failures_are_counted() -> None:
    health = Health()
    for t in range(10):
        health.failed("m", t, "boom")
    assert health.allow("m", 10) and health.of("m").breaker.failures == 10
    health.configure(True, failures=2, cooldown=5)
    health.failed("m", 11, "boom")
    assert not health.allow("m", 12)
    assert health.retry_in(["m"], 12) == pytest.approx(4)
    health.configure(False)
    assert health.allow("m", 12)


def test_latency_figures_follow_the_recent_window() -> None:
    window = Latencies(size=10)
    for _ in range(10):
        window.add(10.0, 2.0)
    assert window.figures()["p95"] == 10.0
    window.add(500.0)  # one slow call of the last ten is their p95
    assert window.figures()["p95"] == 500.0 and window.figures()["p50"] == 10.0
    for _ in range(10):
        window.add(10.0)
    assert window.figures()["p95"] == 10.0  # and it leaves the window
    assert window.figures()["ttft"] == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


# --- confidence ------------------------------------------------------------------------------


def test_confidence_is_the_geometric_mean_of_token_probabilities() -> None:
    assert confidence.from_logprobs([math.log(0.9), math.log(0.4)]) == pytest.approx(0.6)
    assert confidence.from_probabilities([0.5, 0.5]) == pytest.approx(0.5)
    assert confidence.from_logprobs([]) is None
    choice = {"logprobs": {"content": [{"logprob": -0.1}, {"logprob": -0.3}]}}
    assert confidence.of_openai_logprobs(choice) == pytest.approx(math.exp(-0.2))
    assert confidence.of_openai_logprobs({"logprobs": None}) is None


def test_without_probabilities_the_text_says_how_sure_the_model_was() -> None:
    plain = confidence.from_text("Paris is the capital of France.", "stop")
    assert plain == confidence.PLAIN_TEXT
    assert confidence.from_text("", "stop") == 0
    assert confidence.from_text("I'm not sure, but maybe Lyon.", "stop") < plain
    assert confidence.from_text("Paris is the capital of", "length") < plain


def test_a_cascade_reserves_the_sum_of_its_models() -> None:
    one = worst_case(100, 50, [(1.0, 2.0), (5.0, 10.0)])
    both = worst_case(100, 50, [(1.0, 2.0), (5.0, 10.0)], summed=True)
    assert one.usd_nanos == math.ceil((100 * 5 + 50 * 10) * 1000)
    assert both.usd_nanos == math.ceil((100 * 1 + 50 * 2 + 100 * 5 + 50 * 10) * 1000)
    assert (one.tokens, both.tokens) == (150, 300)


# --- the profile's routes --------------------------------------------------------------------

MODELS = """
models:
  a: {provider: openai, base_url: "http://127.0.0.1:9"}
  b: {provider: openai, base_url: "http://127.0.0.1:9"}
  e: {provider: openai, base_url: "http://127.0.0.1:9", embedding: true}
"""


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ("r: {strategy: cascade, models: [a, missing]}", "routes.r: 'missing' is not a chat model of models"),
        ("r: {strategy: cost, models: [a, e]}", "routes.r: 'e' is not a chat model of models"),
        ("a: {strategy: cost, models: [b]}", "routes.a: a model has this name already"),
        ("r: {strategy: weighted, weights: {a: 0}}", "weights: must be >= 0 and not all 0"),
        (
            "r: {strategy: complexity, tiers: [{name: x, models: [a], below: 0.7}, "
            "{name: y, models: [b], below: 0.3}, {name: z, models: [b]}]}",
            "`below` must rise",
        ),
        (
            "r: {strategy: complexity, tiers: [{name: x, models: [a]}, {name: y, models: [b]}]}",
            "every tier but the last needs `below`",
        ),
        (
            "r: {strategy: complexity, tiers: [{name: x, models: [a], below: 0.5}, {name: y, models: [b]}], "
            "budget_tiers: [{remaining_below: 0.2, tier: nope}]}",
            "'nope' is not one of this route's tiers",
        ),
        ("r: {strategy: domain, domains: {astrology: [a]}, default: [b]}", "'astrology' is not built in"),
        ("r: {strategy: cost, models: [a], shadow: {model: nope}}", "'nope' is not a chat model"),
        ("r: {strategy: cost, models: [a], tiers: []}", "unknown key"),
    ],
)
def test_an_invalid_route_is_rejected_with_its_path(routes: str, message: str) -> None:
    text = MODELS + "routes:\n  " + routes + "\n"
    with pytest.raises(ProfileError) as raised:
        parse_profile(text)
    assert message in str(raised.value)


def test_model_fallbacks_must_be_other_models_of_the_same_kind() -> None:
    text = MODELS.replace('a: {provider: openai, base_url: "http://127.0.0.1:9"}',
                          'a: {provider: openai, base_url: "http://127.0.0.1:9", fallbacks: [e]}')  # fmt: skip
    with pytest.raises(ProfileError) as raised:
        parse_profile(text)
    assert "models.a.fallbacks: 'e' is not another a chat model" in str(raised.value)


def test_a_route_can_be_the_default_model_and_a_cache_or_cap_target() -> None:
    text = MODELS + "default_model: r\ncache: {models: [r]}\ncaps: {models: {r: 10}}\n"
    text += "routes:\n  r: {strategy: cost, models: [a, b]}\n"
    assert parse_profile(text).default_model == "r"


def test_a_scorer_file_that_cannot_be_read_keeps_the_old_profile(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = MODELS + (
        "routes:\n  r: {strategy: complexity, scorer: nowhere.json, tiers: [{name: x, models: [a], below: 0.5},"
        " {name: y, models: [b]}]}\n"
    )
    with pytest.raises(ProfileError) as raised:
        parse_profile(text, source=str(tmp_path / "profile.yaml"))
    assert "routes.r.scorer: cannot read" in str(raised.value)


def test_a_rating_labels_a_call_only_where_it_says_something() -> None:
    from daemon.routing.from_traces import label

    assert label(True, "stars", 5) == (True, True)  # the cheap tier did the job
    assert label(True, "thumbs", -1) == (False, True)  # it fell short: the prompt needed more
    assert label(True, "stars", 3) is None  # neither
    assert label(False, "stars", 5) is None  # a dear tier's good answer: the cheap one unknown
    assert label(False, "thumbs", -1) == (False, False)  # no tier handled it
