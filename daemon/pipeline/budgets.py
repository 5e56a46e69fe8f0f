"""The budget stage: reserve a call's worst case against every budget that applies before it runs,
all or nothing; settle with its real cost when its trace is written.

Before: the worst case is the prompt's tokens at most (its bytes far from a budget's end; near it,
tiktoken's count raised by `prompt_margin`) plus the answer's cap (`max_tokens`, else the models'
default cap, else `unbounded_max_tokens`, which the call then gets: its worst case must be real),
at the dearest candidate's price. It is reserved from this
process's lease on each budget, in memory, when every lease has room; otherwise the leases grow in
one write transaction (storage/budgets.py `lease_job`), which the database grants only within
the limit less what is spent and what every daemon holds: no two calls, nor two daemons on one
database, can both take the last of a budget. A call that does not fit gets a 429
`budget_exceeded` naming the budget.
After: the reservation is released, however the call ended (answered, failed, its client gone);
the real cost reaches the ledger with the trace itself, which the ledger sums (storage/budgets.py
`_spent`): no write of its own. A cache hit never reserves. A crashed process's leases are deleted
by the next daemon to check in (budgets/limits.py).
Headers: `x-llmops-budget-remaining-usd`, `-tokens`, `x-llmops-budget` (the binding budget) and
`x-llmops-budget-warning` once a budget's warning share is reached.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from daemon import tokens
from daemon.budgets.book import BudgetBook
from daemon.budgets.leases import Lease
from daemon.budgets.limits import BudgetLimits
from daemon.config.limits import BudgetsConfig
from daemon.config.schema import AnthropicModel, Profile
from daemon.core import budget
from daemon.core.budget import Limit, Need, Standing, Window
from daemon.core.caps import asked_max_tokens
from daemon.errors import BudgetExceeded
from daemon.pipeline.context import Context, Outcome
from daemon.pipeline.stage import Answer, Stage
from daemon.runtime import ModelEntry
from daemon.storage.budgets import Ask, Grant, lease_job
from daemon.storage.writer import Writer

if TYPE_CHECKING:
    from daemon.services import Services

REMAINING_USD, REMAINING_TOKENS = "x-llmops-budget-remaining-usd", "x-llmops-budget-remaining-tokens"
BINDING, WARNING = "x-llmops-budget", "x-llmops-budget-warning"


@dataclass(slots=True)
class _Held:
    need: Need
    leases: list[Lease]  # the call holds `need` in each


class BudgetStage(Stage):
    name = "budgets"

    def __init__(self, config: BudgetsConfig, limits: BudgetLimits, writer: Writer) -> None:
        self.config = config
        self.limits = limits
        self.writer = writer

    async def before(self, ctx: Context) -> Answer | None:
        if not ctx.candidates:
            return None  # an unknown model: refused next, at no cost
        book = self.limits.current(self.config) or await self.limits.book(self.config)
        trace = ctx.trace
        # The call is charged to the windows it started in.
        plan = book.plan(
            trace.key_id, ctx.principal.key_name, trace.user, trace.team, trace.ts, self.limits.leases
        )
        if plan is None:
            return None
        leases = plan.leases
        need = self._worst_case(ctx, counted=False)
        nanos, count = need.usd_nanos, need.tokens
        if all(lease.covers(limit, nanos, count) for lease, limit in zip(leases, plan.limits, strict=True)):
            for lease in leases:  # in memory: the leases have room (the common case)
                lease.hold(nanos, count)
            ctx.state[self.name] = _Held(need, leases)
            how = "this daemon's lease"
        else:
            need = self._worst_case(ctx, counted=True)
            budgets = list(zip(plan.limits, plan.windows, strict=True))
            await self._grow(ctx, budgets, leases, need, book, trace.ts)
            how = "the database"
        if ctx.stream:  # its headers go out before it ends; a JSON answer's say what it cost instead
            self._tell(ctx, leases, need)
        ctx.decide(self.name, "reserved", f"{_amount(need)} against {plan.names}, from {how}")
        return None

    async def _grow(
        self, ctx: Context, budgets: list[tuple[Limit, Window]], leases: list[Lease], need: Need,
        book: BudgetBook, now: float,
    ) -> None:  # fmt: skip
        """Claim the leases' spare room and ask the database for the rest, in one transaction over
        every budget; raise the 429 if one has no room."""
        asks = []
        for (limit, window), lease in zip(budgets, leases, strict=True):
            n, t = lease.claim_room(limit)
            synced = lease.take_unsynced()
            asks.append(
                Ask(limit, window, max(0, need.usd_nanos - n), max(0, need.tokens - t), n, t, *synced)
            )
        granted = partial(self._granted, ctx, _Held(need, leases), asks)
        job = lease_job(self.limits.owner, asks, need)
        grants: list[Grant] = await self.writer.run_then(job, granted, alone=ctx.runtime.in_flight <= 1)
        refused = next((lease for lease, g in zip(leases, grants, strict=True) if not g.fits), None)
        if refused is not None:
            standings = [lease.standing() for lease in leases]
            raise self._refusal(ctx, book, standings, refused.standing(), need, now)

    def _granted(self, ctx: Context, held: _Held, asks: list[Ask], done: asyncio.Future[Any]) -> None:
        """The database answered (even if the call was cancelled meanwhile): bring the leases up to
        date, and hold the call's need in each, or release what it claimed."""
        grants: list[Grant] | None = None if done.cancelled() or done.exception() else done.result()
        fits = grants is not None and all(g.fits for g in grants)
        need = held.need
        for index, (lease, ask) in enumerate(zip(held.leases, asks, strict=True)):
            if grants is None:
                lease.untake((ask.synced_nanos, ask.synced_tokens))
            else:
                g = grants[index]
                lease.granted(ask.limit, (g.delta_nanos, g.delta_tokens), (g.spent_nanos, g.spent_tokens),
                              (g.others_nanos, g.others_tokens))  # fmt: skip
            if fits:  # it holds its need: what it claimed and what the lease grew by, less any extra claim
                lease.hold(need.usd_nanos - ask.claimed_nanos, need.tokens - ask.claimed_tokens)
            else:
                lease.hold(-ask.claimed_nanos, -ask.claimed_tokens)
        if fits:
            if ctx.ended:  # the call ended (its client left) before its grant arrived
                for lease in held.leases:
                    lease.settle((need.usd_nanos, need.tokens), 0, 0)
            else:
                ctx.state[self.name] = held

    def after(self, ctx: Context, outcome: Outcome) -> None:
        held: _Held | None = ctx.state.get(self.name)
        if held is None:  # nothing to release: the trace itself charges the ledger (storage/budgets.py)
            return
        trace = ctx.trace
        cost, used = budget.nanos(trace.cost_usd), trace.prompt_tokens + trace.completion_tokens
        for lease in held.leases:
            lease.settle((held.need.usd_nanos, held.need.tokens), cost, used)
        if not ctx.stream:
            self._tell(ctx, held.leases, held.need)

    def _worst_case(self, ctx: Context, counted: bool) -> Need:
        """Its prompt's bound in bytes (far from a budget's end, where a generous worst case costs
        nothing), or `counted` with tiktoken and the margin (near it, where a call should not be
        refused for an overestimate), plus the answer's cap, at the dearest candidate's price."""
        body, prices = ctx.body, _prices(ctx.candidates)
        if ctx.endpoint == "embeddings":
            value = body.get("input")
            prompt = self._prompt(tokens.bound_input(value), counted and (lambda: tokens.count_input(value)))
            return budget.worst_case(prompt, 0, prices)
        field, asked = asked_max_tokens(body)
        if asked is None:
            asked = _default_cap(ctx.candidates)
            if asked is None:  # nothing bounds the answer: bound it, so that the worst case is real
                asked = self.config.unbounded_max_tokens
                ctx.body = {**body, field: asked}
        messages = body["messages"]
        prompt = self._prompt(
            tokens.bound_messages(messages), counted and (lambda: tokens.count_messages(messages))
        )
        return budget.worst_case(prompt, asked * (body.get("n") or 1), prices, ctx.cumulative)

    def _prompt(self, bound: int, count: Callable[[], int] | Literal[False]) -> int:
        """The prompt's bound, or (with `count`) tiktoken's count with the margin if that is smaller."""
        return min(bound, math.ceil(count() * (1 + self.config.prompt_margin))) if count else bound

    def _tell(self, ctx: Context, leases: list[Lease], need: Need) -> None:
        """The remaining amounts (with this call's cost once settled, else its worst case held), the
        budget that binds and the first to warn, as response headers and on the trace."""
        said = budget.summary(leases, need)
        headers = ctx.reply_headers
        if said.remaining_nanos is not None:
            headers[REMAINING_USD] = f"{max(0, said.remaining_nanos) / budget.NANO:.6f}"
        if said.remaining_tokens is not None:
            headers[REMAINING_TOKENS] = str(max(0, said.remaining_tokens))
        headers[BINDING] = said.binding.name
        if said.warning is not None:
            headers[WARNING] = ctx.trace.metadata["budget_warning"] = said.warning

    def _refusal(
        self, ctx: Context, book: BudgetBook, standings: list[Standing], refusing: Standing, need: Need,
        now: float,
    ) -> BudgetExceeded:  # fmt: skip
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


def remaining_share(limits: BudgetLimits, config: BudgetsConfig, ctx: Context) -> float | None:
    """What is left of the caller's tightest budget (0..1) as this daemon knows it (a routing
    stage's budget-aware tiers); None without a budget, or before the limits are first read."""
    book = limits.current(config)
    if book is None:
        return None
    trace = ctx.trace
    plan = book.plan(trace.key_id, ctx.principal.key_name, trace.user, trace.team, trace.ts, limits.leases)
    if plan is None:
        return None
    return 1.0 - max(lease.standing().used_share() for lease in plan.leases)


def _amount(need: Need) -> str:
    return f"${need.usd_nanos / budget.NANO:.6f} and {need.tokens} tokens"


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
