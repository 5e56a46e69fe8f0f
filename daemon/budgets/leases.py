"""This process's leases on budget windows, in memory.

A lease is the share of a budget's window the database has granted this process: what its calls in
flight hold, and spare room. A call whose every budget has room is reserved here, with no I/O; one
that lacks room claims what spare there is and asks the database to grow the lease by the rest
(storage/budgets.py `lease_job`). The database never grants more than the window's limit less what
is spent and every process's lease, so no process can spend another's room; the spare is kept only
far from the limit, and handed back every few seconds (`room_to_give_back`), so that near the end
of a budget the processes on one database share its last calls exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.core.budget import Limit, Standing, Window

Key = tuple[str, str, float]  # (subject, period, window_start)


@dataclass(slots=True)
class Lease:
    limit: Limit  # the budget it was granted under: a changed limit takes nothing from the old room
    window: Window
    granted_nanos: int = 0
    granted_tokens: int = 0
    held_nanos: int = 0
    held_tokens: int = 0
    spent_nanos: int = 0  # the window's, as last read (and this process's costs since)
    spent_tokens: int = 0
    others_nanos: int = 0  # what the other processes hold, as last read
    others_tokens: int = 0
    # Costs settled since the database's copy of the lease was last brought down: its copy is that
    # much larger (the safe side: other processes see less room, never more) until the next grant
    # or give-back takes it off, so that settling a call writes the ledger and nothing else.
    unsynced_nanos: int = 0
    unsynced_tokens: int = 0
    seen: bool = False  # the database has answered for it at least once

    @property
    def reserved_nanos(self) -> int:
        """As this process knows it: its calls in flight and the other processes' leases."""
        return self.others_nanos + self.held_nanos

    @property
    def reserved_tokens(self) -> int:
        return self.others_tokens + self.held_tokens

    @property
    def key(self) -> Key:
        return (self.limit.subject, self.limit.period, self.window.start)

    def covers(self, limit: Limit, nanos: int, tokens: int) -> bool:
        """Whether its spare room takes a call needing this much of `limit`."""
        if not self.seen or (limit.usd, limit.tokens) != (self.limit.usd, self.limit.tokens):
            return False
        money_ok = limit.usd is None or self.granted_nanos - self.held_nanos >= nanos
        return money_ok and (limit.tokens is None or self.granted_tokens - self.held_tokens >= tokens)

    def hold(self, nanos: int, tokens: int) -> None:
        self.held_nanos += nanos
        self.held_tokens += tokens

    def claim_room(self, limit: Limit) -> tuple[int, int]:
        """Hold all the spare room (none of a lease granted under another limit)."""
        if (limit.usd, limit.tokens) != (self.limit.usd, self.limit.tokens):
            return 0, 0
        room = max(0, self.granted_nanos - self.held_nanos), max(0, self.granted_tokens - self.held_tokens)
        self.hold(*room)
        return room

    def granted(
        self, limit: Limit, delta: tuple[int, int], spent: tuple[int, int], others: tuple[int, int]
    ) -> None:
        """The database answered: the lease grew (or shrank) by `delta`; the window as it stands."""
        self.limit, self.seen = limit, True
        self.granted_nanos += delta[0]
        self.granted_tokens += delta[1]
        self.spent_nanos, self.spent_tokens = spent
        self.others_nanos, self.others_tokens = others

    def settle(self, held: tuple[int, int], cost_nanos: int, tokens: int) -> None:
        """A call ended: it no longer holds its reservation, and its cost leaves the lease."""
        self.held_nanos -= held[0]
        self.held_tokens -= held[1]
        if cost_nanos > self.granted_nanos:  # an estimate fell short: the lease cannot go below 0
            cost_nanos = self.granted_nanos
        if tokens > self.granted_tokens:
            tokens = self.granted_tokens
        self.granted_nanos -= cost_nanos
        self.granted_tokens -= tokens
        self.unsynced_nanos += cost_nanos
        self.unsynced_tokens += tokens
        self.spent_nanos += cost_nanos
        self.spent_tokens += tokens

    def take_unsynced(self) -> tuple[int, int]:
        """The settled costs to take off the database's copy (given back if that write fails)."""
        taken = self.unsynced_nanos, self.unsynced_tokens
        self.unsynced_nanos = self.unsynced_tokens = 0
        return taken

    def untake(self, taken: tuple[int, int]) -> None:
        self.unsynced_nanos += taken[0]
        self.unsynced_tokens += taken[1]

    def standing(self) -> Standing:
        """As this process knows it: reserved is its calls in flight and the other processes' leases."""
        return Standing(
            self.limit,
            self.window,
            self.spent_nanos,
            self.spent_tokens,
            self.reserved_nanos,
            self.reserved_tokens,
        )


class Leases:
    def __init__(self) -> None:
        self._by_key: dict[Key, Lease] = {}

    def of(self, limit: Limit, window: Window) -> Lease:
        key = (limit.subject, limit.period, window.start)
        lease = self._by_key.get(key)
        if lease is None:
            lease = self._by_key[key] = Lease(limit, window)
        return lease

    def held(self, key: Key) -> tuple[int, int]:
        lease = self._by_key.get(key)
        return (lease.held_nanos, lease.held_tokens) if lease is not None else (0, 0)

    def room_to_give_back(self, now: float) -> list[tuple[Lease, tuple[int, int], tuple[int, int]]]:
        """Claim every lease's spare room and take its unsynced costs, to hand both back to the
        database (and forget the leases of windows that are over and hold nothing)."""
        for key, lease in list(self._by_key.items()):
            if lease.window.end <= now and not (lease.held_nanos or lease.held_tokens):
                del self._by_key[key]
        claimed = []
        for lease in self._by_key.values():
            room, unsynced = lease.claim_room(lease.limit), lease.take_unsynced()
            if room != (0, 0) or unsynced != (0, 0):
                claimed.append((lease, room, unsynced))
        return claimed
