"""OpenAI chat requests -> Anthropic Messages requests, and Anthropic messages -> OpenAI completions.

Pure functions over plain dicts: no I/O and no clock (`created` is passed in), so both directions
are testable without a server. The stream state machine lives in anthropic_stream.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from daemon.core.cost import Usage
from daemon.errors import InvalidRequest, ProviderError
from daemon.providers.base import Completion
from daemon.providers.wire import malformed, token_count, usage_body

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Anthropic's temperature range is [0, 1]; OpenAI's is [0, 2] and the API layer accepts that.
MAX_TEMPERATURE = 1.0


def _unsupported(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{param}': {message}", param=param)


# -- request -------------------------------------------------------------------------------------


def to_messages_request(
    body: Mapping[str, Any], upstream_model: str, default_max_tokens: int
) -> dict[str, Any]:
    """Translate a validated OpenAI chat body; fields Anthropic has no use for (seed, n...) are dropped."""
    system, messages = translate_messages(body.get("messages") or [])
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    request: dict[str, Any] = {
        "model": upstream_model,
        # Anthropic requires max_tokens; OpenAI clients usually omit it.
        "max_tokens": default_max_tokens if max_tokens is None else max_tokens,
        "messages": messages,
    }
    if system:
        request["system"] = system
    if body.get("temperature") is not None:
        request["temperature"] = min(float(body["temperature"]), MAX_TEMPERATURE)
    if body.get("top_p") is not None:
        request["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        request["metadata"] = {"user_id": body["user"]}
    tools = body.get("tools")
    if tools:
        request["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            request["tool_choice"] = choice
    return request


def translate_messages(messages: list[Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """System/developer messages -> one `system` string; the rest -> alternating user/assistant turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _unsupported(where, "expected an object.")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content"), f"{where}.content"))
            continue
        if role == "user":
            turn_role, blocks = "user", content_blocks(message.get("content"), f"{where}.content")
        elif role == "assistant":
            turn_role, blocks = "assistant", _assistant_blocks(message, where)
        elif role == "tool":
            turn_role, blocks = "user", [_tool_result(message, where)]
        else:
            raise _unsupported(f"{where}.role", f"role {role!r} is not supported by Anthropic models.")
        if not blocks:
            continue  # Anthropic rejects empty turns; an empty message carries nothing anyway
        # Anthropic wants turns to alternate, and tool results go back in a user turn.
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    if not turns:
        raise _unsupported("messages", "at least one user or assistant message is required.")
    joined = "\n\n".join(part for part in system if part)
    return joined or None, turns


def text_of(content: Any, where: str) -> str:
    """The text of a content that may only hold text (system prompts, tool results)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for index, block in enumerate(content_blocks(content, where)):
        if block["type"] != "text":
            raise _unsupported(f"{where}[{index}]", "only text is allowed here.")
        texts.append(block["text"])
    return "\n".join(texts)


def content_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """An OpenAI content (a string or content parts) -> Anthropic text and image blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _unsupported(where, "expected a string or an array of content parts.")
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        param = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _unsupported(f"{param}.text", "expected a string.")
            if text:
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), f"{param}.image_url"))
        else:
            raise _unsupported(
                f"{param}.type", f"content part {kind!r} is not supported by Anthropic models."
            )
    return blocks


def _image_block(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise _unsupported(where, "expected an object with a 'url'.")
    if url.startswith("data:"):
        header, comma, data = url[len("data:") :].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not media_type.startswith("image/"):
            raise _unsupported(f"{where}.url", "expected a data:image/...;base64, URL.")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _unsupported(f"{where}.url", "expected a data: or http(s) URL.")


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks = content_blocks(message.get("content"), f"{where}.content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise _unsupported(f"{where}.tool_calls", "expected an array.")
    for index, call in enumerate(calls):
        param = f"{where}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise _unsupported(param, "expected {'id', 'function': {'name', 'arguments'}}.")
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            raise _unsupported(f"{param}.function.arguments", "expected a JSON object in a string.")
        name = function.get("name")
        blocks.append({"type": "tool_use", "id": call["id"], "name": name, "input": arguments})
    return blocks


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise _unsupported(f"{where}.tool_call_id", "a tool message needs the id of the call it answers.")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_call_id}
    text = text_of(message.get("content"), f"{where}.content")
    if text:
        result["content"] = text
    return result


def _tool(tool: Any, where: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _unsupported(where, "expected {'type': 'function', 'function': {'name', ...}}.")
    translated: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        translated["description"] = function["description"]
    return translated


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        translated: dict[str, Any] | None = None
    elif choice == "auto":
        translated = {"type": "auto"}
    elif choice == "none":
        translated = {"type": "none"}
    elif choice == "required":
        translated = {"type": "any"}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        translated = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise _unsupported("tool_choice", "expected 'auto', 'none', 'required' or a named function.")
    if parallel is False and (translated is None or translated["type"] != "none"):
        translated = {**(translated or {"type": "auto"}), "disable_parallel_tool_use": True}
    return translated


# -- response ------------------------------------------------------------------------------------


def finish_reason(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(str(stop_reason), "stop")


USAGE_COUNTS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def usage_of(raw: Any, upstream: str) -> Usage:
    """Cache reads and writes are prompt tokens too: OpenAI counts them in prompt_tokens.
    A usage that is not an object, or a count that is not a count, makes the answer malformed."""
    if raw is None:
        return Usage()
    if not isinstance(raw, Mapping):
        raise malformed(upstream, "a usage that is not an object")
    counts = {key: token_count(raw.get(key), upstream, key) for key in USAGE_COUNTS}
    cached = counts["cache_read_input_tokens"]
    return Usage(
        prompt_tokens=counts["input_tokens"] + cached + counts["cache_creation_input_tokens"],
        completion_tokens=counts["output_tokens"],
        cached_tokens=cached,
    )


def tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()},
    }


def to_completion(data: Mapping[str, Any], model: str, created: int, upstream: str) -> Completion:
    """An Anthropic message -> an OpenAI chat.completion named after the profile's model."""
    content = data.get("content")
    if not isinstance(content, list):
        raise ProviderError(f"Upstream {upstream!r} sent a message without content.")
    texts = [str(b.get("text") or "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    calls = [tool_call(b) for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant", "content": text if texts else None}
    if calls:
        message["tool_calls"] = calls
    usage = usage_of(data.get("usage"), upstream)
    finish = finish_reason(data.get("stop_reason"))
    body = {
        "id": f"chatcmpl-{data.get('id') or 'anthropic'}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_body(usage, cache_reported=True),
    }
    return Completion(body=body, usage=usage, text=text, finish_reason=finish)
