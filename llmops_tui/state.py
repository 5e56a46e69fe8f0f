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
    reason: str | None = None
    retry_in: float | None = None
    attempt: int = 0

    def up(self, status: dict[str, Any]) -> Connection:
        profile = status.get("profile") or {}
        return replace(
            self, state="connected", profile=profile.get("name"), profile_error=profile.get("error"),
            auth=status.get("auth"), models=tuple(m["name"] for m in status.get("models", [])),
            reason=None, retry_in=None, attempt=0,
        )  # fmt: skip

    def down(self, reason: str, retry_in: float, attempt: int) -> Connection:
        return replace(self, state="down", reason=reason, retry_in=retry_in, attempt=attempt)

    def reloaded(self, ok: bool, name: str | None, error: str | None) -> Connection:
        if ok:
            return replace(self, profile=name or self.profile, profile_error=None)
        return replace(self, profile_error=error)
