"""Runtimes across hot reloads: a provider closes only when no runtime still serving calls uses it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from daemon.config.loader import parse_profile
from daemon.providers.base import Call, Chunk, Completion, Embeddings
from daemon.runtime import ModelEntry, Runtime, Runtimes

PROFILE = parse_profile(
    'models: {p: {provider: openai, base_url: "http://127.0.0.1:9"}, q: {provider: openai, base_url: "http://127.0.0.1:9"}}'
)


class Provider:
    """A provider that only notes being closed (none of these tests calls a model)."""

    kind = "openai"

    def __init__(self) -> None:
        self.closed = 0

    async def complete(self, call: Call) -> Completion:
        raise NotImplementedError

    def stream(self, call: Call) -> AsyncIterator[Chunk]:
        raise NotImplementedError

    async def embed(self, call: Call) -> Embeddings:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed += 1


def runtime(**providers: Provider) -> Runtime:
    models = {
        name: ModelEntry(name, PROFILE.models[name], provider, None, None)
        for name, provider in providers.items()
    }
    built = Runtime(PROFILE, None, models)
    built.drained.set()
    return built


async def test_a_provider_dropped_two_reloads_later_outlives_the_calls_of_the_first() -> None:
    """A -> B carries P over, B -> C drops it: a call still pinned to A keeps P open (issue 7, defect 5)."""
    p, q = Provider(), Provider()
    a, b, c = runtime(p=p), runtime(p=p), runtime(q=q)
    host = Runtimes(a)
    a.pin()  # a call in flight on A, using P
    a_retired = host.replace(b)
    b_retired = host.replace(c)
    await asyncio.wait_for(b_retired, 1)  # B had no calls: retired at once...
    assert p.closed == 0  # ...but A still serves one with P
    a.unpin()
    await asyncio.wait_for(a_retired, 1)
    assert (p.closed, q.closed) == (1, 0)
    await host.close()
    assert (p.closed, q.closed) == (1, 1)


async def test_a_provider_carried_over_stays_open() -> None:
    p, old_q = Provider(), Provider()
    host = Runtimes(runtime(p=p, q=old_q))
    await asyncio.wait_for(host.replace(runtime(p=p)), 1)
    assert (p.closed, old_q.closed) == (0, 1)
