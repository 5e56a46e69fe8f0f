"""How a call names a prompt: `"prompt": {"name", "label" | "version", "variables"}` in the body
(the openai SDK's `extra_body`), or an `x-llmops-prompt` header: `summarize`, `summarize:staging`,
`summarize@3`, or the same JSON object. Pure."""

from __future__ import annotations

import re
from typing import Any

import orjson

from daemon.errors import InvalidRequest

HEADER = b"x-llmops-prompt"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<label>{_NAME})|@(?P<version>[0-9]{{1,9}}))?$")


def parse_reference(text: str) -> dict[str, Any]:
    """`name`, `name:label` or `name@version` -> the body's form."""
    found = _REFERENCE.match(text.strip())
    if found is None:
        raise InvalidRequest(
            f"Invalid prompt reference {text!r}: expected NAME, NAME:LABEL or NAME@VERSION.", param="prompt"
        )
    reference: dict[str, Any] = {"name": found["name"]}
    if found["label"]:
        reference["label"] = found["label"]
    if found["version"]:
        reference["version"] = int(found["version"])
    return reference


def from_header(value: bytes) -> dict[str, Any]:
    text = value.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The x-llmops-prompt header is not valid JSON.", param="prompt") from None
        return parsed if isinstance(parsed, dict) else {"name": parsed}
    return parse_reference(text)


def check(prompt: Any) -> None:
    """The body's `prompt`, checked for shape (whether it exists is the registry's question)."""
    if not isinstance(prompt, dict):
        raise InvalidRequest("Invalid 'prompt': expected an object with 'name'.", param="prompt")
    unknown = set(prompt) - {"name", "label", "version", "variables"}
    if unknown:
        raise InvalidRequest(
            f"Invalid 'prompt': unknown field(s) {', '.join(sorted(unknown))}.", param="prompt"
        )
    if not isinstance(prompt.get("name"), str) or not prompt["name"]:
        raise InvalidRequest("Invalid 'prompt.name': expected a non-empty string.", param="prompt.name")
    label, version = prompt.get("label"), prompt.get("version")
    if label is not None and version is not None:
        raise InvalidRequest("Give 'prompt.label' or 'prompt.version', not both.", param="prompt")
    if label is not None and not isinstance(label, str):
        raise InvalidRequest("Invalid 'prompt.label': expected a string.", param="prompt.label")
    if version is not None and (type(version) is not int or version < 1):
        raise InvalidRequest("Invalid 'prompt.version': expected an integer >= 1.", param="prompt.version")
    variables = prompt.get("variables", {})
    if not isinstance(variables, dict):
        raise InvalidRequest("Invalid 'prompt.variables': expected an object.", param="prompt.variables")
