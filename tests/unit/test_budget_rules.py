"""Budget arithmetic, rate limits and caps as pure functions, with clocks the tests set."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from daemon import tokens
from daemon.budgets.book import BudgetBook, Subjects
from daemon.config.limits import BudgetsConfig
from daemon.core import budget
from daemon.core.budget import Limit, Standing, Window
from daemon.core.caps import Cap, apply_cap, tightest
from daemon.core.rate_limit import Gcra, openai_duration

PARIS = ZoneInfo("Europe/Paris")


def at(text: str, tz: ZoneInfo = PARIS) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", "2026-12-01 23:59:59", "2026-12-01 00:00", "2026-12-02 00:00"),
        ("day", "2026-12-02 00:00:00", "2026-12-02 00:00", "2026-12-03 00:00"),
        ("week", "2026-12-06 22:00:00", "2026-11-30 00:00", "2026-12-07 00:00"),  # Sunday: Monday's week
        ("month", "2026-12-31 23:30:00", "2026-12-01 00:00", "2027-01-01 00:00"),
        ("month", "2027-02-14 12:00:00", "2027-02-01 00:00", "2027-03-01 00:00"),
    ],
)
def test_windows_are_calendar_aligned_in_the_profiles_timezone(
    period: str, now: str, start: str, end: str
) -> None:
    found = budget.window(period, at(now), PARIS)  # type: ignore[arg-type]
    assert (found.start, found.end) == (at(start), at(end))


def test_a_day_crossing_midnight_in_paris_is_not_the_utc_day() -> None:
    # 23:30 UTC on Dec 1 is already Dec 2 in Paris: a new window there, still the old one in UTC.
    now = at("2026-12-01 23:30", ZoneInfo("UTC"))
    assert budget.window("day", now, PARIS).start == at("2026-12-02 00:00")
    assert budget.window("day", now, ZoneInfo("UTC")).start == at("2026-12-01 00:00", ZoneInfo("UTC"))


def test_a_dst_day_is_23_hours_long_and_windows_still_meet() -> None:
    spring = budget.window("day", at("2027-03-28 12:00"), PARIS)
    assert spring.end - spring.start == 23 * 3600
    assert budget.window("day", spring.end, PARIS).start == spring.end


def test_a_reset_restarts_the_current_window_only() -> None:
    now = at("2026-12-01 15:00")
    assert budget.window("day", now, PARIS, reset_at=at("2026-12-01 14:00")).start == at("2026-12-01 14:00")
    assert budget.window("day", now, PARIS, reset_at=at("2026-11-30 14:00")).start == at("2026-12-01 00:00")
    total = budget.window("total", now, PARIS, reset_at=at("2026-11-30 14:00"))
    assert (total.start, total.end) == (at("2026-11-30 14:00"), math.inf)


def test_the_worst_case_takes_the_dearest_candidate() -> None:
    need = budget.worst_case(125, 50, [(1.0, 2.0), (3.0, 1.0)])
    assert need.prompt_tokens == 125 and need.tokens == 175
    assert need.usd_nanos == max(125 * 1.0 + 50 * 2.0, 125 * 3.0 + 50 * 1.0) * 1000  # $/1M -> nanos
    assert budget.worst_case(10, 10, [(0.0, 0.0)]).usd_nanos == 0  # local models cost nothing


@pytest.mark.parametrize(
    "text",
    ["hello there", "Ünïcödé façade naïve", "日本語のテキストです", "emoji 🎉🎉🎉 party", "x" * 5000,
     "def f(x):\n    return x ** 2  # code\n", " ".join(str(n) for n in range(500))],
)  # fmt: skip
def test_the_byte_bound_is_never_below_a_tokenizers_count(text: str) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    assert tokens.bound_messages(messages) >= tokens.count_messages(messages)
    assert tokens.bound_input([text, text]) >= tokens.count_input([text, text])


def standing(usd: float | None = None, tokens: int | None = None, spent: int = 0, reserved: int = 0,
             spent_tokens: int = 0) -> Standing:  # fmt: skip
    limit = Limit("user:alice", "day", usd=usd, tokens=tokens)
    return Standing(limit, Window(0, 86_400), spent, spent_tokens, reserved, 0)


def test_a_budget_fits_exactly_to_the_nano_dollar() -> None:
    need = budget.worst_case(8, 92, [(1.0, 2.0)])  # (8 + 184) / 1e6 USD = 192,000 nanos
    assert standing(usd=0.000192 * 3, spent=192_000 * 2).fits(need)
    assert not standing(usd=0.000192 * 3, spent=192_000 * 2 + 1).fits(need)
    assert not standing(usd=0.000192 * 3, spent=192_000, reserved=192_001).fits(need)


def test_the_refusal_names_the_budget_and_what_would_fit() -> None:
    need = budget.worst_case(100, 1000, [(1.0, 2.0)])
    full = standing(usd=0.001, spent=600_000, reserved=100_000)
    smaller = budget.affordable_max_tokens([full], need)
    assert smaller == (300_000 - 100 * 1000) // 2000  # what is left, less the prompt, at $2/1M out
    message = budget.refusal(full, need, PARIS, now=3600, smaller=smaller)
    assert "the daily budget of user:alice (profile) is $0.001" in message
    assert "$0.0006 spent and $0.0001 reserved" in message
    assert "resets at 1970-01-02 01:00 CET (in 23 h 0 min)" in message  # the window ends at 00:00 UTC
    assert f"A max_tokens of {smaller} or less would fit now." in message
    assert budget.retry_after(full, need, now=3600) == 86_400 - 3600  # too big until the reset
    small = budget.worst_case(100, 100, [(1.0, 2.0)])  # 300,000 nanos
    busy = standing(usd=0.001, spent=600_000, reserved=200_000)
    assert not busy.fits(small)
    assert budget.retry_after(busy, small, now=3600) == 1  # fits once the calls in flight settle


def test_the_binding_budget_is_the_one_with_fewest_calls_left() -> None:
    need = budget.worst_case(10, 90, [(1.0, 1.0)])  # 100 tokens, 100,000 nanos
    roomy = standing(usd=1.0)  # 10,000 calls left
    tight = standing(tokens=1000, spent_tokens=500)  # 5 calls left
    said = budget.summary([roomy, tight], need)
    assert said.binding is tight.limit
    assert (said.remaining_nanos, said.remaining_tokens) == (1_000_000_000, 500)
    assert said.warning is None


def test_warnings_start_at_the_warning_share() -> None:
    assert budget.warning(standing(usd=1.0, spent=790_000_000)) is None
    assert budget.warning(standing(usd=1.0, spent=790_000_000, reserved=10_000_000)) == (
        "user:alice/day at 80% of $1.00"
    )


def test_the_book_lets_the_api_win_per_period_and_gives_the_default_to_everyone_else() -> None:
    config = BudgetsConfig.model_validate({
        "users": {"alice": [{"per": "day", "usd": 5}, {"per": "month", "usd": 50}]},
        "default": {"per": "day", "tokens": 1000},
        "teams": {"ml": {"per": "week", "usd": 100}},
    })  # fmt: skip
    book = BudgetBook(config, {"user:alice": [{"period": "day", "usd": 20, "tokens": None, "warn_at": None}]})
    alice = {(x.subject, x.period): x for x in book.for_call(Subjects(None, None, "alice", "ml"))}
    assert alice[("user:alice", "day")].usd == 20
    assert alice[("user:alice", "day")].source == "api (over the profile's $5.00)"
    assert alice[("user:alice", "month")].source == "profile"
    assert alice[("team:ml", "week")].usd == 100
    (bob,) = book.for_call(Subjects(None, None, "bob", None))
    assert (bob.subject, bob.tokens, bob.source) == ("user:bob", 1000, "profile default")


def test_gcra_holds_its_rate_within_tolerance() -> None:
    bucket = Gcra(120)  # 2 per second after a burst of 120
    now, allowed = 1000.0, 0
    for step in range(60 * 20):  # 10 minutes at 20 attempts per second
        t = now + step / 2 * 1.0 / 10
        if bucket.check(t).allowed:
            bucket.take(t)
            allowed += 1
    elapsed = (60 * 20 - 1) / 20
    assert allowed == pytest.approx(120 + elapsed * 2, abs=2)


def test_gcra_refuses_with_the_wait_and_gives_back_unused_tokens() -> None:
    bucket = Gcra(60)
    bucket.take(0.0, 60)
    refused = bucket.check(0.0, 1)
    assert not refused.allowed and refused.retry_after == pytest.approx(1.0)
    assert bucket.check(1.0, 1).allowed
    bucket.give_back(0.0, 30)
    assert bucket.check(0.0, 30).allowed and not bucket.check(0.0, 31).allowed
    assert math.isinf(Gcra(10).check(0.0, 11).retry_after)  # never fits


def test_openai_durations() -> None:
    assert [openai_duration(s) for s in (0.02, 1, 20, 60, 361.5)] == ["20ms", "1s", "20s", "1m0s", "6m1.5s"]


def test_caps_clip_set_a_default_and_keep_the_clients_field() -> None:
    cap = tightest([Cap(1000, "model gpt-4o"), Cap(200, "user alice")])
    assert cap == Cap(200, "user alice")
    body, note = apply_cap({"max_tokens": 4000}, cap, None)
    assert body["max_tokens"] == 200 and note == "clipped max_tokens 4000 -> 200 (cap of user alice)"
    body, note = apply_cap({"max_completion_tokens": 500}, cap, None)
    assert body == {"max_completion_tokens": 200}
    body, note = apply_cap({}, cap, 100)
    assert body == {"max_tokens": 100} and note == "set max_tokens 100 (the default)"
    body, note = apply_cap({}, cap, 300)
    assert body == {"max_tokens": 200}
    assert apply_cap({"max_tokens": 50}, cap, 100) == ({"max_tokens": 50}, None)
