"""The fault-injecting upstream and providers pointed at it, over either transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from daemon.config.schema import AnthropicModel, OpenAIModel, Timeouts
from daemon.core.redact import MIN_RUN
from daemon.providers.anthropic import AnthropicProvider
from daemon.providers.base import Call
from daemon.providers.openai_compat import OpenAICompatProvider
from daemon.providers.remote import RemoteClient
from tests.fixtures.faulty_upstream import FaultyUpstream, masked

MODEL = "edge-model"
KEY_ENV = "LLMOPS_TEST_EDGE_KEY"
# Shaped like a project key, so the masked echo looks like OpenAI's.
KEY = "sk-proj-abc1Q7vL2mXk9RtPz4NwYc8HbJd3GfSe6UoVa5KiTl0Mn-wxyz"
TRANSPORTS = ["http1", "aiohttp"]  # http:// upstreams use http1; aiohttp serves https:// ones


@pytest.fixture(scope="session")
def faulty() -> Iterator[FaultyUpstream]:
    with FaultyUpstream() as upstream:
        yield upstream


@pytest.fixture
def upstream(faulty: FaultyUpstream, monkeypatch: pytest.MonkeyPatch) -> FaultyUpstream:
    faulty.reset()
    monkeypatch.setenv(KEY_ENV, KEY)
    return faulty


def use_transport(client: RemoteClient, transport: str) -> None:
    """Make an http:// client go through aiohttp, as an https:// one does."""
    if transport == "aiohttp":
        client._pool = None


def timeouts(**seconds: float) -> Timeouts:
    return Timeouts(**{"connect": 1.0, "read": 2.0, **seconds})


def openai_provider(
    upstream: FaultyUpstream, transport: str = "http1", retries: int = 2, **seconds: float
) -> OpenAICompatProvider:
    config = OpenAIModel(
        provider="openai",
        base_url=upstream.openai_url,
        api_key=f"${{{KEY_ENV}}}",
        timeout=timeouts(**seconds),
        retries=retries,
    )
    provider = OpenAICompatProvider(MODEL, config)
    use_transport(provider.client, transport)
    return provider


def anthropic_provider(
    upstream: FaultyUpstream, transport: str = "http1", retries: int = 2, **seconds: float
) -> AnthropicProvider:
    config = AnthropicModel(
        provider="anthropic",
        base_url=upstream.base_url,
        api_key=f"${{{KEY_ENV}}}",
        timeout=timeouts(**seconds),
        retries=retries,
    )
    provider = AnthropicProvider(MODEL, config)
    use_transport(provider.client, transport)
    return provider


def chat(stream: bool = False, **extra: Any) -> Call:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "one two three"}], "stream": stream}
    return Call(body={**body, **extra}, model=MODEL, upstream_model="upstream-model")


def assert_no_key(text: str, key: str = KEY) -> None:
    """Neither the key, nor its masked form, nor any run of it long enough to matter."""
    assert key not in text
    assert masked(key) not in text
    runs = {key[i : i + MIN_RUN] for i in range(len(key) - MIN_RUN + 1)}
    assert not [run for run in runs if run in text], text
