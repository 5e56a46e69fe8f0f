"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, LM Studio, OpenRouter...): a passthrough.

Unknown request fields go through untouched. Streams are forwarded event by event; we ask the
upstream for usage on every stream (to trace tokens) and drop that chunk again when the client
did not ask for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from daemon.config.schema import OpenAIModel
from daemon.core.cost import Usage
from daemon.errors import ProviderError
from daemon.providers.base import Call, Chunk, Completion, Embeddings
from daemon.providers.remote import RemoteClient
from daemon.providers.sse import sse_batches
from daemon.providers.wire import json_object


def usage_from(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    details = data.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0),
    )


class OpenAICompatProvider:
    kind = "openai"

    def __init__(self, name: str, config: OpenAIModel) -> None:
        self.client = RemoteClient(name, config)

    def _headers(self) -> dict[str, str]:
        key = self.client.api_key()
        return {"authorization": f"Bearer {key}"} if key else {}

    async def complete(self, call: Call) -> Completion:
        body = {**call.body, "model": call.upstream_model}
        data = await self.client.post_json("/chat/completions", body, self._headers())
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ProviderError(f"Upstream {self.client.name!r} sent a completion without choices.")
        message = choices[0].get("message") or {}
        text = message.get("content") or ""
        return Completion(
            body=data,
            usage=usage_from(data.get("usage")) or Usage(),
            text=text if isinstance(text, str) else str(text),
            finish_reason=choices[0].get("finish_reason"),
        )

    async def stream(self, call: Call) -> AsyncIterator[Chunk]:
        body = {
            **call.body,
            "model": call.upstream_model,
            "stream": True,
            "stream_options": {**(call.body.get("stream_options") or {}), "include_usage": True},
        }
        done = False
        async with self.client.request("/chat/completions", body, self._headers()) as response:
            async for batch in sse_batches(response.content.iter_any()):
                for index, (_event, data) in enumerate(batch):
                    if data == b"[DONE]":
                        done = True
                        break
                    chunk = parse_chunk(data, self.client.name)
                    chunk.more = index < len(batch) - 1
                    yield chunk
                if done:
                    break
        if not done:
            raise ProviderError(f"Upstream {self.client.name!r} ended its stream without [DONE].")

    async def embed(self, call: Call) -> Embeddings:
        body = {**call.body, "model": call.upstream_model}
        data = await self.client.post_json("/embeddings", body, self._headers())
        if not isinstance(data.get("data"), list):
            raise ProviderError(f"Upstream {self.client.name!r} sent embeddings without data.")
        return Embeddings(body=data, usage=usage_from(data.get("usage")) or Usage())

    async def aclose(self) -> None:
        await self.client.aclose()


def parse_chunk(data: bytes, upstream: str) -> Chunk:
    parsed = json_object(data, upstream, "a stream event")
    if "error" in parsed:
        error = parsed["error"]
        message = (error or {}).get("message") if isinstance(error, dict) else error
        raise ProviderError(f"Upstream {upstream!r} failed mid-stream: {message}")
    usage = usage_from(parsed.get("usage"))
    choices = parsed.get("choices")
    if not choices:
        return Chunk(data, "", usage, None, usage is not None)
    choice = choices[0] if type(choices) is list else None
    if type(choice) is not dict:
        return Chunk(data, "", usage)
    delta = choice.get("delta")
    content = delta.get("content") if type(delta) is dict else None
    return Chunk(data, content if type(content) is str else "", usage, choice.get("finish_reason"))
