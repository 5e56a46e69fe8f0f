"""Anthropic's Messages API behind the OpenAI-format Provider protocol.

The translation is pure (anthropic_translate.py, anthropic_stream.py); this module only adds the
I/O: the pooled RemoteClient (timeouts, retries, error mapping), headers and the clock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from daemon.config.schema import AnthropicModel
from daemon.errors import InvalidRequest
from daemon.providers.anthropic_stream import StreamTranslator
from daemon.providers.anthropic_translate import to_completion, to_messages_request
from daemon.providers.base import Call, Chunk, Completion, Embeddings
from daemon.providers.remote import RemoteClient
from daemon.providers.wire import malformed

# What a parser meeting an upstream shape nobody anticipated raises: the upstream's fault (502),
# not ours (500), and the exception's text may quote the upstream.
PARSE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError)

MESSAGES_PATH = "/v1/messages"


class AnthropicProvider:
    kind = "anthropic"

    def __init__(self, name: str, config: AnthropicModel) -> None:
        self.config = config
        self.client = RemoteClient(name, config)

    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.config.anthropic_version}
        key = self.client.api_key()
        if key:
            headers["x-api-key"] = key
        return headers

    def _request(self, call: Call) -> dict[str, object]:
        return to_messages_request(call.body, call.upstream_model, self.config.default_max_tokens)

    async def complete(self, call: Call) -> Completion:
        body = self._request(call)
        data = await self.client.post_json(MESSAGES_PATH, body, self._headers())
        try:
            return to_completion(data, call.model, int(time.time()), self.client.name)
        except PARSE_ERRORS:
            raise malformed(self.client.name, "a malformed message") from None

    async def stream(self, call: Call) -> AsyncIterator[Chunk]:
        body = {**self._request(call), "stream": True}
        name = self.client.name
        translator = StreamTranslator(call.model, int(time.time()), name, self.client.redact)
        async with self.client.request(MESSAGES_PATH, body, self._headers()) as exchange:
            async for batch in exchange.batches():
                for event, data in batch:
                    try:
                        chunks = translator.feed(event, data)
                    except PARSE_ERRORS:
                        raise malformed(name, "a malformed stream event") from None
                    for chunk in chunks:
                        yield chunk
                    if translator.stopped:
                        break
                if translator.stopped:
                    break
        translator.close()

    async def embed(self, call: Call) -> Embeddings:
        raise InvalidRequest(
            f"Model {call.model!r} cannot embed: Anthropic has no embeddings API.", param="model"
        )

    async def aclose(self) -> None:
        await self.client.aclose()
