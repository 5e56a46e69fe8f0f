"""The request path's stages, in the order they run. A new capability is its own stage module and
one line here.

The order, as capabilities land: prompts (resolve a prompt version, an experiment's arm) ->
guardrails on the input -> rate limits (cheap, before any work) -> cache (exact, then semantic;
may answer) -> routing (the candidate models) -> budgets (reserve the worst case over the
candidates). Output guardrails see the stream's chunks; budgets settle and the cache stores after
the call.
"""

from __future__ import annotations

from daemon.pipeline import cache
from daemon.pipeline.stage import StageFactory

STAGES: tuple[StageFactory, ...] = (cache.build,)
