"""A model's default request parameters fill what a request leaves unset, and never more."""

from __future__ import annotations

from daemon.core.request import with_defaults

DEFAULTS = {"max_tokens": 256, "stop": ["\n\n\n"], "temperature": 0.3}


def test_unset_parameters_get_the_defaults() -> None:
    body = {"messages": []}
    assert with_defaults(body, DEFAULTS) == {"messages": [], **DEFAULTS}
    assert body == {"messages": []}  # the request itself is untouched


def test_the_requests_own_values_win() -> None:
    body = {"messages": [], "max_tokens": 8, "stop": None, "temperature": 0}
    assert with_defaults(body, DEFAULTS) == {
        "messages": [],
        "max_tokens": 8,
        "stop": ["\n\n\n"],
        "temperature": 0,
    }


def test_max_completion_tokens_is_a_cap_too() -> None:
    body = {"messages": [], "max_completion_tokens": 8}
    assert "max_tokens" not in with_defaults(body, DEFAULTS)


def test_nothing_to_add_returns_the_same_body() -> None:
    body = {"messages": [], **DEFAULTS}
    assert with_defaults(body, DEFAULTS) is body
