"""What the console knows about its daemon connection, as one immutable value the widgets watch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

State = Literal["connecting", "connected", "down"]


@dataclass(frozen=True, slots=True)
class Connection:
    url: str
    state: State = "connecting"
    profile: str | None = None
    profile_error: str | None = None
    auth: str | None = None
    models: tuple[str, ...] = ()
    busy: tuple[tuple[str, str], ...] = ()  # (model, "converting" | "loading") while that lasts
    reason: str | None = None
    retry_in: float | None = None
    attempt: int = 0

    def up(self, status: dict[str, Any]) -> Connection:
        profile = status.get("profile") or {}
        return replace(
            self, state="connected", profile=profile.get("name"), profile_error=profile.get("error"),
            auth=status.get("auth"), models=tuple(m["name"] for m in status.get("models", [])),
            busy=tuple((m["name"], m["activity"]) for m in status.get("models", []) if m.get("activity")),
            reason=None, retry_in=None, attempt=0,
        )  # fmt: skip

    def model(self, state: dict[str, Any]) -> Connection:
        """A model's new state: busy while it converts or loads."""
        busy = tuple(entry for entry in self.busy if entry[0] != state["name"])
        if state.get("activity"):
            busy += ((state["name"], state["activity"]),)
        return replace(self, busy=busy)

    def down(self, reason: str, retry_in: float, attempt: int) -> Connection:
        return replace(self, state="down", reason=reason, retry_in=retry_in, attempt=attempt)

    def reloaded(self, ok: bool, name: str | None, error: str | None) -> Connection:
        if ok:
            return replace(self, profile=name or self.profile, profile_error=None)
        return replace(self, profile_error=error)
