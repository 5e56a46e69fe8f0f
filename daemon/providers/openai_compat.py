"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, LM Studio, OpenRouter...): a passthrough.

Unknown request fields go through untouched. Streams are forwarded event by event; we ask the
upstream for usage on every stream (to trace tokens) and drop that chunk again when the client
did not ask for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from daemon.config.schema import OpenAIModel
from daemon.core.confidence import of_openai_logprobs
from daemon.core.cost import Usage
from daemon.core.redact import scrub
from daemon.errors import ProviderError
from daemon.providers.base import Call, Chunk, Completion, Embeddings
from daemon.providers.remote import RemoteClient
from daemon.providers.wire import json_object, malformed, token_count

# What a parser meeting an upstream shape nobody anticipated raises. Such an answer is the
# upstream's fault (502), not ours (500), and the exception's text may quote the upstream.
PARSE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError)


def usage_from(data: Any, upstream: str) -> Usage | None:
    """OpenAI's `usage` (absent or null: None); counts that are not counts make it malformed."""
    if data is None:
        return None
    if type(data) is not dict:
        raise malformed(upstream, "a usage that is not an object")
    details = data.get("prompt_tokens_details")
    if details is not None and type(details) is not dict:
        raise malformed(upstream, "a usage whose prompt_tokens_details is not an object")
    cached = details.get("cached_tokens") if details else None
    return Usage(
        prompt_tokens=token_count(data.get("prompt_tokens"), upstream, "prompt_tokens"),
        completion_tokens=token_count(data.get("completion_tokens"), upstream, "completion_tokens"),
        cached_tokens=token_count(cached, upstream, "cached_tokens"),
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
        asked = bool(body.get("logprobs"))
        if call.confidence and not asked:
            body["logprobs"] = True
        data = await self.client.post_json("/chat/completions", body, self._headers())
        try:
            completion = completion_from(data, self.client.name)
            if call.confidence:
                completion.confidence = _confidence(completion, asked)
        except PARSE_ERRORS:
            raise malformed(self.client.name, "a malformed completion") from None
        return completion

    async def stream(self, call: Call) -> AsyncIterator[Chunk]:
        body = {
            **call.body,
            "model": call.upstream_model,
            "stream": True,
            "stream_options": {**(call.body.get("stream_options") or {}), "include_usage": True},
        }
        name, redact = self.client.name, self.client.redact
        done = False
        async with self.client.request("/chat/completions", body, self._headers()) as exchange:
            async for batch in exchange.batches():
                for index, (_event, data) in enumerate(batch):
                    if data == b"[DONE]":
                        done = True
                        break
                    try:
                        chunk = parse_chunk(data, name, redact)
                    except PARSE_ERRORS:
                        raise malformed(name, "a malformed stream event") from None
                    chunk.more = index < len(batch) - 1
                    yield chunk
                if done:
                    break
        if not done:
            raise ProviderError(f"Upstream {name!r} ended its stream without [DONE].")

    async def embed(self, call: Call) -> Embeddings:
        body = {**call.body, "model": call.upstream_model}
        data = await self.client.post_json("/embeddings", body, self._headers())
        if not isinstance(data.get("data"), list):
            raise ProviderError(f"Upstream {self.client.name!r} sent embeddings without data.")
        return Embeddings(body=data, usage=usage_from(data.get("usage"), self.client.name) or Usage())

    async def aclose(self) -> None:
        await self.client.aclose()


def completion_from(data: dict[str, Any], upstream: str) -> Completion:
    """A chat.completion checked for the fields we read (the body goes to the client as is)."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProviderError(f"Upstream {upstream!r} sent a completion without choices.")
    message = choices[0].get("message")
    if message is None:
        message = {}
    elif not isinstance(message, dict):
        raise malformed(upstream, "a completion whose message is not an object")
    text = message.get("content")
    finish = choices[0].get("finish_reason")
    if finish is not None and not isinstance(finish, str):
        raise malformed(upstream, "a completion whose finish_reason is not a string")
    return Completion(
        body=data,
        usage=usage_from(data.get("usage"), upstream) or Usage(),
        text="" if text is None else text if isinstance(text, str) else str(text),
        finish_reason=finish,
    )


def _confidence(completion: Completion, keep: bool) -> float | None:
    """From the answer's logprobs, which are dropped again if the client did not ask for them."""
    choice = completion.body["choices"][0]
    confidence = of_openai_logprobs(choice)
    if not keep and "logprobs" in choice:
        choice["logprobs"] = None
    return confidence


def parse_chunk(data: bytes, upstream: str, redact: Callable[[str], str] = scrub) -> Chunk:
    """One stream event -> a Chunk (its payload forwarded as is). `redact` blanks keys in an error
    event's message: the provider passes its client's, which knows the key it sent."""
    parsed = json_object(data, upstream, "a stream event")
    error = parsed.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        text = redact(" ".join(str(message).split()))[:500]
        raise ProviderError(f"Upstream {upstream!r} failed mid-stream: {text}")
    usage = usage_from(parsed.get("usage"), upstream)
    choices = parsed.get("choices")
    if not choices:
        return Chunk(data, "", usage, None, usage is not None)
    if type(choices) is not list or type(choices[0]) is not dict:
        raise malformed(upstream, "a stream event whose choices are not a list of objects")
    choice = choices[0]
    delta = choice.get("delta")
    if delta is None:
        delta = {}
    elif type(delta) is not dict:
        raise malformed(upstream, "a stream event whose delta is not an object")
    content = delta.get("content")
    if content is not None and type(content) is not str:
        raise malformed(upstream, "a stream event whose content is not a string")
    finish = choice.get("finish_reason")
    if finish is not None and type(finish) is not str:
        raise malformed(upstream, "a stream event whose finish_reason is not a string")
    return Chunk(data, content or "", usage, finish)
