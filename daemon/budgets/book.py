"""Which budgets apply to whom: the profile's `budgets:`, and those set through the API or CLI.

Per subject and period, a budget set through the API wins over the profile's: it is how one
person's budget is changed without editing the YAML (and `budget show` says so). A user with no
budget of their own, from either, gets the default one (the API's default, else the profile's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from daemon.budgets.leases import Lease, Leases
from daemon.config.limits import BudgetLimit, BudgetsConfig
from daemon.core.budget import Limit, Period, Window, describe_limit, window

DEFAULT = "default"  # the API's subject for the default user budget


@dataclass(frozen=True, slots=True)
class Subjects:
    """Who a call is accounted to."""

    key_id: str | None
    key_name: str | None
    user: str | None
    team: str | None


@dataclass(slots=True)
class Plan:
    """A subject's budgets now: each with its window and this process's lease on it."""

    limits: list[Limit]
    windows: list[Window]
    leases: list[Lease]
    names: str  # `user:alice/day, team:ml/week`, for the trace
    since: float  # the last of its windows to start
    until: float  # the first of its windows to end


class BudgetBook:
    def __init__(
        self, config: BudgetsConfig, set_limits: dict[str, list[dict[str, Any]]] | None = None,
        resets: dict[tuple[str, str], float] | None = None, key_names: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.resets = resets or {}
        self.key_names = key_names or {}
        self._set = {subject: _from_rows(rows) for subject, rows in (set_limits or {}).items()}
        self._memo: dict[Subjects, list[Limit]] = {}
        self._plans: dict[tuple[str | None, str | None, str | None], Plan] = {}
        self._windows: dict[tuple[str, float | None], Window] = {}

    def for_call(self, who: Subjects) -> list[Limit]:
        found = self._memo.get(who)
        if found is None:
            if len(self._memo) > 10_000:
                self._memo.clear()
            found = self._memo[who] = self._for(who)
        return found

    def plan(
        self, key_id: str | None, key_name: str | None, user: str | None, team: str | None, now: float,
        leases: Leases,
    ) -> Plan | None:  # fmt: skip
        """The budgets of a call at `now` (kept until one of their windows ends); None: no budget."""
        found = self._plans.get((key_id, user, team))
        if found is not None and found.since <= now < found.until:
            return found
        who = Subjects(key_id, key_name, user, team)
        limits = self.for_call(who)
        if not limits:
            return None
        windows = [self.window(limit, now) for limit in limits]
        if len(self._plans) > 10_000:
            self._plans.clear()
        found = self._plans[(key_id, user, team)] = Plan(
            limits, windows, [leases.of(x, w) for x, w in zip(limits, windows, strict=True)],
            ", ".join(limit.name for limit in limits), max(w.start for w in windows),
            min(w.end for w in windows),
        )  # fmt: skip
        return found

    def _for(self, who: Subjects) -> list[Limit]:
        limits: list[Limit] = []
        if who.key_id:
            profile = self.config.keys.get(who.key_name or "", [])
            limits += self._merged(f"key:{who.key_id}", profile, "key", f"key:{who.key_name or who.key_id}")
        if who.user:
            subject = f"user:{who.user}"
            own = self._merged(subject, self.config.users.get(who.user, []), "user")
            limits += own or self._merged(
                DEFAULT, self.config.default, "default", subject, as_subject=subject
            )
        if who.team:
            limits += self._merged(f"team:{who.team}", self.config.teams.get(who.team, []), "team")
        return limits

    def _merged(
        self, subject: str, profile: Iterable[BudgetLimit], kind: str, label: str = "",
        as_subject: str | None = None,
    ) -> list[Limit]:  # fmt: skip
        """The subject's budgets per period: the API's, else the profile's. `as_subject`: the
        default budget, kept in the ledger under the user it applies to."""
        default = kind == "default"
        chosen: dict[str, Limit] = {}
        for b in profile:
            source = "profile default" if default else "profile"
            chosen[b.per] = self._limit(
                as_subject or subject, b.per, b.usd, b.tokens, b.warn_at, source, label
            )
        for period, row in self._set.get(subject, {}).items():
            source = "api default" if default else "api"
            if period in chosen:
                source += f" (over the profile's {describe_limit(chosen[period])})"
            chosen[period] = self._limit(
                as_subject or subject, period, row["usd"], row["tokens"], row["warn_at"], source, label
            )  # fmt: skip
        return list(chosen.values())

    def _limit(
        self, subject: str, period: Any, usd: float | None, tokens: int | None, warn_at: float | None,
        source: str, label: str,
    ) -> Limit:  # fmt: skip
        warn = warn_at if warn_at is not None else self.config.warn_at
        return Limit(subject, period, usd, tokens, warn, source, label if label != subject else "")

    def of(self, subject: str) -> list[Limit]:
        """The budgets of one subject (`user:bob`: his own, else the default)."""
        kind, _, name = subject.partition(":")
        who = {
            "user": Subjects(None, None, name, None), "team": Subjects(None, None, None, name),
            "key": Subjects(name, self.key_names.get(name), None, None),
        }.get(kind)  # fmt: skip
        return [x for x in self._for(who) if x.subject == subject] if who else []

    def window(self, limit: Limit, now: float) -> Window:
        """The limit's window holding `now` (computed once per period and reset until it ends)."""
        reset = self.resets.get((limit.subject, limit.period))
        key = (limit.period, reset)
        found = self._windows.get(key)
        if found is None or not found.start <= now < found.end:
            found = self._windows[key] = window(limit.period, now, self.tz, reset)
        return found

    def defined(self, users: Iterable[str] = ()) -> list[Limit]:
        """Every budget set for someone, and the default one of each of `users` (those seen
        spending), for `budget show`."""
        limits: list[Limit] = []
        for name in self.config.users:
            limits += self._for(Subjects(None, None, name, None))
        for name in self.config.teams:
            limits += self._for(Subjects(None, None, None, name))
        ids = {name: key_id for key_id, name in self.key_names.items()}
        for name in self.config.keys:
            if name in ids:
                limits += self._for(Subjects(ids[name], name, None, None))
        for subject in self._set:
            kind, _, name = subject.partition(":")
            if kind == "user" and name not in self.config.users:
                limits += self._for(Subjects(None, None, name, None))
            elif kind == "team" and name not in self.config.teams:
                limits += self._for(Subjects(None, None, None, name))
            elif kind == "key" and self.key_names.get(name) not in self.config.keys:
                limits += self._for(Subjects(name, self.key_names.get(name), None, None))
        named = {limit.subject for limit in limits}
        for user in users:
            if f"user:{user}" not in named:
                limits += self._for(Subjects(None, None, user, None))
        return list({(limit.subject, limit.period): limit for limit in limits}.values())


def _from_rows(rows: list[dict[str, Any]]) -> dict[Period, dict[str, Any]]:
    return {row["period"]: row for row in rows}
