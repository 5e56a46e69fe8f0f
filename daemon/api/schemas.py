"""Validation of OpenAI request bodies: plain dicts in, plain dicts out, errors that name the field.

Fields we do not know are kept: remote providers receive them as the client sent them.
"""

from __future__ import annotations

from typing import Any

from daemon.errors import InvalidRequest
from daemon.prompts import reference

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def _fail(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{param}': {message}", param=param)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, f"expected a number, got {type(value).__name__}.")
    if not low <= value <= high:
        raise _fail(name, f"must be between {low:g} and {high:g}, got {value}.")


def _integer(body: dict[str, Any], name: str, low: int, high: int | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, f"expected an integer, got {type(value).__name__}.")
    if value < low or (high is not None and value > high):
        raise _fail(
            name, f"must be at least {low}" + (f" and at most {high}" if high else "") + f", got {value}."
        )


def _boolean(body: dict[str, Any], name: str) -> None:
    if body.get(name) is not None and not isinstance(body[name], bool):
        raise _fail(name, f"expected a boolean, got {type(body[name]).__name__}.")


def _model(body: dict[str, Any]) -> None:
    """Optional: without it the profile's default_model serves (the gateway says so if none is set)."""
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise _fail("model", "expected a non-empty string.")


def _messages(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if messages is None:
        raise _fail("messages", "this field is required.")
    if not isinstance(messages, list) or not messages:
        raise _fail("messages", "expected a non-empty array of messages.")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _fail(where, "expected an object with 'role' and 'content'.")
        role = message.get("role")
        if role not in ROLES:
            raise _fail(f"{where}.role", f"expected one of {', '.join(sorted(ROLES))}, got {role!r}.")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _fail(f"{where}.content", "expected a string or an array of content parts.")
        if content is None and role != "assistant":
            raise _fail(f"{where}.content", "this field is required.")


def validate_chat(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    _model(body)
    if "prompt" in body:  # its messages come first; the call's own are optional
        reference.check(body["prompt"])
        if body.get("messages") not in (None, []):
            _messages(body)
    else:
        _messages(body)
    _boolean(body, "stream")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    _integer(body, "max_tokens", 1)
    _integer(body, "max_completion_tokens", 1)
    _integer(body, "seed", -(2**63), 2**64)
    _integer(body, "n", 1)
    if body.get("n", 1) != 1:
        raise _fail("n", "only n=1 is supported.")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4)
    ):
        raise _fail("stop", "expected a string or an array of at most 4 strings.")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _fail("stream_options", "expected an object.")
        if not body.get("stream"):
            raise _fail("stream_options", "only allowed when 'stream' is true.")
        if options.get("include_usage") is not None and not isinstance(options["include_usage"], bool):
            raise _fail("stream_options.include_usage", "expected a boolean.")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict)
        or response_format.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise _fail("response_format", "expected {'type': 'text' | 'json_object' | 'json_schema'}.")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _fail("tools", "expected an array of tools.")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise _fail("user", "expected a string.")
    return body


def validate_embeddings(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    _model(body)
    value = body.get("input")
    if value is None:
        raise _fail("input", "this field is required.")
    ok = (isinstance(value, str) and value) or (
        isinstance(value, list)
        and value
        and (
            all(isinstance(v, str) for v in value)
            or all(isinstance(v, int) for v in value)
            or all(isinstance(v, list) for v in value)
        )
    )
    if not ok:
        raise _fail("input", "expected a non-empty string or array of strings.")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise _fail("encoding_format", "expected 'float' or 'base64'.")
    return body
