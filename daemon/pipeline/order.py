"""The request path's stages, in the order they run. A new capability is its own stage module and
one line here.

The order, as capabilities land: prompts (resolve a prompt version, an experiment's arm) ->
guardrails on the input -> rate limits (cheap, before any work) -> cache (exact, then semantic;
may answer) -> routing (the candidate models) -> budgets (reserve the worst case over the
candidates). Output guardrails see the stream's chunks; budgets settle and the cache stores after
the call.
"""

from __future__ import annotations

from daemon.pipeline import budgets, cache, caps, cascade, prompts, rate_limits, routing, shadow
from daemon.pipeline.stage import StageFactory

# A prompt is rendered first: everything after sees the call as it will be sent. Caps come next:
# the rate limits, the cache key and a budget's worst case see the capped call.
# Routing names the candidates that budgets reserve for; a cascade's cheap answers come after the
# reservation, and a shadow's copy after the call.
STAGES: tuple[StageFactory, ...] = (
    prompts.build, caps.build, rate_limits.build, cache.build, routing.build, budgets.build, cascade.build,
    shadow.build,
)  # fmt: skip
