"""Who is calling: the user (and team) an API key acts for, or the single local user."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str | None
    user: str
    team: str | None
    is_admin: bool
    key_name: str | None = None


# Local mode (no API keys): one user on loopback, who administers the daemon too.
LOCAL_PRINCIPAL = Principal(key_id=None, user="local", team=None, is_admin=True)
