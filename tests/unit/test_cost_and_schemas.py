from __future__ import annotations

import pytest

from daemon.api.schemas import validate_chat, validate_embeddings
from daemon.core.cost import UnitPrice, Usage, cost_usd, reference_price
from daemon.errors import InvalidRequest


def test_cost_with_cached_rate() -> None:
    price = UnitPrice(input=2.0, output=8.0, cached_input=0.5)
    usage = Usage(prompt_tokens=1_000, completion_tokens=500, cached_tokens=400)
    assert cost_usd(usage, price) == pytest.approx((600 * 2.0 + 400 * 0.5 + 500 * 8.0) / 1e6)


def test_cached_tokens_without_cached_rate_bill_as_input() -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=0, cached_tokens=100)
    assert cost_usd(usage, UnitPrice(1.0, 1.0)) == pytest.approx(100 / 1e6)


def test_no_price_is_free() -> None:
    assert cost_usd(Usage(10, 10), None) == 0.0


def test_reference_prices() -> None:
    assert reference_price("gpt-4o-mini") == UnitPrice(0.15, 0.60, 0.075)
    assert reference_price("unknown") is None


def test_valid_chat_keeps_unknown_fields() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "vendor": {"a": 1}, "n": 1}
    assert validate_chat(body) is body


def test_assistant_may_have_null_content_with_tool_calls() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "tool", "content": "x"},
        ],
    }
    assert validate_chat(body) is body
    with pytest.raises(InvalidRequest) as caught:  # a user's message may not be null
        validate_chat({"model": "m", "messages": [{"role": "user", "content": None}]})
    assert caught.value.param == "messages[0].content"


def test_model_is_optional_but_a_string() -> None:
    """Without it the profile's default_model serves (the gateway decides)."""
    body = {"messages": [{"role": "user", "content": "x"}]}
    assert validate_chat(body) is body
    with pytest.raises(InvalidRequest) as caught:
        validate_chat({**body, "model": ""})
    assert caught.value.param == "model"


@pytest.mark.parametrize("value", [True, 1.5, "3"])
def test_max_tokens_must_be_an_integer(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_chat({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": value})
    assert caught.value.param == "max_tokens"


@pytest.mark.parametrize("value", ["text", ["a", "b"], [1, 2, 3], [[1, 2]]])
def test_embedding_inputs(value: object) -> None:
    body = {"model": "m", "input": value}
    assert validate_embeddings(body) is body


@pytest.mark.parametrize("value", ["", [], [1, "a"], {"a": 1}])
def test_bad_embedding_inputs(value: object) -> None:
    with pytest.raises(InvalidRequest):
        validate_embeddings({"model": "m", "input": value})
