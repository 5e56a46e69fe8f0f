"""The cascade stage: a cascade route's cheaper models answer first, and the call escalates to the
next only when an answer's confidence is below the route's `min_confidence`.

Each cheaper model is asked for its whole answer with its confidence (core/confidence.py: token
probabilities where the model gives them, else a reading of the text). A confident answer is
served, as JSON or replayed as SSE chunks: a streaming cascade decides before its first byte by
buffering the cheap answer, which is short and cheap by design. Otherwise the answer is kept as an
`escalated` attempt (its tokens are paid for and counted) and the next model tries; the last model
is not judged: the attempt loop calls it as usual, streaming live. It runs after budgets, which
reserve the sum of the cascade's models (`Context.cumulative`), so nothing is spent unreserved.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from daemon.config.schema import Profile
from daemon.core.confidence import from_text
from daemon.errors import GatewayError
from daemon.pipeline.attempts import attempt, complete, settle, skip, usage_of, whole
from daemon.pipeline.context import Context
from daemon.pipeline.routing import Cascading
from daemon.pipeline.stage import Answer, Stage

if TYPE_CHECKING:
    from daemon.runtime import ModelEntry
    from daemon.services import Services


class CascadeStage(Stage):
    name = "cascade"

    async def before(self, ctx: Context) -> Answer | None:
        plan: Cascading | None = ctx.state.get("cascade")
        if plan is None:
            return None
        ctx.waiting()  # a model call
        health, tried, body = ctx.runtime.health, set(), whole(ctx.body)
        for entry in ctx.candidates[:-1]:
            if entry.name not in plan.judged:
                continue
            tried.add(entry.name)
            if not health.allow(entry.name, time.time()):
                ctx.attempts.append(skip(entry))
                ctx.decide(self.name, "skipped", f"{entry.name}: circuit open")
                continue
            try:
                completion, record = await attempt(ctx, entry, complete, confidence=True, body=body)
            except GatewayError as exc:
                if not exc.fallback:
                    raise
                ctx.decide(self.name, "next", f"{entry.name} failed with {exc.status}")
                continue
            settle(record, entry, usage_of(ctx, completion))
            confidence, how = completion.confidence, "token probabilities"
            if confidence is None:
                confidence, how = from_text(completion.text, completion.finish_reason), "its text"
            ctx.trace.metadata.setdefault("cascade", []).append(
                {"model": entry.name, "confidence": confidence}
            )
            if confidence >= plan.min_confidence:
                ctx.decide(self.name, "answered", f"{entry.name} confidence {confidence:.2f} >= "
                           f"{plan.min_confidence:.2f} ({how})")  # fmt: skip
                return completion
            record.status = "escalated"
            ctx.decide(
                self.name, "escalate",
                f"{entry.name} confidence {confidence:.2f} < {plan.min_confidence:.2f} ({how})",
            )  # fmt: skip
        ctx.candidates = [entry for entry in ctx.candidates if entry.name not in tried]
        return None


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    return CascadeStage() if any(r.strategy == "cascade" for r in profile.routes.values()) else None
