"""The cache stage: a request seen before, in the same namespace, is answered from the cache.

Before the call it decides (and says why): bypass (the client asked, or a skip rule), a hit (the
stored completion answers, replayed as SSE for a stream), or a miss. After a miss it stores the
answer, but only a whole one: never an error, a cancelled stream or a truncated (`length`) answer.
Headers: `x-llmops-cache: hit-exact | miss | bypass`, and `x-llmops-cache-similarity` on a hit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daemon.cache.exact import CacheEntry, ExactIndex
from daemon.config.schema import CacheConfig, Profile
from daemon.core.cache_key import exact_key, namespace, question_of
from daemon.core.cache_policy import control_of, skip_reason
from daemon.core.cost import Usage
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.stage import Answer, Stage
from daemon.providers.base import Completion
from daemon.providers.wire import completion_body

if TYPE_CHECKING:
    from daemon.services import Services

HEADER, SIMILARITY = "x-llmops-cache", "x-llmops-cache-similarity"


@dataclass(frozen=True, slots=True)
class _Pending:
    """What `before` found out, for `after` to store the answer under."""

    key: str
    namespace: str
    model: str
    question: str
    store: bool


class CacheStage(Stage):
    name = "cache"

    def __init__(
        self, config: CacheConfig, index: ExactIndex, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.index = index
        self.clock = clock
        self.models = frozenset(config.models) if config.models is not None else None

    async def before(self, ctx: Context) -> Answer | None:
        if ctx.endpoint != "chat":
            return None
        model = ctx.body.get("model") or ctx.runtime.profile.default_model
        if not model or model not in ctx.runtime.models or not self._caches(model):
            return None  # not a cached model: the cache says nothing
        control = control_of(ctx.request_headers)
        reason = "x-llmops-cache: bypass" if control.bypass else None
        reason = reason or skip_reason(ctx.body, self.config.skip, self.config.max_temperature)
        if reason is not None:
            self._say(ctx, "bypass", reason)
            return None
        space = namespace(self.config.scope, ctx.principal, model)
        key = exact_key(space, ctx.body)
        ctx.state[self.name] = _Pending(key, space, model, question_of(ctx.body), control.store)
        entry, why = self._lookup(ctx, key, control.read)
        if entry is None:
            self._say(ctx, "miss", why)
            return None
        return self._hit(ctx, entry)

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
        entry = CacheEntry(
            id=pending.key, kind="exact", namespace=pending.namespace, model=pending.model,
            question=pending.question, body=body, prompt_tokens=served.prompt_tokens,
            completion_tokens=served.completion_tokens, cost_usd=served.cost_usd, trace_id=ctx.trace.id,
            created_at=now, expires_at=now + self.config.ttl, last_hit_at=now,
        )  # fmt: skip
        self.index.put(entry, self.config.max_entries)  # written behind: see cache/exact.py

    def _hit(self, ctx: Context, entry: CacheEntry) -> Completion:
        now = self.clock()
        self.index.hit(entry, now)
        trace = ctx.trace
        trace.cache, trace.served_model = "hit-exact", str(entry.body.get("model") or entry.model)
        trace.saved_usd, trace.saved_tokens = entry.cost_usd, entry.prompt_tokens + entry.completion_tokens
        age = round(now - entry.created_at, 1)
        trace.metadata["cache"] = {
            "entry": entry.id, "namespace": entry.namespace, "question": entry.question,
            "similarity": 1.0, "from_trace": entry.trace_id, "age_s": age,
        }  # fmt: skip
        ctx.reply_headers[HEADER], ctx.reply_headers[SIMILARITY] = "hit-exact", "1.000"
        ctx.decide(self.name, "hit-exact", f"entry {entry.id[:12]}, hit {entry.hits} times")
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


def build(profile: Profile, services: Services) -> Stage | None:
    return CacheStage(profile.cache, services.exact_cache) if profile.cache is not None else None
