"""The rate-limit stage: requests and tokens per minute per key, user and team (GCRA, core/rate_limit.py).

Before any work (and before the cache: a hit is still a request), each limit that applies must have
room for one request and for the call's tokens (its prompt estimate plus its `max_tokens`); over
one, a 429 `rate_limit_exceeded` with `Retry-After` and OpenAI's `x-ratelimit-*` headers. After the
call the token buckets are corrected to the tokens it really used. Every response under a limit
carries the headers of its tightest one.

The buckets live in this process (they survive profile reloads while a limit is unchanged): two
daemons on one database each allow the full rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from daemon import tokens
from daemon.config.limits import RateLimit, RateLimitsConfig
from daemon.config.schema import Profile
from daemon.core.caps import asked_max_tokens
from daemon.core.rate_limit import Gcra, Verdict, openai_duration
from daemon.errors import RateLimited
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.stage import Answer, Stage
from daemon.runtime import ModelEntry

if TYPE_CHECKING:
    from daemon.services import Services

Buckets = dict[tuple[str, str, int], Gcra]  # (subject, "requests" | "tokens", limit) -> bucket


class _Check(NamedTuple):
    subject: str
    kind: str  # requests | tokens
    bucket: Gcra
    amount: int
    verdict: Verdict


@dataclass(slots=True)
class _Taken:
    buckets: list[Gcra]  # the token buckets charged
    tokens: int


class RateLimitStage(Stage):
    name = "rate_limits"

    def __init__(
        self, config: RateLimitsConfig, buckets: Buckets, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.buckets = buckets
        self.clock = clock

    async def before(self, ctx: Context) -> Answer | None:
        limits = self._limits(ctx)
        if not limits:
            return None
        now = self.clock()
        wanted = _estimate(ctx) if any(limit.tokens_per_minute for _, limit in limits) else 0
        checks: list[_Check] = []
        for subject, limit in limits:
            for kind, per_minute, amount in (
                ("requests", limit.requests_per_minute, 1), ("tokens", limit.tokens_per_minute, wanted)
            ):  # fmt: skip
                if per_minute is not None:
                    bucket = self._bucket(subject, kind, per_minute)
                    checks.append(_Check(subject, kind, bucket, amount, bucket.check(now, amount)))
        refused = next((c for c in checks if not c.verdict.allowed), None)
        if refused is not None:
            raise self._refusal(ctx, refused, checks)
        for check in checks:
            check.bucket.take(now, check.amount)
        ctx.reply_headers.update(_headers(checks))
        ctx.state[self.name] = _Taken([c.bucket for c in checks if c.kind == "tokens"], wanted)
        return None

    def after(self, ctx: Context, outcome: Outcome) -> None:
        taken: _Taken | None = ctx.state.get(self.name)
        if taken is None or not taken.buckets:
            return
        used = ctx.trace.prompt_tokens + ctx.trace.completion_tokens
        now = self.clock()
        for bucket in taken.buckets:  # the estimate was a guess: count what the call really used
            if used < taken.tokens:
                bucket.give_back(now, taken.tokens - used)
            elif used > taken.tokens:
                bucket.take(now, used - taken.tokens)

    def _limits(self, ctx: Context) -> list[tuple[str, RateLimit]]:
        c, trace = self.config, ctx.trace
        found = []
        key = ctx.principal.key_name
        if key and key in c.keys:
            found.append((f"key:{key}", c.keys[key]))
        if trace.user:
            own = c.users.get(trace.user) or c.default
            if own is not None:
                found.append((f"user:{trace.user}", own))
        if trace.team and trace.team in c.teams:
            found.append((f"team:{trace.team}", c.teams[trace.team]))
        return found

    def _bucket(self, subject: str, kind: str, per_minute: int) -> Gcra:
        key = (subject, kind, per_minute)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Gcra(per_minute)
        return bucket

    def _refusal(self, ctx: Context, refused: _Check, checks: list[_Check]) -> RateLimited:
        subject, kind, bucket, amount, verdict = refused
        if math.isinf(verdict.retry_after):
            message = (
                f"Rate limit of {subject}: this call needs {amount:,} tokens, more than its whole limit of "
                f"{bucket.limit:,} tokens per minute; lower max_tokens or shorten the prompt."
            )
        else:
            message = (
                f"Rate limit reached for {subject}: {bucket.limit:,} {kind} per minute. "
                f"Try again in {openai_duration(verdict.retry_after)}."
            )
        error = RateLimited(message, code="rate_limit_exceeded")
        error.headers.update(_headers(checks))
        if not math.isinf(verdict.retry_after):
            error.headers["retry-after"] = str(max(1, math.ceil(verdict.retry_after)))
            error.headers["retry-after-ms"] = str(math.ceil(verdict.retry_after * 1000))
        else:
            error.headers["x-should-retry"] = "false"
        ctx.decide(self.name, "refused", f"{subject} {kind}")
        return error


def _headers(checks: list[_Check]) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers, for the tightest limit of each kind."""
    headers = {}
    for kind in ("requests", "tokens"):
        verdicts = [c.verdict for c in checks if c.kind == kind]
        if verdicts:
            tightest = min(verdicts, key=lambda v: (v.remaining, -v.reset_after))
            headers[f"x-ratelimit-limit-{kind}"] = str(tightest.limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(tightest.remaining)
            headers[f"x-ratelimit-reset-{kind}"] = openai_duration(tightest.reset_after)
    return headers


def _estimate(ctx: Context) -> int:
    """Tokens a call may use: its prompt (estimated) and its answer's cap."""
    if ctx.endpoint == "embeddings":
        return tokens.count_input(ctx.body.get("input"))
    _, asked = asked_max_tokens(ctx.body)
    return tokens.count_messages(ctx.body.get("messages") or []) + (asked or 0) * (ctx.body.get("n") or 1)


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    return (
        RateLimitStage(profile.rate_limits, services.rate_buckets)
        if profile.rate_limits is not None
        else None
    )
