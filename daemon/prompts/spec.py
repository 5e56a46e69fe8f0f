"""A prompt as written (a YAML file in the profile's prompt folder, or pushed through the API):
its name, messages with template variables, model parameters and description. Pure.

Its content hash is over what changes a call (messages, model, parameters, description), in a
canonical form, so saving the same content again is recognised and makes no new version.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLES = frozenset({"system", "developer", "user", "assistant"})
# What a prompt may set for its calls; the request's own values win over them (model aside).
PARAMS = frozenset({
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "presence_penalty",
    "frequency_penalty", "seed", "response_format",
})  # fmt: skip


class SpecError(ValueError):
    """The prompt cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class PromptSpec:
    name: str
    messages: tuple[tuple[str, str], ...]  # (role, template)
    model: str | None = None  # a model or route; None: the request's
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    labels: tuple[str, ...] = ()  # labels a new version of this file takes (not part of its content)

    def content(self) -> dict[str, Any]:
        """What a version is: everything but the labels."""
        return {
            "messages": [{"role": role, "content": text} for role, text in self.messages],
            "model": self.model,
            "params": self.params,
            "description": self.description,
        }

    def content_hash(self) -> str:
        encoded = orjson.dumps(self.content(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(encoded).hexdigest()

    def as_yaml(self) -> str:
        """The version as a person reads it (and as `diff` compares it): multi-line text as blocks."""
        shown = {"name": self.name, **{k: v for k, v in self.content().items() if v not in (None, {}, "")}}
        return yaml.dump(shown, Dumper=_Blocks, sort_keys=False, allow_unicode=True, width=100)


class _Blocks(yaml.SafeDumper):
    """Writes a string with line breaks as a `|` block, as the file's author would."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Blocks.add_representer(str, _text)


def parse(data: Any, source: str = "<prompt>") -> PromptSpec:
    """A prompt from its YAML (or JSON) mapping; SpecError names the field at fault."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a prompt is a mapping with name and messages")
    unknown = set(data) - {"name", "messages", "model", "params", "description", "labels"}
    if unknown:
        raise SpecError(f"{source}: unknown keys {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise SpecError(f"{source}: name: letters, digits, '_', '.', '-' (at most 64), got {name!r}")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise SpecError(f"{source}: messages: a non-empty list of {{role, content}}")
    parsed = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise SpecError(f"{source}: messages[{index}]: exactly role and content")
        role, content = message["role"], message["content"]
        if role not in ROLES or not isinstance(content, str):
            raise SpecError(f"{source}: messages[{index}]: role one of {sorted(ROLES)}, content a string")
        parsed.append((role, content))
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise SpecError(f"{source}: model: a model or route name")
    params = data.get("params") or {}
    if not isinstance(params, dict) or set(params) - PARAMS:
        raise SpecError(f"{source}: params: only {', '.join(sorted(PARAMS))}")
    labels = data.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) and NAME.match(x) for x in labels):
        raise SpecError(f"{source}: labels: a list of label names")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise SpecError(f"{source}: description: a string")
    return PromptSpec(name, tuple(parsed), model, dict(params), description, tuple(labels))


def parse_yaml(text: str, source: str = "<prompt>") -> PromptSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from None
    return parse(data, source)


def diff(old: PromptSpec, new: PromptSpec, old_name: str, new_name: str) -> str:
    """A unified diff of two versions as YAML."""
    lines = difflib.unified_diff(
        old.as_yaml().splitlines(keepends=True), new.as_yaml().splitlines(keepends=True), old_name, new_name
    )
    return "".join(lines)
