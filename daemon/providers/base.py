"""The one protocol every provider implements, and the plain data it exchanges.

Requests and responses are in the OpenAI wire format (dicts), so an OpenAI-compatible upstream
is a passthrough and other providers translate at their edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon.core.cost import Usage

INTERACTIVE, BACKGROUND = 0, 1  # a local model's worker serves interactive calls first


@dataclass(slots=True)
class Call:
    """One request for a provider: the validated OpenAI-format body and the model it is for."""

    body: dict[str, Any]
    model: str  # the profile's name for the model
    upstream_model: str  # the name the provider knows
    priority: int = INTERACTIVE  # BACKGROUND: judge and batch jobs, served after interactive calls
    confidence: bool = False  # measure the answer's confidence (a cascade asks): Completion.confidence


@dataclass(slots=True)
class Completion:
    body: dict[str, Any]  # an OpenAI chat.completion object
    usage: Usage
    text: str
    finish_reason: str | None
    confidence: float | None = None  # 0..1, from token probabilities, when the call asked for it


@dataclass(slots=True)
class Chunk:
    """One SSE event for the client. `payload` is the JSON to send after `data: `, as is."""

    payload: bytes
    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    usage_only: bool = False  # carries usage and no choices (stream_options.include_usage)
    more: bool = False  # another chunk follows at once: the gateway may send both in one write


@dataclass(slots=True)
class Embeddings:
    body: dict[str, Any]  # an OpenAI list of embedding objects
    usage: Usage
    extra: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    kind: str  # llama_cpp | openai | anthropic

    async def complete(self, call: Call) -> Completion: ...

    def stream(self, call: Call) -> AsyncIterator[Chunk]: ...

    async def embed(self, call: Call) -> Embeddings: ...

    async def aclose(self) -> None: ...
