"""The budget stage: reserve a call's worst case against every budget that applies before it runs,
all or nothing; settle with its real cost when its trace is written.

Before: the worst case is the prompt's token estimate (raised by a margin) plus the answer's cap
(`max_tokens`, else the models' default cap, else `unbounded_max_tokens`, which the call then
gets: its worst case must be real), at the dearest candidate's price. It is reserved in one write
transaction (storage/budgets.py), so no two calls, nor two daemons on one database, can both take
the last of a budget. A call that does not fit gets a 429 `budget_exceeded` naming the budget.
After: the reservation is released and the real cost charged in the trace's own transaction,
however the call ended (answered, failed, its client gone); a cache hit never reserves. A crashed
process's reservations are released by the next daemon to start (budgets/limits.py).
Headers: `x-llmops-budget-remaining-usd`, `-tokens`, `x-llmops-budget` (the binding budget) and
`x-llmops-budget-warning` once a budget's warning share is reached.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daemon import tokens
from daemon.budgets.book import BudgetBook, Subjects
from daemon.budgets.limits import BudgetLimits
from daemon.config.limits import BudgetsConfig
from daemon.config.schema import AnthropicModel, Profile
from daemon.core import budget
from daemon.core.budget import Need, Standing
from daemon.core.caps import asked_max_tokens
from daemon.errors import BudgetExceeded
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.stage import Answer, Stage
from daemon.runtime import ModelEntry
from daemon.storage.budgets import Reserved, reserve_job, settle_job
from daemon.storage.writer import Writer

if TYPE_CHECKING:
    from daemon.services import Services

REMAINING_USD, REMAINING_TOKENS = "x-llmops-budget-remaining-usd", "x-llmops-budget-remaining-tokens"
BINDING, WARNING = "x-llmops-budget", "x-llmops-budget-warning"


@dataclass(slots=True)
class _Held:
    hold: str
    need: Need
    standings: list[Standing]  # as reserved, with this call's hold


class BudgetStage(Stage):
    name = "budgets"

    def __init__(self, config: BudgetsConfig, limits: BudgetLimits, writer: Writer) -> None:
        self.config = config
        self.limits = limits
        self.writer = writer

    async def before(self, ctx: Context) -> Answer | None:
        if not ctx.candidates:
            return None  # an unknown model: refused next, at no cost
        book = await self.limits.book(self.config)
        trace = ctx.trace
        applying = book.for_call(Subjects(trace.key_id, ctx.principal.key_name, trace.user, trace.team))
        if not applying:
            return None
        need = self._worst_case(ctx)
        now = trace.ts  # the call is charged to the windows it started in
        budgets = [
            (limit, budget.window(limit.period, now, book.tz, book.reset_at(limit))) for limit in applying
        ]
        hold = secrets.token_hex(12)
        ctx.state[self.name] = hold  # released in `after` even if this call is cancelled while reserving
        job = reserve_job(hold, self.limits.owner, need, budgets, now)
        reserved: Reserved = await self.writer.run(job, alone=ctx.runtime.in_flight <= 1)
        if not reserved.granted:
            raise self._refusal(ctx, book, reserved.standings, need, now)
        ctx.state[self.name] = _Held(hold, need, reserved.standings)
        self._tell(ctx, reserved.standings, need, budget.usd(need.usd_nanos), need.tokens)
        ctx.decide(self.name, "reserved", _reserved_reason(reserved.standings, need))
        return None

    def after(self, ctx: Context, outcome: Outcome) -> None:
        held = ctx.state.get(self.name)
        trace = ctx.trace
        hold = held.hold if isinstance(held, _Held) else held
        spent_tokens = trace.prompt_tokens + trace.completion_tokens
        subjects = Subjects(trace.key_id, None, trace.user, trace.team).names()
        if hold is not None or trace.cost_usd or spent_tokens:
            ctx.jobs.append(settle_job(hold, subjects, trace.ts, budget.nanos(trace.cost_usd), spent_tokens))
        if isinstance(held, _Held):
            trace.metadata["budget"] = {
                "reserved_usd": budget.usd(held.need.usd_nanos), "reserved_tokens": held.need.tokens,
                "spent_usd": trace.cost_usd, "spent_tokens": spent_tokens,
            }  # fmt: skip
            # The answer is in: remaining amounts count what it cost, not its worst case.
            self._tell(ctx, held.standings, held.need, trace.cost_usd, spent_tokens)

    def _worst_case(self, ctx: Context) -> Need:
        body = ctx.body
        if ctx.endpoint == "embeddings":
            return budget.worst_case(
                tokens.count_input(body.get("input")), 0, _prices(ctx.candidates), self.config.prompt_margin
            )
        field, asked = asked_max_tokens(body)
        if asked is None:
            asked = _default_cap(ctx.candidates)
            if asked is None:  # nothing bounds the answer: bound it, so that the worst case is real
                asked = self.config.unbounded_max_tokens
                ctx.body = {**body, field: asked}
        choices = body.get("n") or 1
        prompt = tokens.count_messages(body["messages"])
        return budget.worst_case(prompt, asked * choices, _prices(ctx.candidates), self.config.prompt_margin)

    def _tell(
        self, ctx: Context, standings: list[Standing], need: Need, cost_usd: float, used_tokens: int
    ) -> None:
        """The remaining amounts (with this call's cost, or while it runs, its worst case) and the
        first budget to warn, as response headers and on the trace."""
        headers = ctx.reply_headers
        refund_nanos = need.usd_nanos - budget.nanos(cost_usd)
        refund_tokens = need.tokens - used_tokens
        money = [r + refund_nanos for s in standings if (r := s.remaining_nanos()) is not None]
        count = [r + refund_tokens for s in standings if (r := s.remaining_tokens()) is not None]
        if money:
            headers[REMAINING_USD] = f"{budget.usd(max(0, min(money))):.6f}"
        if count:
            headers[REMAINING_TOKENS] = str(max(0, min(count)))
        bound = budget.binding(standings, need)
        if bound is not None:
            headers[BINDING] = bound.limit.name
        warned = next((w for s in standings if (w := budget.warning(s)) is not None), None)
        if warned is not None:
            headers[WARNING] = warned
            ctx.trace.metadata["budget_warning"] = warned

    def _refusal(
        self, ctx: Context, book: BudgetBook, standings: list[Standing], need: Need, now: float
    ) -> BudgetExceeded:
        ctx.state.pop(self.name, None)  # nothing was reserved
        refusing = next(s for s in standings if not s.fits(need))
        smaller = budget.affordable_max_tokens(standings, need) if ctx.endpoint == "chat" else 0
        error = BudgetExceeded(budget.refusal(refusing, need, book.tz, now, smaller), code="budget_exceeded")
        wait = budget.retry_after(refusing, need, now)
        error.headers[BINDING] = refusing.limit.name
        if wait is not None:
            error.headers["retry-after"] = str(wait)
        if wait is None or wait > 60:  # the openai SDK would retry a 429 in vain
            error.headers["x-should-retry"] = "false"
        ctx.decide(self.name, "refused", refusing.limit.name)
        return error


def _reserved_reason(standings: list[Standing], need: Need) -> str:
    names = ", ".join(s.limit.name for s in standings)
    return f"{budget.money(budget.usd(need.usd_nanos))} and {need.tokens:,} tokens against {names}"


def _prices(candidates: list[ModelEntry]) -> list[tuple[float, float]]:
    return [(e.price.input, e.price.output) if e.price else (0.0, 0.0) for e in candidates]


def _default_cap(candidates: list[ModelEntry]) -> int | None:
    """The largest answer the candidates write when asked for no cap; None if one has no bound."""
    caps = []
    for entry in candidates:
        cap = entry.defaults.get("max_tokens") if entry.defaults else None
        if cap is None and isinstance(entry.config, AnthropicModel):
            cap = entry.config.default_max_tokens
        if cap is None:
            return None
        caps.append(cap)
    return max(caps) if caps else None


def build(profile: Profile, services: Services, models: Mapping[str, ModelEntry]) -> Stage | None:
    if profile.budgets is None:
        return None
    return BudgetStage(profile.budgets, services.budget_limits, services.writer)
