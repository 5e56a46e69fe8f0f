"""Anthropic stream events -> OpenAI chat.completion.chunk payloads: a pure state machine.

Feed it one SSE event at a time; it returns the chunks to send. Anthropic reports usage in two
places (message_start, then the final counts in message_delta) and only at the end knows why it
stopped, so the finish chunk and the usage-only chunk come last, as OpenAI sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from daemon.core.redact import scrub
from daemon.errors import ProviderError
from daemon.providers.anthropic_translate import USAGE_COUNTS, finish_reason, usage_of
from daemon.providers.base import Chunk
from daemon.providers.wire import StreamFrame, json_object, malformed, token_count


class StreamTranslator:
    def __init__(self, model: str, created: int, upstream: str, redact: Callable[[str], str] = scrub) -> None:
        # model: the profile's name, as in non-streaming responses; the id comes with message_start
        self.frame = StreamFrame("chatcmpl-anthropic", created, model, cache_reported=True)
        self.upstream = upstream
        # blanks keys in an error event's message: the provider passes its client's, which knows
        # the key it sent
        self.redact = redact
        self.started = False
        self.stopped = False
        self.finish_reason: str | None = None
        self._usage: dict[str, int] = {}
        self._tool_index: dict[int, int] = {}  # content block index -> OpenAI tool call index

    def feed(self, event: str | None, data: bytes) -> list[Chunk]:
        parsed = json_object(data, self.upstream, "a stream event")
        kind = parsed.get("type") or event
        if kind == "error":
            text = self.redact(_error_text(parsed))[:500]
            raise ProviderError(f"Upstream {self.upstream!r} failed mid-stream: {text}")
        if kind == "ping":
            return []
        if kind == "message_start":
            return self._message_start(parsed)
        if not self.started:
            shown = self.redact(repr(kind)[:80])
            raise ProviderError(f"Upstream {self.upstream!r} sent {shown} before message_start.")
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
        message = self._object(parsed, "message")
        if message.get("id"):
            self.frame = replace(self.frame, id=f"chatcmpl-{message['id']}")
        self._add_usage(message.get("usage"))
        self.started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, parsed: dict[str, Any]) -> list[Chunk]:
        block = self._object(parsed, "content_block")
        if block.get("type") == "text" and block.get("text"):
            text = self._text(block, "text")
            return [self._chunk({"content": text}, text=text)]
        if block.get("type") != "tool_use":
            return []  # thinking and other blocks have no OpenAI counterpart
        index = len(self._tool_index)
        self._tool_index[self._index(parsed)] = index
        call = {
            "index": index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, parsed: dict[str, Any]) -> list[Chunk]:
        delta = self._object(parsed, "delta")
        if delta.get("type") == "text_delta" and delta.get("text"):
            text = self._text(delta, "text")
            return [self._chunk({"content": text}, text=text)]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            index = self._tool_index.get(self._index(parsed))
            if index is None:
                return []
            call = {"index": index, "function": {"arguments": self._text(delta, "partial_json")}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _message_delta(self, parsed: dict[str, Any]) -> list[Chunk]:
        self._add_usage(parsed.get("usage"))
        stop_reason = self._object(parsed, "delta").get("stop_reason")
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
        usage = usage_of(self._usage, self.upstream)
        chunks.append(Chunk(payload=self.frame.payload([], usage), usage=usage, usage_only=True))
        return chunks

    # -- helpers ---------------------------------------------------------------------------------

    def _add_usage(self, raw: Any) -> None:
        # message_delta's counts are cumulative, so later values replace earlier ones (a null
        # replaces nothing). Other usage fields (service_tier...) are not counts: left alone.
        if raw is None:
            return
        if not isinstance(raw, dict):
            raise malformed(self.upstream, "a stream event whose usage is not an object")
        for key in USAGE_COUNTS:
            if raw.get(key) is not None:
                self._usage[key] = token_count(raw[key], self.upstream, key)

    # The shapes checked below would otherwise raise AttributeError or TypeError (a 500): a
    # malformed event is the upstream's fault (a 502).

    def _object(self, parsed: dict[str, Any], key: str) -> dict[str, Any]:
        value = parsed.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise malformed(self.upstream, f"a stream event whose {key} is not an object")
        return value

    def _text(self, parsed: dict[str, Any], key: str) -> str:
        value = parsed[key]
        if not isinstance(value, str):
            raise malformed(self.upstream, f"a stream event whose {key} is not a string")
        return value

    def _index(self, parsed: dict[str, Any]) -> int:
        value = parsed.get("index", -1)
        if type(value) is not int:
            raise malformed(self.upstream, "a stream event whose index is not a number")
        return value

    def _chunk(self, delta: dict[str, Any], *, text: str = "", finish: str | None = None) -> Chunk:
        return Chunk(payload=self.frame.delta(delta, finish), text=text, finish_reason=finish)


def _error_text(parsed: dict[str, Any]) -> str:
    """The event's error in one line, not yet redacted nor cut (a cut key would escape the scrub)."""
    error = parsed.get("error")
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('message', '')}"
    else:
        text = str(error)
    return " ".join(text[:4000].split())
