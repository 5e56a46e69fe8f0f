"""What makes two chat requests the same for the cache: a namespace (who may share an answer, and
for which model) and a hash of everything else that changes the answer. Pure."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson

from daemon.core.principal import Principal
from daemon.core.request import user_texts

Scope = Literal["key", "user", "team", "global"]

# Fields that do not change what a model answers: how it is delivered, and who asked (the
# namespace says who may share). Everything else, unknown vendor fields included, is in the key.
NOT_IN_KEY = frozenset({"model", "stream", "stream_options", "user", "metadata", "store", "service_tier"})


def namespace(scope: Scope, principal: Principal, model: str) -> str:
    """Entries are shared only inside a namespace: a tenant (per the profile's scope) and a model.
    A key without a team shares within its user, never with everyone."""
    if scope == "global":
        who = "*"
    elif scope == "key":
        who = f"key:{principal.key_id or 'local'}"
    elif scope == "team" and principal.team is not None:
        who = f"team:{principal.team}"
    else:
        who = f"user:{principal.user}"
    return f"{who}|{model}"


def exact_key(space: str, body: dict[str, Any]) -> str:
    """The hex sha-256 of the namespace and the request's normalized, output-changing fields."""
    material = {name: value for name, value in body.items() if name not in NOT_IN_KEY}
    if "max_completion_tokens" in material:  # two names for one cap
        material["max_tokens"] = material.pop("max_completion_tokens")
    if isinstance(material.get("stop"), str):
        material["stop"] = [material["stop"]]
    encoded = orjson.dumps([space, material], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()


def question_of(body: dict[str, Any]) -> str:
    """The last user message's text: what a cache view shows of an entry, and what is embedded."""
    texts = user_texts(body, separator=" ")
    return texts[-1] if texts else ""


def semantic_space(space: str, body: dict[str, Any]) -> str:
    """The namespace of a match by meaning: the exact namespace and everything in the request except
    the wording of its last user message (the system prompt, earlier turns, every parameter), so
    only requests that differ in that wording alone may share an answer."""
    messages = list(body.get("messages") or [])
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and message.get("role") == "user":
            messages[index] = {**message, "content": None}
            break
    material = {name: value for name, value in body.items() if name not in NOT_IN_KEY and name != "messages"}
    encoded = orjson.dumps([material, messages], option=orjson.OPT_SORT_KEYS)
    return f"{space}|{hashlib.sha256(encoded).hexdigest()[:16]}"


def vector_table(embedder: str, dimensions: int) -> str:
    """The vector table of one embedder (its name and the model behind it): a new embedder gets a
    new table, so vectors of different models (or sizes) are never compared."""
    return f"cache_vectors_{dimensions}_{hashlib.sha256(embedder.encode()).hexdigest()[:8]}"
