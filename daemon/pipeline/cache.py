"""The cache stage: a request seen before in its namespace, word for word or (with `semantic:`) in
meaning, is answered from the cache.

Before the call it decides, and says why: bypass (the client asked, or a skip rule), a hit (the
stored completion answers, replayed as SSE for a stream), or a miss. After a miss it stores the
answer (with the question's embedding, for later matches by meaning), but only a whole one: never
an error, a cancelled stream or a truncated (`length`) answer.
Headers: `x-llmops-cache: hit-exact | hit-semantic | miss | bypass`, and
`x-llmops-cache-similarity` on a hit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from daemon.cache.exact import CacheEntry, ExactIndex
from daemon.cache.semantic import Match, SemanticLookup
from daemon.config.schema import CacheConfig, Profile
from daemon.core.cache_key import exact_key, namespace, question_of, semantic_space
from daemon.core.cache_policy import Control, control_of, skip_reason
from daemon.core.cost import Usage
from daemon.errors import GatewayError
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.stage import Answer, Stage
from daemon.providers.base import Completion
from daemon.providers.wire import completion_body
from daemon.runtime import ModelEntry

if TYPE_CHECKING:
    from daemon.services import Services

log = logging.getLogger(__name__)
HEADER, SIMILARITY = "x-llmops-cache", "x-llmops-cache-similarity"


@dataclass(slots=True)
class _Pending:
    """What `before` found out, for `after` to store the answer under."""

    key: str
    namespace: str
    model: str
    question: str
    store: bool
    space: str | None = None  # the semantic space, when the question was embedded
    vector: np.ndarray | None = None
    table: str | None = None


class CacheStage(Stage):
    name = "cache"

    def __init__(
        self, config: CacheConfig, index: ExactIndex, semantic: SemanticLookup | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.config = config
        self.index = index
        self.semantic = semantic
        self.clock = clock
        self.models = frozenset(config.models) if config.models is not None else None
        # A request matched by meaning has passed the cache's own skip rules: only the others remain.
        semantic_rules = semantic.config.skip if semantic is not None else ()
        self.semantic_skip = tuple(rule for rule in semantic_rules if rule not in config.skip)

    async def before(self, ctx: Context) -> Answer | None:
        if ctx.endpoint != "chat":
            return None
        model = ctx.body.get("model") or ctx.runtime.profile.default_model
        known = model in ctx.runtime.models or model in ctx.runtime.profile.routes
        if not model or not known or not self._caches(model):
            return None  # not a cached model or route: the cache says nothing
        control = control_of(ctx.request_headers)
        reason = "x-llmops-cache: bypass" if control.bypass else None
        reason = reason or skip_reason(ctx.body, self.config.skip, self.config.max_temperature)
        if reason is not None:
            self._say(ctx, "bypass", reason)
            return None
        space = namespace(self.config.scope, ctx.principal, model)
        prompt = ctx.state.get("prompt")
        if prompt is not None:  # a prompt's version shares answers with no other version
            space += f"|prompt:{prompt.name}@{prompt.version}"
        pending = _Pending(exact_key(space, ctx.body), space, model, question_of(ctx.body), control.store)
        ctx.state[self.name] = pending
        entry, why = self._lookup(ctx, pending.key, control.read)
        if entry is not None:
            return self._hit(ctx, entry, "hit-exact", 1.0)
        if self.semantic is not None:
            match, why = await self._semantic(ctx, pending, control, why)
            if match is not None and (found := self.index.get(match.entry_id)) is not None:
                return self._hit(ctx, found, "hit-semantic", match.similarity, match.score)
        self._say(ctx, "miss", why)
        return None

    def _lookup(self, ctx: Context, key: str, read: bool) -> tuple[CacheEntry | None, str]:
        """The live entry for `key`, or why there is none (an expired one is dropped)."""
        if not read:
            return None, "Cache-Control: no-cache (refreshing)"
        entry = self.index.get(key)
        if entry is None:
            return None, "no entry"
        if entry.expires_at <= self.clock():
            self.index.remove(key)
            return None, "the entry had expired"
        return entry, ""

    async def _semantic(
        self, ctx: Context, pending: _Pending, control: Control, why: str
    ) -> tuple[Match | None, str]:
        """Embed the question (also to store it) and look for an entry asking the same thing."""
        assert self.semantic is not None
        skip = skip_reason(ctx.body, self.semantic_skip, self.config.max_temperature)
        if skip is not None or not pending.question:
            return None, f"{why}; not matched by meaning: {skip or 'no question'}"
        ctx.waiting()  # an embedding is a model call
        try:
            pending.vector = await self.semantic.embed(pending.question)
            pending.space = semantic_space(pending.namespace, ctx.body)
            if not control.read:
                pending.table = self.semantic.table
                return None, why
            candidates, pending.table = await self.semantic.find(pending.space, pending.vector)
        except GatewayError as exc:  # the cache is an optimisation: a broken embedder costs a miss
            log.warning("semantic cache lookup failed: %s", exc.message)
            return None, f"{why}; the embedder failed: {exc.message}"
        now = self.clock()

        def alive(entry_id: str) -> bool:
            entry = self.index.get(entry_id)
            return entry is not None and entry.expires_at > now

        match, reason = self.semantic.choose(pending.vector, candidates, alive)
        return match, f"{why}; by meaning: {reason}"

    def after(self, ctx: Context, outcome: Outcome) -> None:
        pending: _Pending | None = ctx.state.get(self.name)
        if pending is None or outcome.answered_by == self.name or not pending.store:
            return
        if outcome.status != "ok" or outcome.finish_reason != "stop" or not outcome.text or not ctx.attempts:
            return  # errors, cancellations, truncations and empty answers are never cached
        served = ctx.attempts[-1]
        now = self.clock()
        usage = Usage(served.prompt_tokens, served.completion_tokens)
        body = outcome.body or completion_body(
            f"chatcmpl-{pending.key[:24]}", int(now), served.model, outcome.text, outcome.finish_reason, usage
        )
        semantic = pending.vector is not None and pending.table is not None
        entry = CacheEntry(
            id=pending.key, kind="exact", namespace=pending.namespace, model=pending.model,
            question=pending.question, body=body, prompt_tokens=served.prompt_tokens,
            completion_tokens=served.completion_tokens, cost_usd=served.cost_usd, trace_id=ctx.trace.id,
            created_at=now, expires_at=now + self.config.ttl, last_hit_at=now,
            vector_table=pending.table if semantic else None, space=pending.space if semantic else None,
            vector=pending.vector.tobytes() if semantic and pending.vector is not None else None,
        )  # fmt: skip
        self.index.put(entry, self.config.max_entries)  # written behind: see cache/exact.py

    def _hit(
        self, ctx: Context, entry: CacheEntry, kind: str, similarity: float, score: float | None = None
    ) -> Completion:
        now = self.clock()
        self.index.hit(entry, now)
        trace = ctx.trace
        trace.cache, trace.served_model = kind, str(entry.body.get("model") or entry.model)
        trace.saved_usd, trace.saved_tokens = entry.cost_usd, entry.prompt_tokens + entry.completion_tokens
        age = round(now - entry.created_at, 1)
        trace.metadata["cache"] = {
            "entry": entry.id, "namespace": entry.namespace, "question": entry.question,
            "similarity": round(similarity, 4), "from_trace": entry.trace_id, "age_s": age,
        }  # fmt: skip
        ctx.reply_headers[HEADER], ctx.reply_headers[SIMILARITY] = kind, f"{similarity:.3f}"
        said = f"entry {entry.id[:12]}, hit {entry.hits} times"
        if kind == "hit-semantic":
            verified = f", verified {score:.3f}" if score is not None and score != similarity else ""
            said = f"similarity {similarity:.3f}{verified} to {entry.question!r}, {said}"
            trace.metadata["cache"]["score"] = round(score if score is not None else similarity, 4)
        ctx.decide(self.name, kind, said)
        choice = (entry.body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        return Completion(
            body=entry.body, usage=Usage(entry.prompt_tokens, entry.completion_tokens),
            text=str(message.get("content") or ""), finish_reason=choice.get("finish_reason"),
        )  # fmt: skip

    def _caches(self, model: str) -> bool:
        return self.models is None or model in self.models

    def _say(self, ctx: Context, status: str, reason: str) -> None:
        ctx.trace.cache = status
        ctx.reply_headers[HEADER] = status
        ctx.decide(self.name, status, reason)


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    config = profile.cache
    if config is None:
        return None
    semantic = None
    if config.semantic is not None:
        embedder = models[config.semantic.embedder]
        semantic = SemanticLookup(
            config.semantic, embedder, services.exact_cache, services.cache_reader, services.cache_verifier(),
            services.cache_fences,
        )  # fmt: skip
    return CacheStage(config, services.exact_cache, semantic)
