"""Translation between OpenAI bodies and llama-cpp-python's arguments and results (pure)."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any

from daemon.core.cost import Usage
from daemon.errors import InvalidRequest
from daemon.providers.base import Completion
from daemon.providers.wire import completion_body

_SAMPLING_FIELDS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
# llama-cpp-python's formatters for these drop system messages; Gemma's own chat template puts the
# system prompt at the head of the first user turn, and so do we.
_NO_SYSTEM_ROLE = frozenset({"gemma"})


# --- OpenAI body -> llama arguments ---------------------------------------------------------


def chat_arguments(
    body: dict[str, Any], chat_format: str | None = None, repeat_penalty: float | None = None
) -> dict[str, Any]:
    """create_chat_completion's keyword arguments for an OpenAI chat body; unusable fields dropped."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list.", param="messages")
    plain = [_plain_message(message) for message in messages]
    if chat_format in _NO_SYSTEM_ROLE:
        plain = _system_into_user(plain)
    arguments: dict[str, Any] = {"messages": plain}
    for name in _SAMPLING_FIELDS:
        if body.get(name) is not None:
            arguments[name] = body[name]
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        arguments["max_tokens"] = max_tokens
    stop = body.get("stop")
    if stop is not None:
        arguments["stop"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = _response_format(body.get("response_format"))
    if response_format is not None:
        arguments["response_format"] = response_format
    if repeat_penalty is not None:
        arguments["repeat_penalty"] = repeat_penalty
    return arguments


def _plain_message(message: Any) -> dict[str, str]:
    """Role and text only: llama's chat formatters read nothing else."""
    if not isinstance(message, dict):
        raise InvalidRequest("Each message must be an object.", param="messages")
    role = message.get("role")
    role = "system" if role == "developer" else role
    content = message.get("content")
    if isinstance(content, list):
        if any(not isinstance(part, dict) or part.get("type") != "text" for part in content):
            raise InvalidRequest("Local models accept text content parts only.", param="messages")
        content = "".join(str(part.get("text") or "") for part in content)
    return {"role": str(role), "content": content if isinstance(content, str) else ""}


def _system_into_user(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Each system message's text leads the next user message (or becomes one, if none follows)."""
    merged: list[dict[str, str]] = []
    pending: list[str] = []
    for message in messages:
        if message["role"] == "system":
            pending.append(message["content"])
        elif message["role"] == "user" and pending:
            merged.append({"role": "user", "content": "\n\n".join([*pending, message["content"]])})
            pending = []
        else:
            merged.append(message)
    if pending:
        merged.append({"role": "user", "content": "\n\n".join(pending)})
    return merged


def _response_format(value: Any) -> dict[str, Any] | None:
    """json_object and json_schema become llama's grammar-constrained JSON; text needs nothing."""
    if not isinstance(value, dict):
        return None
    if value.get("type") == "json_object":
        return {"type": "json_object"}
    spec = value.get("json_schema") if value.get("type") == "json_schema" else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return {"type": "json_object", "schema": schema} if isinstance(schema, dict) else None


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(text, str) for text in raw):
        return raw
    raise InvalidRequest(
        "'input' must be a string or a non-empty list of strings (local models take no token arrays).",
        param="input",
    )


def encoding_format(body: dict[str, Any]) -> str:
    value = body.get("encoding_format") or "float"
    if value not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    return str(value)


# --- llama results -> OpenAI bodies ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: str
    usage: Usage


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion_from(model: str, response: dict[str, Any]) -> Completion:
    choice = response["choices"][0]
    text = choice["message"].get("content") or ""
    reported = response.get("usage") or {}
    usage = Usage(int(reported.get("prompt_tokens", 0)), int(reported.get("completion_tokens", 0)))
    body = completion_body(completion_id(), int(time.time()), model, text, choice.get("finish_reason"), usage)
    return Completion(body=body, usage=usage, text=text, finish_reason=choice.get("finish_reason"))


def embedding_data(vectors: list[Any], encoding: str) -> list[dict[str, Any]]:
    """L2-normalised, as sentence-transformers and OpenAI return them; base64 = little-endian f32."""
    import numpy as np

    data: list[dict[str, Any]] = []
    for index, vector in enumerate(vectors):
        array = np.asarray(vector, dtype=np.float32)
        if array.ndim == 2:  # a GGUF without pooling gives one vector per token: mean-pool them
            array = array.mean(axis=0)
        array = array / max(float(np.linalg.norm(array)), 1e-12)
        embedding: Any = (
            base64.b64encode(array.astype("<f4").tobytes()).decode()
            if encoding == "base64"
            else array.tolist()
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return data
