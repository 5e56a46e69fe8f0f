"""Anthropic stream events -> OpenAI chat.completion.chunk payloads: a pure state machine.

Feed it one SSE event at a time; it returns the chunks to send. Anthropic reports usage in two
places (message_start, then the final counts in message_delta) and only at the end knows why it
stopped, so the finish chunk and the usage-only chunk come last, as OpenAI sends them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from daemon.errors import ProviderError
from daemon.providers.anthropic_translate import finish_reason, usage_of
from daemon.providers.base import Chunk
from daemon.providers.wire import StreamFrame, json_object


class StreamTranslator:
    def __init__(self, model: str, created: int, upstream: str) -> None:
        # model: the profile's name, as in non-streaming responses; the id comes with message_start
        self.frame = StreamFrame("chatcmpl-anthropic", created, model, cache_reported=True)
        self.upstream = upstream
        self.started = False
        self.stopped = False
        self.finish_reason: str | None = None
        self._usage: dict[str, int] = {}
        self._tool_index: dict[int, int] = {}  # content block index -> OpenAI tool call index

    def feed(self, event: str | None, data: bytes) -> list[Chunk]:
        parsed = json_object(data, self.upstream, "a stream event")
        kind = parsed.get("type") or event
        if kind == "error":
            raise ProviderError(f"Upstream {self.upstream!r} failed mid-stream: {_error_text(parsed)}")
        if kind == "ping":
            return []
        if kind == "message_start":
            return self._message_start(parsed)
        if not self.started:
            raise ProviderError(f"Upstream {self.upstream!r} sent {kind!r} before message_start.")
        if kind == "content_block_start":
            return self._block_start(parsed)
        if kind == "content_block_delta":
            return self._block_delta(parsed)
        if kind == "message_delta":
            return self._message_delta(parsed)
        if kind == "message_stop":
            return self._message_stop()
        return []  # content_block_stop, and event types added after this was written

    def close(self) -> None:
        """Call when the upstream's body ended: a stream without message_stop was cut short."""
        if not self.stopped:
            raise ProviderError(f"Upstream {self.upstream!r} ended its stream before message_stop.")

    # -- events ----------------------------------------------------------------------------------

    def _message_start(self, parsed: dict[str, Any]) -> list[Chunk]:
        message = parsed.get("message") or {}
        if message.get("id"):
            self.frame = replace(self.frame, id=f"chatcmpl-{message['id']}")
        self._add_usage(message.get("usage"))
        self.started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, parsed: dict[str, Any]) -> list[Chunk]:
        block = parsed.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]}, text=block["text"])]
        if block.get("type") != "tool_use":
            return []  # thinking and other blocks have no OpenAI counterpart
        index = len(self._tool_index)
        self._tool_index[parsed.get("index", -1)] = index
        call = {
            "index": index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, parsed: dict[str, Any]) -> list[Chunk]:
        delta = parsed.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]}, text=delta["text"])]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            index = self._tool_index.get(parsed.get("index", -1))
            if index is None:
                return []
            call = {"index": index, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, parsed: dict[str, Any]) -> list[Chunk]:
        self._add_usage(parsed.get("usage"))
        stop_reason = (parsed.get("delta") or {}).get("stop_reason")
        if stop_reason is None or self.finish_reason is not None:
            return []
        self.finish_reason = finish_reason(stop_reason)
        return [self._chunk({}, finish=self.finish_reason)]

    def _message_stop(self) -> list[Chunk]:
        self.stopped = True
        chunks = []
        if self.finish_reason is None:  # no stop_reason was given: still close the choice
            self.finish_reason = "stop"
            chunks.append(self._chunk({}, finish="stop"))
        usage = usage_of(self._usage)
        chunks.append(Chunk(payload=self.frame.payload([], usage), usage=usage, usage_only=True))
        return chunks

    # -- helpers ---------------------------------------------------------------------------------

    def _add_usage(self, raw: Any) -> None:
        # message_delta's counts are cumulative, so later values replace earlier ones.
        if isinstance(raw, dict):
            self._usage.update({k: v for k, v in raw.items() if isinstance(v, int)})

    def _chunk(self, delta: dict[str, Any], *, text: str = "", finish: str | None = None) -> Chunk:
        return Chunk(payload=self.frame.delta(delta, finish), text=text, finish_reason=finish)


def _error_text(parsed: dict[str, Any]) -> str:
    error = parsed.get("error")
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('message', '')}"[:500]
    return str(error)[:500]
