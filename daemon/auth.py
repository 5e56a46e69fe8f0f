"""API key -> principal, with a short in-memory cache so the hot path rarely touches SQLite."""

from __future__ import annotations

import time
from typing import Any

from daemon.core.principal import LOCAL_PRINCIPAL, Principal
from daemon.errors import AuthenticationFailed, PermissionDenied
from daemon.storage.keys import find_principal, hash_key, key_count

CACHE_SECONDS = 1.5  # how long a revoked key may still pass (the README promises 2 s), a new one go unnoticed


class Authenticator:
    def __init__(self, reader: Any, loopback: bool) -> None:
        self._reader = reader
        self._loopback = loopback
        self._known: dict[str, tuple[float, Principal]] = {}
        self._key_count: tuple[float, int] = (0.0, 0)

    async def keys_exist(self) -> bool:
        """Whether any key was ever created. Revoking every key does not reopen the daemon to
        keyless local mode: it refuses every call until a key is created (or the keys deleted)."""
        now = time.monotonic()
        checked_at, count = self._key_count
        if now - checked_at > CACHE_SECONDS:
            count = await key_count(self._reader)
            self._key_count = (now, count)
        return count > 0

    @property
    def key_mode(self) -> bool:
        return self._key_count[1] > 0

    async def authenticate(self, authorization: str | None, x_api_key: str | None = None) -> Principal:
        secret = _bearer(authorization) or x_api_key
        if not await self.keys_exist():
            if self._loopback:
                return LOCAL_PRINCIPAL  # single-user local mode
            raise AuthenticationFailed(
                "This gateway listens beyond loopback and has no API keys: create one."
            )
        if not secret:
            raise AuthenticationFailed("Missing API key: send `Authorization: Bearer <key>`.")
        digest = hash_key(secret)
        now = time.monotonic()
        cached = self._known.get(digest)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        principal = await find_principal(self._reader, digest)
        if principal is None:
            self._known.pop(digest, None)
            raise AuthenticationFailed("Incorrect or revoked API key.")
        self._known[digest] = (now, principal)
        return principal

    def forget(self) -> None:
        self._known.clear()
        self._key_count = (0.0, 0)


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDenied("This endpoint needs an admin key (llmops keys create NAME --admin).")


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None
