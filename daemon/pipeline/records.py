"""What a trace keeps of a request: the messages or input (truncated) and the parameters, as JSON."""

from __future__ import annotations

from typing import Any

import orjson

from daemon.core.trace import Trace, truncate
from daemon.errors import InvalidRequest

# orjson writes at most this many levels, though it reads 1024. A body nested deeper could be
# neither traced nor forwarded (providers serialize with orjson too): it is refused with a 400.
MAX_DEPTH = 254
MAX_LISTED_INPUTS = 64


def request_record(endpoint: str, body: dict[str, Any], limit: int) -> str:
    """The trace's `request` column; InvalidRequest when the body is nested too deep to write."""
    record = _embedding_record(body, limit) if endpoint == "embeddings" else _chat_record(body, limit)
    try:
        return orjson.dumps(record).decode()
    except orjson.JSONEncodeError:
        raise InvalidRequest(
            f"The request body is nested too deeply: this gateway accepts at most {MAX_DEPTH} levels."
        ) from None


def safe_request_record(endpoint: str, body: dict[str, Any], limit: int) -> str:
    """For a call that failed before its request was recorded: never raises."""
    try:
        return request_record(endpoint, body, limit)
    except InvalidRequest as exc:
        return orjson.dumps({"unrecorded": exc.message}).decode()


def _chat_record(body: dict[str, Any], limit: int) -> dict[str, Any]:
    messages = [
        {**m, "content": truncate(m["content"], limit)} if isinstance(m.get("content"), str) else m
        for m in body.get("messages", [])
    ]
    params = {k: v for k, v in body.items() if k not in ("messages", "model")}
    return {"messages": messages, "params": params}


def _embedding_record(body: dict[str, Any], limit: int) -> dict[str, Any]:
    value = body.get("input")
    shown = truncate(value, limit) if isinstance(value, str) else value
    if isinstance(shown, list) and len(shown) > MAX_LISTED_INPUTS:
        shown = [*shown[:MAX_LISTED_INPUTS], f"... {len(shown) - MAX_LISTED_INPUTS} more"]
    return {"input": shown}


def note_end_user(trace: Trace, body: dict[str, Any]) -> None:
    """OpenAI's `user` field names the end user. Without keys (local mode) it is the only name we
    have; with keys the key's user stays the accountable one and the end user is kept beside it."""
    end_user = body.get("user")
    if not isinstance(end_user, str) or not end_user:
        return
    if trace.key_id is None:
        trace.user = end_user
    else:
        trace.metadata["end_user"] = end_user
